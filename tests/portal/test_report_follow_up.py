"""The FG's report in the portal shows the follow-up of the organisation's hits in Dutch: the share
followed up within the network's working days, against the goal, per partner and purpose — counts
only, from the organisation's own trail."""

from __future__ import annotations

import datetime as dt

from betrokken.audit.anomalies import IndexedEntry, ReportSettings
from betrokken.audit.followup import follow_up_entry, hits_in
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.portal import i18n
from betrokken.portal.report import ReportView, build_report

MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def _question(answer_id: str, n: int, outcomes: dict[str, str]) -> AuditEntry:
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=MONDAY,
        answer_id=answer_id,
        organisation="zvh",
        user="r.jansen",
        role="regisseur",
        purpose="zvh-triage",
        subjects=(Subject(f"{n:02x}" * 64, "k1-zvh", f"fp{n}", f"C-{n}"),),
        outcomes={f"fp{n}": outcomes},
        reason="answered",
    )


def _report(entries: list[AuditEntry]) -> ReportView:
    return build_report(
        [IndexedEntry(i, e) for i, e in enumerate(entries)],
        ReportSettings(follow_up_working_days=10, follow_up_goal_percent=90),
        names={"politie": "Politie Noord-Holland"},
        purposes=["zvh-triage"],
        event_label=str,
        generated_at=MONDAY + dt.timedelta(days=30),
        verified=True,
        verification="ok",
    )


def test_the_report_shows_the_share_of_hits_followed_up_in_time_per_partner_in_dutch() -> None:
    i18n.set_language("nl")
    entries = [
        _question("a-1", 1, {"politie": "involved"}),
        _question("a-2", 2, {"politie": "involved", "domain:zorg": "involved-domain-only"}),
        _question("a-3", 3, {"politie": "not-involved"}),  # a miss is no hit
    ]
    first = next(h for h in hits_in(entries) if h.key.answer_id == "a-1")
    entries.append(
        follow_up_entry(
            "zvh", first, "r.jansen", "regisseur", "contact-gelegd", at=MONDAY + dt.timedelta(1)
        )
    )
    view = _report(entries).follow_up
    assert view is not None
    assert (view.share, view.in_time, view.counted, view.waiting) == ("33,3%", 1, 3, 0)
    assert view.met is False and view.days == 10 and view.goal == 90
    rows = {row.partner: row for row in view.rows}
    assert set(rows) == {"Politie Noord-Holland", "Een organisatie uit het domein zorg"}
    politie = rows["Politie Noord-Holland"]
    assert (politie.hits, politie.followed, politie.in_time, politie.share) == (2, 1, 1, "50,0%")
    # Counts only: nothing of a person or a case in the view.
    assert "fp1" not in repr(view) and "C-1" not in repr(view)


def test_a_trail_without_hits_of_its_own_questions_shows_no_follow_up_figure() -> None:
    i18n.set_language("nl")
    assert _report([_question("a-3", 3, {"politie": "not-involved"})]).follow_up is None
