"""Asking every node at once, each with only the time left; a node that does not answer is never
a "no".

Each node call is an asynchronous gRPC call (no thread pool a hung node could exhaust): every call
gets the time left until the question's deadline, and a node that has not answered by then is
UNREACHABLE. A node that witnessed another size of the log than the proof assumed (``WitnessStale``)
is asked again with the right consistency proof (a few times at most), within the same deadline.

The transport hides behind :class:`NodeLink`, so the same fan-out runs against real gRPC nodes and
against the in-memory simulator used in fast fault tests.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import grpc

from betrokken.config.schema import TlsFiles
from betrokken.errors import AuthenticationError, BetrokkenError, WitnessStale
from betrokken.health import NOT_SERVING_PROBLEM
from betrokken.identity.names import parse_identity_uri
from betrokken.identity.pins import NO_PINS, Pins
from betrokken.identity.rpc import PeerChannel, aio_channel, error_from_rpc
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.coordinator")
T = TypeVar("T")
# A node whose witness state moved on (its witness loop, or the first checkpoint it accepts while
# many questions are under way) is asked again with the right proof, a few times at most.
WITNESS_RETRIES = 3


class NodeUnreachable(Exception):
    """The node could not be reached or did not answer in time."""


class NodeFailed(Exception):
    """The node answered with an error (or refused the question)."""


class NodeLink(Protocol):
    def start(self, request: pb.LookupRequest, timeout: float) -> Future[pb.LookupResponse]: ...

    def cosign(self, request: pb.CosignRequest, timeout: float) -> Future[pb.CosignResponse]: ...


class Arrivals(Generic[T]):
    """Futures in the order they complete: each hands itself to one queue when done, and the
    waiting thread takes them one at a time. ``concurrent.futures.wait(FIRST_COMPLETED)`` in a
    loop installs a waiter on every pending future on every pass (quadratic in the number of
    nodes, and a lock per future each time); this costs one callback per future."""

    def __init__(self) -> None:
        self._done: queue.SimpleQueue[Future[T]] = queue.SimpleQueue()

    def add(self, future: Future[T]) -> Future[T]:
        future.add_done_callback(self._done.put)  # at once when it is already done
        return future

    def next(self, timeout: float) -> Future[T] | None:
        """The next future to complete, or None when none did within ``timeout`` seconds."""
        try:
            return self._done.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None


class EventLoop:
    """One asyncio event loop on its own thread: every node call of the coordinator runs on it,
    as an asynchronous gRPC call — no thread per call, and nothing a hung node could exhaust."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fan-out", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)


_SHARED: EventLoop | None = None
_SHARED_LOCK = threading.Lock()


def shared_loop() -> EventLoop:
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = EventLoop()
        return _SHARED


class GrpcNodeLink:
    """The coordinator's link to one node. With ``pins`` (the network file's allow-list, re-read
    when it changes) the node's listed certificates are the channel's only trust anchors: a server
    with any other certificate — a revoked one, even if the network CA signed it — fails the
    handshake before a byte of a lookup is sent, and the channel is made again when the list
    changes (docs/adr/0024, section 11)."""

    def __init__(
        self,
        address: str,
        tls: TlsFiles,
        server_name: str,
        identity: str,
        loop: EventLoop | None = None,
        pins: Pins | None = None,
    ) -> None:
        self.address = address
        self.tls = tls
        self.identity = identity
        self.server_name = server_name
        self.loop = loop or shared_loop()
        self.peer = PeerChannel(
            address, tls, server_name, parse_identity_uri(identity), pins or NO_PINS, aio_channel
        )
        self._closing: asyncio.Future[None] | None = None

    def _translate(self, exc: grpc.RpcError) -> Exception:
        code = exc.code() if hasattr(exc, "code") else None
        error = error_from_rpc(
            exc,
            "node",
            self.address,
            expected=self.identity,
            tls=self.tls,
            allowed=self.peer.allowed(),
        )
        if isinstance(error, WitnessStale):
            return error
        # A refused certificate (another party's, or one the allow-list does not name) is a
        # failure with its reason, not "unreachable" (either way never a "no").
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not (
            isinstance(error, AuthenticationError)
        ):
            return NodeUnreachable(code.name.lower() if code else "unreachable")
        return NodeFailed(f"{type(error).__name__}: {error.message}")

    async def _call(self, method: str, request: Any, timeout: float) -> Any:
        stub, replaced = self.peer.stub(pb_grpc.NodeStub)  # made on the loop
        if replaced is not None:  # the allow-list changed: the old connections go
            self._closing = asyncio.ensure_future(replaced.close())
        try:
            return await getattr(stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._translate(exc) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # anything gRPC raised on its own: never a "no"
            raise NodeUnreachable(type(exc).__name__) from None

    def start(self, request: pb.LookupRequest, timeout: float) -> Future[pb.LookupResponse]:
        # Cancelling the returned future (the fan-out gives up at its deadline) cancels the call.
        return self.loop.run(self._call("Lookup", request, timeout))

    def cosign(self, request: pb.CosignRequest, timeout: float) -> Future[pb.CosignResponse]:
        """Ask the node, as a witness, to cosign a checkpoint (docs/adr/0024, section 10)."""
        return self.loop.run(self._call("Cosign", request, timeout))


ANSWERED: int = pb.ANSWERED
UNREACHABLE: int = pb.UNREACHABLE
FAILED: int = pb.FAILED


@dataclass(frozen=True)
class NodeResult:
    status: int  # ANSWERED, UNREACHABLE or FAILED
    reply: bytes = b""
    problem: str = ""
    witnessed_size: int | None = None  # what the node says it witnessed
    node_tags: tuple[str, ...] = ()  # the node's tags, one per person (checked by the servicer)
    tag_signature: bytes = b""


def fan_out(
    links: Mapping[str, NodeLink],
    build: Callable[[str, int | None], pb.LookupRequest],
    deadline: float,
    witnessed: Mapping[str, int],
    reply_size: int,
) -> dict[str, NodeResult]:
    """Ask every node concurrently; per organisation what came back.

    ``build(org, witnessed_size)`` makes the lookup for one node with a consistency proof from the
    size the node is believed to have witnessed. A reply of another size than ``reply_size`` is a
    failure (replies are padded, so a size could otherwise carry a signal).
    """
    started = time.monotonic()

    def remaining() -> float:
        return deadline - (time.monotonic() - started)

    futures: dict[Future[pb.LookupResponse], str] = {}
    arrivals: Arrivals[pb.LookupResponse] = Arrivals()
    for org, link in links.items():
        futures[arrivals.add(link.start(build(org, witnessed.get(org)), deadline))] = org
    results: dict[str, NodeResult] = {}
    retries: dict[str, int] = {}
    pending = set(futures)
    while pending and remaining() > 0:
        arrived = arrivals.next(remaining())
        if arrived is None:
            break
        pending.discard(arrived)
        for future in (arrived,):
            org = futures[future]
            try:
                response = future.result()
            except WitnessStale as exc:
                if retries.get(org, 0) >= WITNESS_RETRIES or remaining() <= 0:
                    log.warning("node %s: its witness state kept changing; no answer", org)
                    results[org] = NodeResult(FAILED, problem="witness state keeps differing")
                    continue
                retries[org] = retries.get(org, 0) + 1
                retry = arrivals.add(links[org].start(build(org, exc.witnessed_size), remaining()))
                futures[retry] = org
                pending.add(retry)
                continue
            except NodeUnreachable as exc:
                results[org] = NodeResult(UNREACHABLE, problem=str(exc))
                continue
            except (NodeFailed, BetrokkenError) as exc:
                log.warning("node %s failed: %s", org, exc)
                results[org] = NodeResult(FAILED, problem=str(exc)[:300])
                continue
            except Exception as exc:  # a broken link must not break the whole answer
                log.exception("node %s: unexpected failure", org)
                results[org] = NodeResult(FAILED, problem=type(exc).__name__)
                continue
            if len(response.reply) != reply_size:
                results[org] = NodeResult(
                    FAILED, problem="the node's reply is not of the padded size"
                )
            else:
                results[org] = NodeResult(
                    ANSWERED,
                    reply=response.reply,
                    witnessed_size=response.witnessed_size,
                    node_tags=tuple(response.node_tags),
                    tag_signature=response.tag_signature,
                )
    for future in pending:
        future.cancel()
        org = futures[future]
        results.setdefault(org, NodeResult(UNREACHABLE, problem="deadline exceeded"))
    return results


Observe = Callable[[str, str, float], None]  # (node, status, seconds)


def _status_of(future: Future[pb.LookupResponse]) -> str:
    if future.cancelled():
        return "deadline"
    failure = future.exception()
    if failure is None:
        return "answered"
    if isinstance(failure, NodeUnreachable):
        return "unreachable"
    if isinstance(failure, WitnessStale):
        return "witness-retry"
    return "failed"


class GuardedLink:
    """A node link that skips a node whose health service reports NOT_SERVING (from the cached
    view, never a call on the question's path: its answer is UNREACHABLE with that reason, never a
    "no"), and reports how every call ended and how long it took (for the metrics)."""

    def __init__(
        self,
        inner: NodeLink,
        node: str,
        not_serving: Callable[[str], bool],
        observe: Observe | None = None,
    ) -> None:
        self.inner = inner
        self.node = node
        self.not_serving = not_serving
        self.observe = observe

    def cosign(self, request: pb.CosignRequest, timeout: float) -> Future[pb.CosignResponse]:
        if self.not_serving(self.node):  # it could not store what it cosigns
            skipped: Future[pb.CosignResponse] = Future()
            skipped.set_exception(NodeUnreachable(NOT_SERVING_PROBLEM))
            return skipped
        return self.inner.cosign(request, timeout)

    def start(self, request: pb.LookupRequest, timeout: float) -> Future[pb.LookupResponse]:
        if self.not_serving(self.node):
            skipped: Future[pb.LookupResponse] = Future()
            skipped.set_exception(NodeUnreachable(NOT_SERVING_PROBLEM))
            if self.observe is not None:
                self.observe(self.node, "not-serving", 0.0)
            return skipped
        started = time.monotonic()
        future = self.inner.start(request, timeout)
        observe = self.observe
        if observe is not None:
            node = self.node
            future.add_done_callback(
                lambda f: observe(node, _status_of(f), time.monotonic() - started)
            )
        return future
