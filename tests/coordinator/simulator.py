"""An in-memory node simulator: the fan-out's transport without processes or sockets.

It returns what a node returns on the wire — a sealed reply of the padded size — or misbehaves as
told; what the reply says is the business of the requester (tests/requester, tests/e2e).
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from betrokken.coordinator.fanout import NodeFailed, NodeUnreachable
from betrokken.errors import WitnessStale
from betrokken.v1 import betrokken_pb2 as pb


@dataclass
class SimulatedNode:
    reply_size: int
    behaviour: str = "ok"  # ok | down | slow | hang | fail | short | stale | barrier
    delay: float = 0.0
    barrier: threading.Barrier | None = None
    witnessed: int = 7
    calls: list[pb.LookupRequest] = field(default_factory=list)

    def start(self, request: pb.LookupRequest, timeout: float) -> Future[pb.LookupResponse]:
        self.calls.append(request)
        future: Future[pb.LookupResponse] = Future()
        if self.behaviour == "hang":
            return future  # never completes: the fan-out must not wait for it
        threading.Thread(target=self._answer, args=(future, request), daemon=True).start()
        return future

    def _answer(self, future: Future[pb.LookupResponse], request: pb.LookupRequest) -> None:
        try:
            response = self._respond(request)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():  # the fan-out may have given up on it (cancelled)
            future.set_result(response)

    def _respond(self, request: pb.LookupRequest) -> pb.LookupResponse:
        if self.behaviour == "down":
            raise NodeUnreachable("unavailable")
        if self.behaviour == "slow":
            time.sleep(self.delay)
        if self.behaviour == "barrier" and self.barrier is not None:
            self.barrier.wait()  # raises BrokenBarrierError if the others are not asked at once
        if self.behaviour == "fail":
            raise NodeFailed("QuestionRefused: the question's signature does not verify")
        if self.behaviour == "stale" and request.proof.consistency_size != self.witnessed:
            raise WitnessStale("witnessed another size", witnessed_size=self.witnessed)
        size = self.reply_size - (1 if self.behaviour == "short" else 0)
        return pb.LookupResponse(reply=secrets.token_bytes(size), witnessed_size=self.witnessed)
