"""The standard gRPC health service (grpc.health.v1) on every server, and asking a peer's health.

Every server (key service, coordinator, node) registers the standard ``grpc.health.v1.Health``
service on its own mutual-TLS port, for the overall status (service ``""``) and for its own
service name (``betrokken.v1.Node`` ...). A background thread runs the component's probes every
``health_interval_seconds``: SERVING when all pass, NOT_SERVING (with the reason logged at ERROR)
when one fails — its database is not writable, the key service's keys are not loaded. The status
starts as NOT_SERVING and turns SERVING after the first passing probe; at shutdown it is
NOT_SERVING again.

:class:`PeerWatch` is the coordinator's cached view of its nodes' health, refreshed in the
background and never on a question's critical path: a node that *reports* NOT_SERVING is skipped
(its answer: unreachable, "the node reports it is not serving"). A node whose health cannot be
read is asked as usual — a failed health check is no reason to give up on an answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from betrokken.config.load import Loaded
from betrokken.config.schema import TlsFiles
from betrokken.errors import BetrokkenError
from betrokken.identity.names import Identity, Role
from betrokken.identity.pins import NO_PINS, Pins
from betrokken.identity.rpc import PeerChannel, channel, error_from_rpc

log = logging.getLogger("betrokken.health")

SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_NAMES = {
    "node": "betrokken.v1.Node",
    "coordinator": "betrokken.v1.Coordinator",
    "keyservice": "betrokken.v1.KeyService",
}
NOT_SERVING_PROBLEM = "the node reports it is not serving"
NODE, KEYSERVICE, COORDINATOR = "node", "keyservice", "coordinator"

Probe = Callable[[], str | None]  # None when fine, else what is wrong (no person data)


def database_writable(engine: Engine) -> Probe:
    """A probe: can the component write its database? It touches the audit log's head row (every
    component has one) in a committed transaction, so a read-only database, a full disk or a
    database server gone is seen. On failure the pool is emptied, so the next try connects anew."""

    def probe() -> str | None:
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE log_head SET size = size WHERE id = 1"))
        except SQLAlchemyError as exc:
            engine.dispose()
            cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            first = (cause[0] if cause else type(exc).__name__)[:200]
            return f"its database is not writable ({first})"
        return None

    return probe


class Health:
    """A server's health service and the background probes that set it."""

    def __init__(
        self,
        server: grpc.Server,
        component: str,
        probes: Sequence[Probe],
        interval: float,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.component = component
        self.service = SERVICE_NAMES[component]
        self.probes = list(probes)
        self.interval = interval
        self.on_change = on_change
        self.servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)
        self.serving = False
        self.problem: str | None = "not checked yet"
        self._set(NOT_SERVING)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _set(self, status: int) -> None:
        for name in ("", self.service):
            self.servicer.set(name, status)

    def check(self) -> str | None:
        """Run every probe once and set the status; returns the problem, if any."""
        problem = None
        for probe in self.probes:
            try:
                problem = probe()
            except Exception as exc:  # a probe that breaks says so, it never stops the loop
                problem = f"health probe failed ({type(exc).__name__})"
            if problem:
                break
        serving = problem is None
        if serving != self.serving or (problem and problem != self.problem):
            if serving:
                log.info("%s is serving", self.component)
            else:
                log.error("%s is NOT SERVING: %s", self.component, problem)
            if self.on_change is not None:
                self.on_change(serving)
        self.serving, self.problem = serving, problem
        self._set(SERVING if serving else NOT_SERVING)
        return problem

    def _loop(self) -> None:
        while True:
            self.check()
            if self._stop.wait(self.interval):
                return

    def start(self) -> Health:
        self.check()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="health")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.servicer.enter_graceful_shutdown()


# --- asking a peer ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerHealth:
    name: str  # what the peer is: "coordinator", "key service", "node of politie-nh"
    address: str
    status: str  # "serving" | "not serving" | "unreachable"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "serving"

    def describe(self) -> str:
        text = f"{self.name} at {self.address}: {self.status}"
        return f"{text} ({self.detail})" if self.detail else text


def check_peer(
    name: str,
    address: str,
    tls: TlsFiles,
    server_name: str,
    expected: str = "",
    timeout: float = 3.0,
    certificates: Sequence[str] | None = None,
) -> PeerHealth:
    """Ask a peer's health over mutual TLS with this component's certificate (with
    ``certificates``, the peer's allow-list, as the only trust anchors)."""
    ch = channel(address, tls, server_name, certificates)
    try:
        response: Any = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout
        )
    except grpc.RpcError as exc:
        if getattr(exc, "code", lambda: None)() == grpc.StatusCode.UNIMPLEMENTED:
            return PeerHealth(name, address, "serving", "runs a betrokken without health service")
        error: BetrokkenError = error_from_rpc(
            exc,
            name,
            address,
            expected=expected or name,
            tls=tls,
            allowed=frozenset(_fingerprints(certificates)),
        )
        detail = error.message.removeprefix(f"the {name} at {address} ")
        return PeerHealth(name, address, "unreachable", detail)
    finally:
        ch.close()
    if response.status == SERVING:
        return PeerHealth(name, address, "serving")
    return PeerHealth(name, address, "not serving", "it reports it cannot do its job; see its log")


class PeerWatch:
    """The health its peers last reported, refreshed in the background every ``interval``."""

    def __init__(
        self,
        peers: Mapping[str, tuple[str, str]],  # node's organisation -> (address, server name)
        tls: TlsFiles,
        interval: float,
        timeout: float = 2.0,
        pins: Pins | None = None,
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self._peers = {
            peer: PeerChannel(
                a, tls, n, Identity(Role.ORGANISATION, peer), pins or NO_PINS, channel
            )
            for peer, (a, n) in peers.items()
        }
        self._status: dict[str, int | None] = {peer: None for peer in peers}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def not_serving(self, peer: str) -> bool:
        """Whether ``peer`` said, at its last check, that it is not serving."""
        with self._lock:
            return self._status.get(peer) == NOT_SERVING

    def status(self) -> dict[str, int | None]:
        """Per peer: SERVING, NOT_SERVING or None (not known: no answer to the last check)."""
        with self._lock:
            return dict(self._status)

    def refresh(self) -> None:
        request = health_pb2.HealthCheckRequest(service="")
        calls = {}
        for peer, link in self._peers.items():
            stub, replaced = link.stub(health_pb2_grpc.HealthStub)
            if replaced is not None:
                replaced.close()
            calls[peer] = stub.Check.future(request, timeout=self.timeout)
        for peer, call in calls.items():
            status: int | None
            try:
                status = int(call.result().status)
            except grpc.RpcError:
                status = None
            with self._lock:
                before = self._status.get(peer)
                self._status[peer] = status
            if status != before and (status == NOT_SERVING or before == NOT_SERVING):
                word = "NOT SERVING; skipped" if status == NOT_SERVING else "serving again"
                log.warning("node %s reports it is %s", peer, word)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:
                log.exception("health: checking the nodes failed; will try again")
            self._stop.wait(self.interval)

    def start(self) -> PeerWatch:
        threading.Thread(target=self._loop, daemon=True, name="peer-health").start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for link in self._peers.values():
            closing = link.close()
            if closing is not None:
                closing.close()


def _fingerprints(certificates: Sequence[str] | None) -> list[str]:
    from betrokken.config.schema import entry_fingerprint

    return [entry_fingerprint(c) for c in certificates or ()]


# --- a component's own health and its peers', for status and doctor --------------------------
def peers_of(component: str, loaded: Loaded[Any]) -> list[tuple[str, str, str, str]]:
    """(name, address, server name, identity URI) of every peer this component calls."""
    from betrokken.identity.names import COORDINATOR_URI, KEYSERVICE_URI, organisation_uri

    network = loaded.network
    if component == NODE:
        return [
            (
                "coordinator",
                network.coordinator.address,
                network.coordinator.tls_name,
                COORDINATOR_URI,
            ),
            (
                "key service",
                network.keyservice.address,
                network.keyservice.tls_name,
                KEYSERVICE_URI,
            ),
        ]
    if component == COORDINATOR:
        return [
            (f"node of {o.id}", o.node_address, o.server_name, organisation_uri(o.id))
            for o in network.nodes()
            if o.node_address
        ]
    return []


def own_address(component: str, loaded: Loaded[Any]) -> tuple[str, str, str] | None:
    """(name, address, server name) this component serves on, when it serves."""
    network = loaded.network
    listen = loaded.component.listen
    if component == NODE:
        org = network.organisation(loaded.component.organisation)
        assert org is not None
        address = listen or org.node_address
        return (f"this node ({org.id})", address, org.server_name) if address else None
    if component == COORDINATOR:
        return (
            "this coordinator",
            listen or network.coordinator.address,
            network.coordinator.tls_name,
        )
    return "this key service", listen or network.keyservice.address, network.keyservice.tls_name


def peer_health(component: str, loaded: Loaded[Any], timeout: float = 3.0) -> list[Any]:
    """The health of this component itself and of every peer it calls, over mutual TLS."""
    from concurrent.futures import ThreadPoolExecutor

    targets: list[tuple[str, str, str, str]] = []
    own = own_address(component, loaded)
    if own is not None:
        targets.append((*own, ""))
    targets += peers_of(component, loaded)
    from betrokken.identity.names import parse_identity_uri
    from betrokken.identity.pins import certificates_in

    own_identity = _own_identity(component, loaded)

    def check(target: tuple[str, str, str, str]) -> Any:
        identity = parse_identity_uri(target[3]) if target[3] else own_identity
        listed = certificates_in(loaded.network, identity) if identity is not None else None
        return check_peer(target[0], target[1], loaded.tls, target[2], target[3], timeout, listed)

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as pool:
        return list(pool.map(check, targets))


def _own_identity(component: str, loaded: Loaded[Any]) -> Identity | None:
    if component == NODE:
        return Identity(Role.ORGANISATION, loaded.component.organisation)
    if component == COORDINATOR:
        return Identity(Role.COORDINATOR)
    return Identity(Role.KEYSERVICE)


def peer_lines(component: str, loaded: Loaded[Any]) -> list[str]:
    lines = []
    for found in peer_health(component, loaded):
        mark = (
            ""
            if found.ok
            else "  <- "
            + ("not running?" if found.name.startswith("this ") else "tell its operator")
        )
        lines.append(f"    {found.describe()}{mark}")
    return lines
