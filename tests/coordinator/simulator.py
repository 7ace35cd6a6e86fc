"""An in-memory node simulator: the fan-out's transport without processes or sockets."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from betrokken.config.schema import Network
from betrokken.coordinator.fanout import NodeFailed, NodeUnreachable
from betrokken.node import policy
from betrokken.node.store import Hit
from betrokken.v1 import betrokken_pb2 as pb


@dataclass
class SimulatedNode:
    """Answers like a real node (same policy code), or misbehaves as told."""

    network: Network
    org_id: str
    registered: set[bytes] = field(default_factory=set)
    behaviour: str = "ok"  # ok | down | slow | fail | short | bogus
    delay: float = 0.0
    barrier: threading.Barrier | None = None
    calls: int = 0

    def lookup(self, request: pb.LookupRequest, timeout: float) -> pb.LookupResponse:
        self.calls += 1
        if self.behaviour == "down":
            raise NodeUnreachable("unavailable")
        if self.behaviour == "slow":
            time.sleep(self.delay)
        if self.behaviour == "barrier" and self.barrier is not None:
            self.barrier.wait()  # raises BrokenBarrierError if the others are not asked at once
        if self.behaviour == "fail":
            raise NodeFailed("INTERNAL: disk on fire")
        org = self.network.organisation(self.org_id)
        assert org is not None
        level = self.network.disclosure_level(self.org_id, request.context.purpose)
        if not policy.needs_lookup(level):
            results = [policy.answer_without_lookup(level, org).to_wire()] * len(request.items)
        else:
            import datetime as dt

            results = []
            for item in request.items:
                hit = None
                if item.pseudonym.value in self.registered:
                    hit = Hit(1, dt.date(2026, 1, 1), org.contact, org.domain, None, None)
                results.append(policy.answer_for(level, org, hit, "desk").to_wire())
        if self.behaviour == "short":
            results = results[:-1]
        if self.behaviour == "bogus":
            results = [pb.Disclosure(outcome=pb.UNREACHABLE) for _ in results]
        return pb.LookupResponse(results=results)
