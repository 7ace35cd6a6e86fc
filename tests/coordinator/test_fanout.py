"""Fan-out faults against the node simulator: a missing answer is never a 'no' (P5)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from betrokken.coordinator.fanout import ANSWERED, FAILED, UNREACHABLE, Arrivals, fan_out
from betrokken.v1 import betrokken_pb2 as pb
from tests.coordinator.simulator import SimulatedNode

SIZE = 1000


def _build(seen: list[tuple[str, int | None]] | None = None):  # type: ignore[no-untyped-def]
    def build(org: str, witnessed: int | None) -> pb.LookupRequest:
        if seen is not None:
            seen.append((org, witnessed))
        return pb.LookupRequest(
            question="q", envelope=b"e", proof=pb.LogProof(consistency_size=witnessed or 0)
        )

    return build


def test_calls_are_taken_in_the_order_they_end_and_none_once_the_time_is_up() -> None:
    arrivals: Arrivals[int] = Arrivals()
    first: Future[int] = Future()
    second: Future[int] = Future()
    ended: Future[int] = Future()
    ended.set_result(0)
    for future in (first, second, ended):
        assert arrivals.add(future) is future
    assert arrivals.next(1.0) is ended  # ended before it was added: at once
    assert arrivals.next(0.01) is None  # nothing else ended in time
    threading.Timer(0.05, lambda: second.set_result(2)).start()
    assert arrivals.next(5.0) is second
    first.set_exception(ValueError("failed"))
    assert arrivals.next(1.0) is first
    assert arrivals.next(0.0) is None


def test_healthy_nodes_answer_with_their_sealed_reply() -> None:
    links = {"a": SimulatedNode(SIZE), "b": SimulatedNode(SIZE)}
    results = fan_out(links, _build(), 2.0, {}, SIZE)
    assert {org: r.status for org, r in results.items()} == {"a": ANSWERED, "b": ANSWERED}
    assert all(len(r.reply) == SIZE and r.witnessed_size == 7 for r in results.values())


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        ("down", UNREACHABLE),
        ("slow", UNREACHABLE),
        ("hang", UNREACHABLE),
        ("fail", FAILED),
        ("short", FAILED),  # a reply of another size than the padded one could carry a signal
    ],
)
def test_a_misbehaving_node_is_never_answered(behaviour: str, status: int) -> None:
    links = {"bad": SimulatedNode(SIZE, behaviour, delay=1.0), "good": SimulatedNode(SIZE)}
    results = fan_out(links, _build(), 0.3, {}, SIZE)
    assert results["bad"].status == status and not results["bad"].reply
    assert results["good"].status == ANSWERED


def test_many_nodes_are_asked_concurrently() -> None:
    # Every node waits at a barrier that only opens when all 8 are being asked at once.
    barrier = threading.Barrier(8, timeout=5)
    links = {f"n{i}": SimulatedNode(SIZE, "barrier", barrier=barrier) for i in range(8)}
    results = fan_out(links, _build(), 10.0, {}, SIZE)
    assert all(r.status == ANSWERED for r in results.values())


def test_a_node_with_another_witness_state_is_asked_once_more_with_the_right_proof() -> None:
    seen: list[tuple[str, int | None]] = []
    node = SimulatedNode(SIZE, "stale", witnessed=42)
    results = fan_out({"n": node}, _build(seen), 2.0, {"n": 40}, SIZE)
    assert seen == [("n", 40), ("n", 42)]
    assert results["n"].status == ANSWERED and results["n"].witnessed_size == 42


def test_a_hung_node_costs_the_others_nothing_under_concurrent_questions() -> None:
    """32 questions at once with one node hung: every other node answers in every answer, and
    every question returns at its deadline (no shared pool that a hung node can exhaust)."""
    hung = SimulatedNode(SIZE, "hang")
    healthy = {f"n{i}": SimulatedNode(SIZE, "slow", delay=0.05) for i in range(4)}
    links = {"hung": hung, **healthy}
    started = time.monotonic()
    with ThreadPoolExecutor(32) as askers:
        answers = list(askers.map(lambda _: fan_out(links, _build(), 1.0, {}, SIZE), range(32)))
    elapsed = time.monotonic() - started
    assert len(answers) == 32
    for results in answers:
        assert results["hung"].status == UNREACHABLE
        assert all(results[org].status == ANSWERED for org in healthy)
    assert len(hung.calls) == 32
    assert elapsed < 10  # each question ends at its own deadline, not after the others'
