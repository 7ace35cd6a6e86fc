"""Asking every node at once, with a deadline; a node that does not answer is never a "no".

The transport hides behind :class:`NodeLink` (one method), so the same fan-out runs against real
gRPC nodes and against the in-memory simulator used in fast fault tests.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

import grpc

from betrokken.answer import NODE_OUTCOMES, Answer, Outcome
from betrokken.config.schema import TlsFiles
from betrokken.errors import MalformedMessage
from betrokken.identity.rpc import channel
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.coordinator")


class NodeUnreachable(Exception):
    """The node could not be reached or did not answer in time."""


class NodeFailed(Exception):
    """The node answered with an error."""


class NodeLink(Protocol):
    def lookup(self, request: pb.LookupRequest, timeout: float) -> pb.LookupResponse: ...


def traceparent(answer_id: str) -> str:
    """W3C trace context: the answer id is the trace id, so one query can be followed everywhere."""
    trace_id = answer_id.replace("-", "")
    if len(trace_id) != 32:
        trace_id = uuid.uuid5(uuid.NAMESPACE_URL, answer_id).hex
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


class GrpcNodeLink:
    def __init__(self, address: str, tls: TlsFiles) -> None:
        self.address = address
        self._channel = channel(address, tls)
        self._stub = pb_grpc.NodeStub(self._channel)

    def lookup(self, request: pb.LookupRequest, timeout: float) -> pb.LookupResponse:
        try:
            response: pb.LookupResponse = self._stub.Lookup(
                request,
                timeout=timeout,
                metadata=(("traceparent", traceparent(request.answer_id)),),
            )
            return response
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise NodeUnreachable(f"{code.name.lower()}") from None
            raise NodeFailed(f"{code.name if code else 'error'}: {details}") from None

    def close(self) -> None:
        self._channel.close()


def _checked(response: pb.LookupResponse, expected: int) -> list[Answer]:
    if len(response.results) != expected:
        raise MalformedMessage(f"node sent {len(response.results)} results for {expected} items")
    return [Answer.from_wire(result, allowed=NODE_OUTCOMES) for result in response.results]


def fan_out(
    links: Mapping[str, NodeLink],
    request: pb.LookupRequest,
    deadline: float,
    pool: ThreadPoolExecutor,
) -> dict[str, list[Answer]]:
    """Ask every node concurrently; per organisation the answers, one per item.

    A node that is unreachable, too slow, fails, or answers malformed gets UNREACHABLE or ERROR
    for every item: never NOT_INVOLVED (P5).
    """
    count = len(request.items)
    started = time.monotonic()
    futures: dict[Future[pb.LookupResponse], str] = {
        pool.submit(link.lookup, request, deadline): org for org, link in links.items()
    }
    results: dict[str, list[Answer]] = {}
    pending = set(futures)
    while pending:
        remaining = deadline - (time.monotonic() - started)
        if remaining <= 0:
            break
        done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
        for future in done:
            org = futures[future]
            try:
                results[org] = _checked(future.result(), count)
            except NodeUnreachable as exc:
                results[org] = [Answer(Outcome.UNREACHABLE, message=str(exc))] * count
            except (NodeFailed, MalformedMessage) as exc:
                log.warning("node %s failed: %s", org, exc)
                results[org] = [Answer(Outcome.ERROR, message=str(exc))] * count
            except Exception as exc:  # a broken link must not break the whole answer
                log.exception("node %s: unexpected failure", org)
                results[org] = [Answer(Outcome.ERROR, message=type(exc).__name__)] * count
    for future in pending:
        future.cancel()
        results[futures[future]] = [
            Answer(Outcome.UNREACHABLE, message="deadline exceeded")
        ] * count
    return results
