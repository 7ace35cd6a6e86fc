"""The FG's report in the portal, in Dutch, for the disclosing side: the questions its node answered
for a partner's case, with the aanmelder's basis as the network file stated it; and a question on a
Dutch public holiday flagged as outside office hours, naming the holiday."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from betrokken.audit.anomalies import IndexedEntry, ReportSettings
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.portal import i18n
from betrokken.portal.report import ReportView, build_report

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
BASIS = "artikel 20 Wet politiegegevens"
NAMES = {"zvh": "Zorg- en Veiligheidshuis", "politie": "Politie Noord-Holland"}


def _disclosed(n: int, details: dict[str, str], event: Event = Event.DISCLOSURE) -> AuditEntry:
    return AuditEntry(
        event=event,
        at=MONDAY,
        answer_id=f"a-{n}",
        organisation="zvh",
        user="r.jansen",
        role="regisseur",
        purpose="zvh-triage",
        subjects=(Subject(f"{n:02x}" * 64, "k1-ggz", f"fp{n}", f"C-{n}"),),
        reason="disclosed: organisation",
        details=details,
    )


def _report(entries: list[AuditEntry], purposes: list[str] | None = None) -> ReportView:
    return build_report(
        [IndexedEntry(i, e) for i, e in enumerate(entries)],
        ReportSettings(),
        names=NAMES,
        purposes=purposes or ["zvh-triage"],
        event_label=str,
        generated_at=MONDAY + dt.timedelta(days=1),
        verified=True,
        verification="ok",
    )


def test_the_report_lists_the_questions_answered_for_an_aanmelder_with_its_basis_in_dutch() -> None:
    i18n.set_language("nl")
    behalf = {"on_behalf_of": "politie", "aanmelder_basis": BASIS}
    entries = [
        _disclosed(1, {"on_behalf_of": "politie", **behalf}),
        _disclosed(2, dict(behalf)),
        _disclosed(3, {"on_behalf_of": "zvh"}),  # asked on its own basis: not listed
    ]
    refused = AuditEntry(
        event=Event.ALARM,
        at=MONDAY,
        organisation="ggz",
        answer_id="a-4",
        purpose="zvh-triage",
        reason="case-refused",
        details={"requester": "zvh", **behalf},
    )
    [row] = _report([*entries, refused]).on_behalf
    assert (row.asker, row.aanmelder, row.basis, row.purpose) == (
        "Zorg- en Veiligheidshuis",
        "Politie Noord-Holland",
        BASIS,
        "zvh-triage",
    )
    assert row.count == 3  # two disclosures and one refusal, all for the politie's case


def test_a_question_on_a_public_holiday_is_flagged_naming_the_holiday_in_dutch() -> None:
    i18n.set_language("nl")
    christmas = dt.datetime(2026, 12, 25, 10, 0, tzinfo=AMS).astimezone(dt.UTC)  # a Friday
    asked = AuditEntry(
        event=Event.OWN_QUERY,
        at=christmas,
        answer_id="a-9",
        organisation="zvh",
        user="r.jansen",
        role="regisseur",
        purpose="zvh-triage",
        subjects=(Subject("09" * 64, "k1-zvh", "fp9", "C-9"),),
        outcomes={"fp9": {"politie": "not-involved"}},
        reason="answered",
    )
    report = _report([asked])
    [view] = [a for a in report.anomalies if a.kind == "off-hours"]
    assert "een feestdag (Eerste Kerstdag)" in view.text
    assert "niet op feestdagen" in view.text
    assert [h.hours for h in report.hours] == [
        "07:00–19:00, maandag tot en met vrijdag, niet op feestdagen"
    ]
