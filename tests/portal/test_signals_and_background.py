"""A question through the portal may leave a signal (a watch) only where the network file's purpose
allows one; the FG's report counts the questions that left one, per purpose and user, in Dutch;
and the portal collects late answers and signals in the background, by its own clock, quietly.

No browser and no running network here: the rule as a table, the report from records made in
memory, the background loop with a clock the test moves and a collector that counts its calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from betrokken.audit.anomalies import IndexedEntry, ReportSettings, watching
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import Network
from betrokken.errors import Unavailable
from betrokken.portal import i18n, meldingen
from betrokken.portal.regisseur import watch_days_for
from betrokken.portal.report import build_report
from betrokken.requester.late import Collected

MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


# --- the rule: closed unless the purpose allows a watch -------------------------------------------
@pytest.mark.parametrize(
    ("purpose", "ticked", "expected"),
    [
        ("zvh-triage", False, 0),  # default off: no watch
        ("zvh-triage", True, 90),  # the purpose's watch_days in the development network
        ("zsm-context", False, 0),
        ("zsm-context", True, None),  # refused: this purpose allows no watch
        ("no-such-purpose", True, None),
    ],
)
def test_a_signal_is_left_only_when_ticked_and_only_for_a_purpose_that_allows_one(
    network: Network, purpose: str, ticked: bool, expected: int | None
) -> None:
    assert watch_days_for(network, purpose, ticked) == expected


def test_a_purpose_whose_watch_days_the_network_file_sets_to_zero_leaves_no_signal(
    network: Network,
) -> None:
    """The attacker's move: tick the box for a purpose that allows a watch, after the network
    file closed it. The portal reads the file, not the form."""
    closed = network.model_copy(
        update={
            "purposes": [
                p.model_copy(update={"watch_days": 0}) if p.id == "zvh-triage" else p
                for p in network.purposes
            ]
        }
    )
    assert watch_days_for(closed, "zvh-triage", True) is None


# --- the FG's report counts the questions that left a signal ------------------------------------
def _question(n: int, user: str, purpose: str, watch_days: int = 0) -> AuditEntry:
    details = {"watch_days": str(watch_days)} if watch_days else {}
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=MONDAY + dt.timedelta(minutes=n),
        answer_id=f"a-{n}",
        organisation="zvh",
        user=user,
        role="regisseur",
        purpose=purpose,
        subjects=(Subject(f"{n:02x}" * 64, "k1-zvh", f"fp{n}", f"C-{n}"),),
        outcomes={f"fp{n}": {"politie": "not-involved"}},
        reason="answered",
        details=details,
    )


def test_the_fg_report_counts_the_questions_that_left_a_signal_per_purpose_and_user_in_dutch() -> (
    None
):
    i18n.set_language("nl")
    entries = [
        _question(1, "r.jansen", "zvh-triage", 90),
        _question(2, "r.jansen", "zvh-triage", 30),
        _question(3, "k.smit", "zvh-triage", 90),
        _question(4, "k.smit", "zvh-triage"),  # no watch: not counted
        _question(5, "k.smit", "wijkteam-coordination"),
    ]
    indexed = [IndexedEntry(i, e) for i, e in enumerate(entries)]
    assert [
        e.answer_id for _i, e in watching([(i.index, i.entry) for i in indexed if i.entry])
    ] == [
        "a-1",
        "a-2",
        "a-3",
    ]
    view = build_report(
        indexed,
        ReportSettings(),
        names={},
        purposes=["zvh-triage", "wijkteam-coordination"],
        event_label=str,
        generated_at=MONDAY + dt.timedelta(days=1),
        verified=True,
        verification="ok",
    )
    figures = {f.ident: f for f in view.figures}
    per_purpose = figures["watches-per-purpose"]
    per_user = figures["watches-per-user"]
    assert per_purpose.title == "Vragen die een signaal achterlieten, per doel"
    assert per_user.title == "Vragen die een signaal achterlieten, per gebruiker"
    assert [(b.label, b.value) for b in per_purpose.bars] == [("zvh-triage", 3)]
    assert [(b.label, b.value) for b in per_user.bars] == [("r.jansen", 2), ("k.smit", 1)]


# --- the background collection --------------------------------------------------------------------
@dataclasses.dataclass
class Clock:
    now: dt.datetime = MONDAY

    def __call__(self) -> dt.datetime:
        return self.now


class CountingCollector:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def collect(self) -> Collected:
        self.calls += 1
        if self.fail:
            raise Unavailable("the coordinator at 127.0.0.1:1 did not answer")
        return Collected(kept=1, refused=0)


def _run_loop(portal: Any, steps: list[float], collector: CountingCollector) -> list[int]:
    """Run the background loop; each time it waits, move the portal's clock on by the next of
    ``steps`` seconds and note how many collections were made before that wait (the loop's own
    wait is the test's: no real time passes)."""
    meldingen._COLLECTORS[id(portal)] = collector  # type: ignore[assignment]
    seen: list[int] = []
    pending = list(steps)

    async def sleep(_seconds: float) -> None:
        seen.append(collector.calls)
        if not pending:
            raise asyncio.CancelledError
        portal.clock.now += dt.timedelta(seconds=pending.pop(0))

    try:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(meldingen.collect_in_background(portal, sleep=sleep))
    finally:
        meldingen._COLLECTORS.pop(id(portal), None)
    return seen[1:]  # after each step


def test_the_portal_collects_in_the_background_each_time_its_clock_passes_collect_seconds() -> None:
    portal = SimpleNamespace(clock=Clock(), collect_seconds=60.0)
    seen = _run_loop(portal, [30, 29, 2, 30, 31, 5, 60], CountingCollector())
    # nothing before 60 s of the portal's clock; one at 61 s; the next one 60 s later; ...
    assert seen == [0, 0, 1, 1, 2, 2, 3]


def test_a_failing_background_collection_is_logged_once_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The coordinator is down: the loop keeps trying, says so once (the error's kind, never its
    text, which could carry what a message held), and does not stop."""
    portal = SimpleNamespace(clock=Clock(), collect_seconds=10.0)
    collector = CountingCollector(fail=True)
    with caplog.at_level(logging.INFO, logger="betrokken.portal"):
        seen = _run_loop(portal, [11, 11, 11], collector)
    assert seen == [1, 2, 3]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Unavailable" in warnings[0].getMessage()
    assert "127.0.0.1:1" not in caplog.text
