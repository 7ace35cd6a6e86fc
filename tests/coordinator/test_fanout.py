"""Fan-out faults against the node simulator: a missing answer is never a 'no' (P5)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from betrokken.answer import Outcome
from betrokken.config.schema import Network
from betrokken.coordinator.fanout import fan_out
from betrokken.v1 import betrokken_pb2 as pb
from tests.coordinator.simulator import SimulatedNode

HIT = b"\x01" * 64
MISS = b"\x02" * 64


def _request(purpose: str = "zvh-triage") -> pb.LookupRequest:
    return pb.LookupRequest(
        requester_organisation="zvh-test",
        context=pb.QueryContext(purpose=purpose, user="u"),
        items=[
            pb.LookupItem(pseudonym=pb.Pseudonym(value=HIT, key_id="k"), case_reference="C"),
            pb.LookupItem(pseudonym=pb.Pseudonym(value=MISS, key_id="k"), case_reference="C"),
        ],
        answer_id="a",
    )


@pytest.fixture
def pool():  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(8) as executor:
        yield executor


def test_healthy_nodes_answer_per_item(network: Network, pool: ThreadPoolExecutor) -> None:
    links = {
        "politie-test": SimulatedNode(network, "politie-test", {HIT}),
        "gemeente-test": SimulatedNode(network, "gemeente-test", set()),
    }
    results = fan_out(links, _request(), 2.0, pool)
    assert [a.outcome for a in results["politie-test"]] == [Outcome.INVOLVED, Outcome.NOT_INVOLVED]
    assert [a.outcome for a in results["gemeente-test"]] == [Outcome.NOT_INVOLVED] * 2


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [
        ("down", Outcome.UNREACHABLE),
        ("slow", Outcome.UNREACHABLE),
        ("fail", Outcome.ERROR),
        ("short", Outcome.ERROR),
        ("bogus", Outcome.ERROR),
    ],
)
def test_a_misbehaving_node_is_never_not_involved(
    network: Network, pool: ThreadPoolExecutor, behaviour: str, outcome: Outcome
) -> None:
    links = {
        "politie-test": SimulatedNode(network, "politie-test", {HIT}, behaviour, delay=1.0),
        "gemeente-test": SimulatedNode(network, "gemeente-test", {HIT}),
    }
    results = fan_out(links, _request(), 0.3, pool)
    assert [a.outcome for a in results["politie-test"]] == [outcome, outcome]
    assert all(not a.outcome.answered for a in results["politie-test"])
    assert [a.outcome for a in results["gemeente-test"]] == [Outcome.INVOLVED, Outcome.NOT_INVOLVED]


def test_many_nodes_are_asked_concurrently(network: Network, pool: ThreadPoolExecutor) -> None:
    # Every node waits at a barrier that only opens when all 8 are being asked at once.
    barrier = threading.Barrier(8, timeout=5)
    links = {
        f"n{i}": SimulatedNode(network, "politie-test", {HIT}, "barrier", barrier=barrier)
        for i in range(8)
    }
    results = fan_out(links, _request(), 10.0, pool)
    assert all(r[0].outcome is Outcome.INVOLVED for r in results.values())


def test_defer_answers_identically(network: Network, pool: ThreadPoolExecutor) -> None:
    links = {"ggz-test": SimulatedNode(network, "ggz-test", {HIT})}
    answers = fan_out(links, _request("zsm-context"), 2.0, pool)["ggz-test"]
    assert answers[0] == answers[1]
    assert answers[0].outcome is Outcome.DEFERRED
