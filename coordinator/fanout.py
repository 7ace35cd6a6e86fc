"""Asking every node at once, each with only the time left; a node that does not answer is never
a "no".

Each node call is an asynchronous gRPC call (no thread pool a hung node could exhaust): every call
gets the time left until the question's deadline, and a node that has not answered by then is
UNREACHABLE. A node that witnessed another size of the log than the proof assumed (``WitnessStale``)
is asked once more with the right consistency proof, within the same deadline.

The transport hides behind :class:`NodeLink`, so the same fan-out runs against real gRPC nodes and
against the in-memory simulator used in fast fault tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, wait
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from betrokken.config.schema import TlsFiles
from betrokken.errors import BetrokkenError, WitnessStale, WrongPeer
from betrokken.health import NOT_SERVING_PROBLEM
from betrokken.identity.rpc import channel, error_from_rpc
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.coordinator")


class NodeUnreachable(Exception):
    """The node could not be reached or did not answer in time."""


class NodeFailed(Exception):
    """The node answered with an error (or refused the question)."""


class NodeLink(Protocol):
    def start(self, request: pb.LookupRequest, timeout: float) -> Future[pb.LookupResponse]: ...


class GrpcNodeLink:
    def __init__(self, address: str, tls: TlsFiles, server_name: str, identity: str) -> None:
        self.address = address
        self.tls = tls
        self.identity = identity
        self._channel = channel(address, tls, server_name)
        self._stub = pb_grpc.NodeStub(self._channel)

    def _translate(self, exc: grpc.RpcError) -> Exception:
        code = exc.code() if hasattr(exc, "code") else None
        error = error_from_rpc(exc, "node", self.address, expected=self.identity, tls=self.tls)
        if isinstance(error, WitnessStale):
            return error
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not (
            isinstance(error, WrongPeer)
        ):
            return NodeUnreachable(code.name.lower() if code else "unreachable")
        return NodeFailed(f"{type(error).__name__}: {error.message}")

    def start(self, request: pb.LookupRequest, timeout: float) -> Future[pb.LookupResponse]:
        result: Future[pb.LookupResponse] = Future()
        call: Any = self._stub.Lookup.future(request, timeout=timeout)

        def done(finished: Any) -> None:
            try:
                outcome: Any = finished.result()
                failure: Exception | None = None
            except grpc.RpcError as exc:
                failure = self._translate(exc)
            except Exception as exc:  # cancelled, or anything grpc raised on its own
                failure = NodeUnreachable(type(exc).__name__)
            try:
                if failure is None:
                    result.set_result(outcome)
                else:
                    result.set_exception(failure)
            except InvalidStateError:
                pass  # given up on (past the deadline): nobody waits for it any more

        # When the fan-out gives up on a node, the call itself is cancelled too.
        result.add_done_callback(lambda f: call.cancel() if f.cancelled() else None)
        call.add_done_callback(done)
        return result

    def close(self) -> None:
        self._channel.close()


ANSWERED: int = pb.ANSWERED
UNREACHABLE: int = pb.UNREACHABLE
FAILED: int = pb.FAILED


@dataclass(frozen=True)
class NodeResult:
    status: int  # ANSWERED, UNREACHABLE or FAILED
    reply: bytes = b""
    problem: str = ""
    witnessed_size: int | None = None  # what the node says it witnessed


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
    for org, link in links.items():
        futures[link.start(build(org, witnessed.get(org)), deadline)] = org
    results: dict[str, NodeResult] = {}
    retried: set[str] = set()
    pending = set(futures)
    while pending and remaining() > 0:
        done, pending = wait(pending, timeout=remaining(), return_when=FIRST_COMPLETED)
        for future in done:
            org = futures[future]
            try:
                response = future.result()
            except WitnessStale as exc:
                if org in retried or remaining() <= 0:
                    results[org] = NodeResult(FAILED, problem="witness state keeps differing")
                    continue
                retried.add(org)
                retry = links[org].start(build(org, exc.witnessed_size), remaining())
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
                    ANSWERED, reply=response.reply, witnessed_size=response.witnessed_size
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
