"""The DPO's pages: the log's status, the log with filters, the report, the access-request letter.

They read the organisation's own trail (its node's audit log) through the same code as
``betrokken audit``: :func:`~betrokken.audit.access.open_log` opens it read-only, and every page
view is first a log-access record (:func:`~betrokken.audit.access.record_access`) naming the
logged-in account, its role and the page (NEN 7513: reading the log is itself logged). When that
record cannot be written, nothing is shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from betrokken.audit.access import (
    Filter,
    OpenedLog,
    filter_choices,
    open_log,
    record_access,
    select_records,
    unknown_value,
)
from betrokken.audit.log import CHECKPOINTS
from betrokken.audit.record import AuditEntry, Event
from betrokken.audit.subject import PersonKeys, find_records
from betrokken.crypto.bsn import Bsn, parse_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import BetrokkenError, InvalidBsn
from betrokken.portal import beslissen, i18n
from betrokken.portal.auth import PortalUser, checked_form, current_user, session_of
from betrokken.portal.forms import FormErrors, Period, parse
from betrokken.portal.i18n import gettext as _
from betrokken.portal.letter import (
    Addressee,
    CurrentRegistration,
    Letter,
    StepAnswer,
    agreed_partners,
    build_letter,
    read_addressee,
    restriction_lines,
    waiting_partners,
)
from betrokken.portal.register import Register
from betrokken.portal.web import N_, NavItem, Portal, RoleModule, client_address, portal_of, render
from betrokken.tabular import CellError, parse_date

ROLE = "dpo"
LETTER = "dpo-letter"  # the session's last letter (post/redirect/get)
MAX_ROWS = 500
EVENTS = {
    "search": N_("question (coordinator)"),
    "outcome": N_("answers received (coordinator)"),
    "refusal": N_("question refused"),
    "log-access": N_("log read"),
    "disclosure": N_("involvement disclosed"),
    "registration-change": N_("registration changed"),
    "own-query": N_("question by our organisation"),
    "prune": N_("old records emptied"),
    "alarm": N_("alarm"),
    "login": N_("logged in"),
    "logout": N_("logged out"),
    "login-failed": N_("failed login"),
    "role-change": N_("role changed"),
    "notice": N_("notice of a hit acknowledged"),
    "follow-up": N_("follow-up of a hit recorded"),
    "decision": N_("decision about sharing"),
    "late-answer": N_("late answer received"),
}
FIELDS = {
    "event": N_("Kind of record"),
    "outcome": N_("Outcome"),
    "organisation": N_("Organisation"),
    "purpose": N_("Purpose"),
}


def _access(
    request: Request, opened: OpenedLog, user: PortalUser, command: str, details: dict[str, str]
) -> int:
    where = f"betrokken portal {request.url.path}"
    client = client_address(request)
    if client:
        where += f" from {client}"
    return record_access(opened, user.name, command, details, access_point=where, role=ROLE)


def _open(portal: Portal) -> OpenedLog:
    return open_log(portal.loaded.node.path)


# --- status -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogStatus:
    verified: bool
    size: int
    pruned: int
    checkpoints: int
    problems: tuple[str, ...]
    first_bad: int | None
    last_checkpoint_size: int | None
    last_checkpoint_at: dt.datetime | None
    witnessed_size: int | None
    witnessed_at: dt.datetime | None
    alarms: int
    last_alarm: str


def log_status(opened: OpenedLog) -> LogStatus:
    from sqlalchemy import select

    from betrokken.audit.verify import verify_log
    from betrokken.audit.witness import WitnessStore

    result = verify_log(opened.log, opened.verifier, network=opened.network)
    with opened.log.engine.connect() as conn:
        latest = conn.execute(
            select(CHECKPOINTS.c.size, CHECKPOINTS.c.created_at)
            .order_by(CHECKPOINTS.c.size.desc())
            .limit(1)
        ).first()
    witness = WitnessStore(opened.log.engine, opened.log, opened.component)
    accepted = witness.last()
    alarms = witness.alarms()
    last_alarm = ""
    if alarms:
        last_alarm = f"{i18n.local_time(alarms[-1].at)} ({alarms[-1].kind})"
    at = latest.created_at if latest else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return LogStatus(
        verified=result.ok,
        size=result.size,
        pruned=result.pruned,
        checkpoints=result.checkpoints,
        problems=tuple(f"{p.index}: {p.message}" for p in result.problems[:20]),
        first_bad=result.first_bad_index,
        last_checkpoint_size=latest.size if latest else None,
        last_checkpoint_at=at,
        witnessed_size=accepted.size if accepted else None,
        witnessed_at=accepted.accepted_at if accepted else None,
        alarms=sum(a.count for a in alarms),
        last_alarm=last_alarm,
    )


async def status_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)

    def work() -> LogStatus:
        opened = _open(portal)
        _access(request, opened, user, "status", {})
        return log_status(opened)

    status = await run_in_threadpool(work)
    return render(request, "dpo/status.html", {"status": status})


# --- the log ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogRow:
    index: int
    when: str
    event: str
    organisation: str
    user: str
    role: str
    purpose: str
    cases: str
    result: str


def _row(index: int, entry: AuditEntry, names: dict[str, str]) -> LogRow:
    result = entry.completeness or entry.reason
    if entry.completeness == "complete":
        result = _("complete")
    elif entry.completeness == "partial":
        result = _("incomplete")
    return LogRow(
        index=index,
        when=i18n.local_time(entry.at, seconds=True),
        event=_(EVENTS.get(entry.event.value, entry.event.value)),
        organisation=names.get(entry.organisation, entry.organisation) or "-",
        user=entry.user + (f" ({entry.acted_for})" if entry.acted_for else "") or "-",
        role=entry.role or "-",
        purpose=entry.purpose or "-",
        cases=", ".join(sorted({s.case for s in entry.subjects if s.case})) or "-",
        result=result or "-",
    )


def _local_day(value: str, end: bool) -> dt.datetime | None:
    """A date the DPO typed (dd-mm-jjjj or YYYY-MM-DD), as the UTC moment its Amsterdam day
    starts (or, for ``end``, the next day starts)."""
    try:
        day = parse_date(value)
    except CellError:
        raise ValueError(value) from None
    if day is None:
        return None
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=i18n.AMSTERDAM).astimezone(dt.UTC)


# The filter's fields (audit.access) by the name of their input on the page.
FILTER_INPUTS = {
    "organisation": "organisatie",
    "user": "gebruiker",
    "purpose": "doel",
    "case": "zaak",
    "outcome": "uitkomst",
    "event": "soort",
}


def _day_start(day: dt.date | None, *, end: bool) -> dt.datetime | None:
    """The UTC moment an Amsterdam day starts (for ``end``: the next day starts)."""
    if day is None:
        return None
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=i18n.AMSTERDAM).astimezone(dt.UTC)


def read_filter(params: Any, portal: Portal) -> tuple[Filter, dict[str, str], FormErrors]:
    """The filter from the query string, the values as typed, and what is wrong per field."""
    values = {
        name: str(params.get(name, "")).strip()
        for name in ("van", "tot", "organisatie", "gebruiker", "doel", "zaak", "uitkomst", "soort")
    }
    wanted = Filter(
        organisation=values["organisatie"] or None,
        user=values["gebruiker"] or None,
        purpose=values["doel"] or None,
        case=values["zaak"] or None,
        outcome=values["uitkomst"] or None,
        events={values["soort"]} if values["soort"] else set(),
    )
    for name, label in (("van", N_("From")), ("tot", N_("Up to and including"))):
        if values[name]:
            try:
                moment = _local_day(values[name], end=name == "tot")
            except ValueError:
                message = _("'%(field)s' is not a date. Type a date such as 23-11-2026.")
                return wanted, values, FormErrors().add(name, message % {"field": _(label)})
            if name == "van":
                wanted.since = moment
            else:
                wanted.until = moment
    for name in ("gebruiker", "zaak"):
        value = values[name]
        if value and (not value.isprintable() or len(value.encode()) > 128):
            return (
                wanted,
                values,
                FormErrors().add(
                    name,
                    _(
                        "The account name and case number must be printable text of at most "
                        "128 characters."
                    ),
                ),
            )
    found = unknown_value(wanted, portal.network, purpose=True)
    if found is not None:
        field, value, _allowed = found
        message = _(
            "'%(value)s' is not a known value for '%(field)s'. Choose one of the values in the "
            "list."
        )
        shown = message % {"value": value[:40], "field": _(FIELDS[field])}
        return wanted, values, FormErrors().add(FILTER_INPUTS.get(field, ""), shown)
    return wanted, values, FormErrors()


async def log_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    wanted, values, problem = read_filter(request.query_params, portal)

    def work() -> tuple[list[LogRow], int]:
        opened = _open(portal)
        details = wanted.describe()
        if problem:
            details = {"refused": "unknown filter value"}
        _access(request, opened, user, "log", details)
        if problem:
            return [], 0
        names = {o.id: o.name for o in portal.network.organisations}
        rows = [_row(i, e, names) for i, e in select_records(opened.log, wanted)]
        return rows[-MAX_ROWS:][::-1], len(rows)

    rows, total = await run_in_threadpool(work)
    choices = filter_choices(portal.network)
    return render(
        request,
        "dpo/log.html",
        {
            "rows": rows,
            "total": total,
            "max_rows": MAX_ROWS,
            "values": values,
            "errors": problem,
            "events": [(e, _(EVENTS.get(e, e))) for e in choices["event"]],
            "outcomes": choices["outcome"],
            "organisations": portal.network.organisations,
            "purposes": portal.network.purposes,
        },
        status=400 if problem else 200,
    )


# --- the report ---------------------------------------------------------------------------------
def _accounts(portal: Portal, opened: OpenedLog) -> frozenset[str]:
    """The names people log in with: the portal's own accounts and whoever logged in through
    the organisation's identity provider (a login record names them)."""
    names = {a.username for a in portal.users.accounts()} if portal.users is not None else set()
    names |= {
        entry.user
        for r in opened.log.records()
        for entry, problem in [r.checked()]
        if entry is not None and problem is None and entry.event is Event.LOGIN
    }
    return frozenset(names)


async def report_page(request: Request) -> Response:
    """The FG's report in Dutch, inside the portal: anomalies first, each linking to its records."""
    from betrokken.audit.report import IndexedEntry, settings_for
    from betrokken.audit.verify import verify_log
    from betrokken.portal.report import ReportView, build_report

    user = current_user(request, ROLE)
    portal = portal_of(request)
    language = i18n.current_language()
    values = {k: str(request.query_params.get(k, "")).strip()[:20] for k in ("van", "tot")}
    period = parse(Period, values)
    errors = period if isinstance(period, FormErrors) else FormErrors()
    days = period if isinstance(period, Period) else Period()
    bounds = {"van": _day_start(days.van, end=False), "tot": _day_start(days.tot, end=True)}

    def within(at: dt.datetime) -> bool:
        since, until = bounds["van"], bounds["tot"]
        return (since is None or at >= since) and (until is None or at < until)

    def work() -> ReportView:
        i18n.set_language(language)
        opened = _open(portal)
        _access(request, opened, user, "report", {k: v for k, v in values.items() if v})
        entries = [
            IndexedEntry(r.index, entry)
            for r in opened.log.records()
            # a damaged record is left out, not the whole report (the status page names it)
            for entry, problem in [r.checked()]
            if problem is None and (entry is None or within(entry.at))
        ]
        result = verify_log(opened.log, opened.verifier, network=opened.network)
        settings = settings_for(opened.network, accounts=_accounts(portal, opened))
        return build_report(
            entries,
            settings,
            names={o.id: o.name for o in portal.network.organisations},
            purposes=[p.id for p in portal.network.purposes],
            event_label=lambda event: _(EVENTS.get(event, event)),
            generated_at=dt.datetime.now(dt.UTC),
            verified=result.ok,
            verification=result.summary(),
            checked=result.size,
        )

    view = await run_in_threadpool(work)
    return render(
        request,
        "dpo/report.html",
        {"report": view, "values": values, "errors": errors},
        status=400 if errors else 200,
    )


async def report_document(request: Request) -> Response:
    """The earlier address of the report, which was a page of its own in English."""
    current_user(request, ROLE)
    return RedirectResponse("/dpo/rapport", status_code=303)


# --- the access request -------------------------------------------------------------------------
# The letter form's fields in the order of the page (the error summary follows it).
LETTER_FIELDS = (
    "bsn",
    "salutation",
    "surname",
    "name",
    "address",
    "requested_on",
    "reference",
    "own_text",
    "signer",
)


def _blank() -> dict[str, str]:
    return {
        "salutation": "",
        "surname": "",
        "name": "",
        "address": "",
        "requested_on": "",
        "reference": "",
        "own_text": "",
        "signer": "",
    }


def ask_partners(portal: Portal, user: PortalUser, person: Bsn, case: str) -> str | None:
    """The FG's own access-request question to the partners' nodes, under the network's
    access-request purpose (signed, recorded like any question, in the FG's name and role): its
    answer id. Every partner answers ``pending``: its FG decides whether its involvement may be
    told (the restriction step, docs/adr/0039), and the late answers come through the mailbox.
    None when the network names no such purpose, or the question could not be asked (the letter
    then says so)."""
    from betrokken.requester.client import Person

    purpose = portal.network.purpose(portal.network.access_requests.purpose)
    if purpose is None:
        return None
    # The network's role for an FG is the one the purpose allows (the portal's role is "dpo").
    role = purpose.allowed_roles[0] if purpose.allowed_roles else ROLE
    try:
        result = portal.ask([Person(person, case)], purpose=purpose.id, user=user.name, role=role)
    except BetrokkenError:
        return None
    return str(result.answer_id)


def asked_partners(portal: Portal) -> list[str]:
    """The partners the letter accounts for: every other node (those on ``none`` for the
    access-request purpose receive nothing, and the letter says so)."""
    return [o.id for o in portal.network.nodes() if o.id != portal.organisation.id]


def step_answers(portal: Portal, answer_id: str) -> dict[str, StepAnswer]:
    """Per partner, what it answered the FG's question ``answer_id`` so far: its late answer
    (its FG agreed: ``involved`` with its contact point; else ``no-disclosure``), or awaited
    until its term's end (``pending``). A partner with neither did not answer."""
    from betrokken import rules
    from betrokken.config.schema import DisclosureLevel
    from betrokken.requester import late as late_store

    purpose = portal.network.access_requests.purpose
    kept, awaited = late_store.for_question(portal.trail.engine, answer_id)
    found: dict[str, StepAnswer] = {
        o: StepAnswer("closed")
        for o in asked_partners(portal)
        if rules.level(portal.network, o, purpose) is DisclosureLevel.NONE
    }
    found |= {a.sender: StepAnswer("pending", until=a.deadline) for a in awaited}
    for late in kept:
        if late.signal or not late.answers:
            continue
        _case, answer = late.answers[0]
        involved = answer.outcome.involved
        found[late.sender] = StepAnswer(
            "involved" if involved else "no-disclosure", answer.contact if involved else ""
        )
    return found


def current_registrations(
    portal: Portal, pseudonym: Pseudonym, today: dt.date
) -> list[CurrentRegistration]:
    """This organisation's registration about the person as its node holds it now, read under
    the organisation's own pseudonym from the node's registrations (not from the log)."""
    from betrokken.node.admin import held_about

    found = []
    for hit in held_about(portal.loaded.node, pseudonym, today):
        advice = portal.network.advice(hit.advice) if hit.advice else None
        found.append(
            CurrentRegistration(hit.since, hit.domain, hit.contact, advice.label if advice else "")
        )
    return found


def _register(portal: Portal) -> Register:
    return Register(portal.trail.engine)


def _waiting(portal: Portal, answer_id: str) -> list[tuple[str, str]]:
    """The partners that have not answered the FG's question yet, each with its term's end."""
    from betrokken.requester import late as late_store

    if not answer_id:
        return []
    _kept, awaited = late_store.for_question(portal.trail.engine, answer_id)
    names = {o.id: o.name for o in portal.network.organisations}
    return [(names.get(a.sender, a.sender), i18n.local_time(a.deadline)) for a in awaited]


def _register_rows(portal: Portal) -> list[dict[str, object]]:
    from betrokken import rules

    today = dt.datetime.now(i18n.AMSTERDAM).date()
    purpose = portal.network.purpose(portal.network.access_requests.purpose)
    rows = []
    for r in _register(portal).requests():
        ask_by = rules.access_request_ask_by(r.received_on, purpose) if purpose else None
        rows.append(
            {
                "request": r,
                "received": r.received_on.strftime("%d-%m-%Y"),
                "deadline": r.deadline.strftime("%d-%m-%Y"),
                "ask_by": ask_by.strftime("%d-%m-%Y") if ask_by else "",
                "made": i18n.local_time(r.made_at),
                "sent": r.sent_on.strftime("%d-%m-%Y") if r.sent_on else "",
                "overdue": r.overdue(today),
                "days_left": r.days_left(today),
                "waiting": _waiting(portal, r.answer_id) if r.sent_on is None else [],
            }
        )
    return rows


async def request_form(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)

    def work() -> list[dict[str, object]]:
        _access(request, _open(portal), user, "subject-form", {})
        return _register_rows(portal)

    rows = await run_in_threadpool(work)
    values, errors = _blank(), FormErrors()
    session = session_of(request)
    kept = session.data.get("flash") if session is not None else None
    if isinstance(kept, dict) and kept.get("path") == "/dpo/inzage":
        # A letter form sent into a session that had ended: filled in again (never the BSN).
        del session.data["flash"]  # type: ignore[union-attr]
        values.update({k: str(v) for k, v in kept.get("values", {}).items() if k in values})
        errors = FormErrors.of(kept.get("errors", []))
    return render(
        request,
        "dpo/request.html",
        {"values": values, "problems": {}, "errors": errors, "register": rows},
    )


async def request_sent(request: Request) -> Response:
    """The FG marks a request's letter as sent (the register's last step)."""
    user = current_user(request, ROLE)
    portal = portal_of(request)
    form = await checked_form(request)
    try:
        request_id = int(str(form.get("id", "")))
    except ValueError:
        return RedirectResponse("/dpo/inzage", status_code=303)

    def work() -> None:
        _access(request, _open(portal), user, "subject-sent", {"request": str(request_id)})
        _register(portal).sent(request_id, dt.datetime.now(i18n.AMSTERDAM).date(), user.name)

    await run_in_threadpool(work)
    return RedirectResponse("/dpo/inzage#register", status_code=303)


@dataclass(frozen=True)
class LetterDraft:
    """What a letter is made from, kept in the FG's session (in memory, never the BSN): the
    letter is built again from it each time its page is opened, with the partners' late answers
    collected then (the restriction step, docs/adr/0039)."""

    records: tuple[tuple[int, AuditEntry], ...]
    keys: PersonKeys
    addressee: Addressee
    masked_bsn: str
    today: dt.date
    current: tuple[CurrentRegistration, ...]
    answer_id: str | None  # None: the partners were not asked
    asked_on: dt.date


def build_from(portal: Portal, draft: LetterDraft, now: dt.datetime) -> Letter:
    """The letter of a draft with what the partners answered so far."""
    language = i18n.current_language()
    partners = agreed = waiting = None
    until: dt.datetime | None = None
    if draft.answer_id is not None:
        answers = step_answers(portal, draft.answer_id)
        partners = restriction_lines(asked_partners(portal), answers, portal.network, now, language)
        agreed, waiting = agreed_partners(answers), waiting_partners(answers)
        until = max((a.until for a in answers.values() if a.until), default=None)
    return build_letter(
        draft.records,
        draft.keys,
        portal.network,
        portal.organisation,
        draft.addressee,
        draft.masked_bsn,
        draft.today,
        language,
        current=draft.current,
        partners=partners,
        agreed=agreed or frozenset(),
        waiting=waiting or frozenset(),
        partners_asked=draft.asked_on,
        partners_until=until,
    )


def _letter_for(
    request: Request, portal: Portal, user: PortalUser, person: Bsn, form: dict[str, str]
) -> LetterDraft:
    from betrokken.keyservice.client import ACCESS_REQUEST, Pseudonymiser

    addressee, _problems = read_addressee(form)
    opened = _open(portal)
    node = portal.loaded.node
    everyone = [o.id for o in portal.network.organisations]
    with Pseudonymiser(node.network, node.tls, portal.organisation.id) as pseudonymiser:
        found = pseudonymiser.pseudonymise_under([person], everyone, ACCESS_REQUEST, role=ROLE)
    keys = PersonKeys(
        {org: ps[0].value for org, ps in found.items()},
        frozenset(ps[0].fingerprint for ps in found.values()),
    )
    own = found[portal.organisation.id][0]
    _access(request, opened, user, "subject", {"fingerprint": own.fingerprint})
    records = find_records(opened.log, keys)
    today = dt.datetime.now(i18n.AMSTERDAM).date()
    current = current_registrations(portal, own, today)
    registered = _register(portal).letter_made(
        addressee.reference, own.fingerprint, addressee.requested_on or today, user.name
    )
    # The question's case is the request: our reference, else the register's number for it.
    # A letter made again for an open request reads the answers to the question asked then: the
    # partners are asked once per request, and their FGs' term is not started again.
    answer_id: str | None = registered.answer_id or None
    asked_at = registered.asked_at or portal.clock()
    if answer_id is None:
        case = addressee.reference or f"INZAGE-{registered.id}"
        answer_id = ask_partners(portal, user, person, case)
        if answer_id is not None:
            _register(portal).asked(registered.id, answer_id, asked_at)
    return LetterDraft(
        tuple(records),
        keys,
        addressee,
        person.masked(),
        today,
        tuple(current),
        answer_id,
        asked_at.astimezone(i18n.AMSTERDAM).date(),
    )


async def request_letter(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    form = await checked_form(request)
    values = {k: str(form.get(k, "")) for k in _blank()}
    _addressee, problems = read_addressee(values)
    raw = str(form.get("bsn", ""))
    person: Bsn | None = None
    try:
        person = parse_bsn(raw)
    except InvalidBsn:
        problems["bsn"] = N_(
            "This is not a valid BSN: it must have 9 digits and pass the elfproef. Check the "
            "number in the request."
        )
    del raw
    if problems or person is None:
        return render(
            request,
            "dpo/request.html",
            {
                "values": values,
                "problems": {k: _(v) for k, v in problems.items()},
                "errors": FormErrors.of(
                    (k, _(problems[k])) for k in LETTER_FIELDS if k in problems
                ),
                "register": [],
            },
            status=400,
        )
    language = i18n.current_language()

    def work() -> LetterDraft:
        i18n.set_language(language)
        assert person is not None
        return _letter_for(request, portal, user, person, values)

    try:
        letter = await run_in_threadpool(work)
    except BetrokkenError as exc:
        return render(
            request,
            "dpo/request.html",
            {
                "values": values,
                "problems": {},
                "failure": _(
                    "The letter could not be made: the key service or the log could not be "
                    "reached. Try again in a few minutes; if it persists, tell your administrator."
                ),
                "failure_detail": exc.message,
            },
            status=503,
        )
    # Post/redirect/get: the browser's history (and its session files on disk) then holds the
    # letter's address, never the posted form with the BSN in it.
    session = session_of(request)
    assert session is not None  # checked_form refused a request without one
    session.data[LETTER] = letter
    return RedirectResponse("/dpo/inzage/brief", status_code=303)


async def letter_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    session = session_of(request)
    draft = session.data.get(LETTER) if session is not None else None
    if not isinstance(draft, LetterDraft):
        return RedirectResponse("/dpo/inzage", status_code=303)
    language = i18n.current_language()

    def work() -> tuple[Letter, str]:
        from betrokken.portal.meldingen import collect_mailbox

        i18n.set_language(language)
        _access(request, _open(portal), user, "subject-letter", {})
        # the partners' late answers to the FG's question: collected when the letter is opened
        problem = collect_mailbox(portal) if draft.answer_id is not None else ""
        return build_from(portal, draft, portal.clock()), problem

    letter, problem = await run_in_threadpool(work)
    return render(request, "dpo/letter.html", {"letter": letter, "late_problem": problem})


async def home(request: Request) -> Response:
    current_user(request, ROLE)
    return RedirectResponse("/dpo/status", status_code=303)


MODULE = RoleModule(
    ROLE,
    [
        Route("/dpo", home),
        Route("/dpo/status", status_page),
        Route("/dpo/logboek", log_page),
        Route("/dpo/rapport", report_page),
        Route("/dpo/rapport/volledig", report_document),
        Route("/dpo/inzage", request_form, methods=["GET"]),
        Route("/dpo/inzage", request_letter, methods=["POST"]),
        Route("/dpo/inzage/brief", letter_page),
        Route("/dpo/inzage/verzonden", request_sent, methods=["POST"]),
        Route(beslissen.FG_PATH, beslissen.fg_page, methods=["GET"]),
        Route(beslissen.FG_PATH, beslissen.fg_decide, methods=["POST"]),
    ],
    [
        NavItem("/dpo/status", N_("Log status")),
        NavItem("/dpo/logboek", N_("The log")),
        NavItem("/dpo/rapport", N_("Report")),
        NavItem("/dpo/inzage", N_("Access request")),
        NavItem(beslissen.FG_PATH, N_("Decide on sharing"), new=beslissen.fg_open),
    ],
)
