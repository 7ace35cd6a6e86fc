"""The regisseur's pages: ask about one person, ask about a list, and "Mijn vragen".

Every question goes through the organisation's :class:`~betrokken.requester.client.Requester`
(``portal.ask``), the command line's code path, with the logged-in user's name and the role
``regisseur``: those are what is signed and recorded, never a typed name. The BSN arrives in a
POST body only, lives in memory for the question, and is shown masked. Every POST ends in a
redirect (to the answer, kept in the user's session, or back to the form with what to correct), so
the browser's history never holds the form that carried the BSN; no page is cached.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from betrokken import rules
from betrokken.audit.access import with_entries
from betrokken.audit.record import Event
from betrokken.config.schema import Network
from betrokken.crypto.bsn import parse_bsn
from betrokken.errors import (
    BadInput,
    BetrokkenError,
    InvalidBsn,
    PolicyRefusal,
    PurposeNotAllowed,
    QuotaExceeded,
    RateLimited,
    Unavailable,
    VerificationError,
)
from betrokken.portal.answers import (
    EXPORT_COLUMNS,
    AskedQuestion,
    CaseFilter,
    ReopenedAnswer,
    answer_code,
    export_rows,
    filter_cases,
    find_answer,
    my_questions,
    overview,
    page_of,
    person_view,
    reopen,
)
from betrokken.portal.auth import PortalUser, checked_form, current_user, session_of
from betrokken.portal.forms import AskForm, FormErrors, ListForm, MineFilter, parse
from betrokken.portal.i18n import AMSTERDAM, _
from betrokken.portal.reading import refusal_text
from betrokken.portal.web import N_, NavItem, Portal, RoleModule, client_address, portal_of, render
from betrokken.requester.client import Person, QueryResult
from betrokken.tabular import Problems, read_table

ROLE = "regisseur"
MAX_CASE = 64
MAX_UPLOAD = 5 * 1024 * 1024
CASE_COLUMNS = (
    "case",
    "zaaknummer",
    "zaak",
    "zaak-id",
    "zaaknr",
    "zaaknr.",
    "dossiernummer",
    "kenmerk",
)
KEPT_ANSWERS = 20  # per session, in memory; gone at log-out or expiry


def _purpose(portal: Portal, user: PortalUser, chosen: str) -> str:
    allowed = {p.id for p in portal.purposes_for(user, ROLE)}
    if chosen not in allowed:
        portal.record(
            Event.REFUSAL,
            user.name,
            ROLE,
            reason="PurposeNotAllowed",
            purpose=chosen[:64],
            details={"refused by": "portal: the purpose is not among this user's purposes"},
        )
        raise PolicyRefused(
            _(
                "You may not ask questions with the purpose '{purpose}'. Choose one of the "
                "purposes in the list; if you need another for your work, ask your administrator."
            ).format(purpose=chosen[:64])
        )
    return chosen


class PolicyRefused(Exception):
    def __init__(self, message: str, technical: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.technical = technical


async def _ask(
    request: Request,
    user: PortalUser,
    persons: Sequence[Person],
    purpose: str,
    namens: str = "",
    *,
    gezin: bool = False,
    retry_of: str = "",
    watch_days: int = 0,
) -> list[QueryResult]:
    """Ask through the organisation's requester, in questions of at most the network's size."""
    portal = portal_of(request)
    size = portal.network.coordinator.max_batch
    results = []
    for start in range(0, len(persons), size):
        batch = list(persons[start : start + size])

        def ask(batch: list[Person] = batch) -> QueryResult:
            with portal.lock:
                result: QueryResult = portal.ask(
                    batch,
                    purpose=purpose,
                    user=user.name,
                    role=ROLE,
                    on_behalf_of=namens or None,
                    gezin=gezin,
                    retry_of=retry_of,
                    watch_days=watch_days,
                )
                return result

        try:
            results.append(await run_in_threadpool(ask))
        except PolicyRefusal as exc:
            raise PolicyRefused(_refusal_text(exc, purpose), exc.message) from None
        except BetrokkenError as exc:
            raise NoAnswer(_problem_text(exc), exc.message) from None
    return results


class NoAnswer(Exception):
    def __init__(self, message: str, technical: str) -> None:
        super().__init__(message)
        self.message = message
        self.technical = technical


def _refusal_text(exc: PolicyRefusal, purpose: str) -> str:
    if isinstance(exc, PurposeNotAllowed):
        return _(
            "The network does not allow your organisation (or your role) to ask with the "
            "purpose '{purpose}'. Nothing was asked."
        ).format(purpose=purpose)
    if isinstance(exc, QuotaExceeded) and exc.message.startswith("user '"):
        return _(
            "You have asked about as many persons today as the network allows one user. "
            "Nothing was asked; try again tomorrow."
        )
    if isinstance(exc, QuotaExceeded):
        return _(
            "Your organisation has asked about as many persons today as the network allows. "
            "Nothing was asked; try again tomorrow or ask your administrator."
        )
    if "case reference" in exc.message:
        return _(
            "One case number may not be used for this many persons: a question is asked for a "
            "case you work on, and several persons share a case only as one household. Give "
            "each person the case number they belong to. Nothing was asked."
        )
    if isinstance(exc, RateLimited):
        return _("Too many questions in a short time. Wait a minute and ask again.")
    return _("The question was refused. Nothing was asked.")


def _problem_text(exc: BetrokkenError) -> str:
    if isinstance(exc, Unavailable):
        return _(
            "The network cannot be reached right now, so there is no answer. This is not a "
            "'not involved'. Try again in a few minutes; if it persists, tell your administrator."
        )
    if isinstance(exc, VerificationError):
        return _(
            "The answer could not be verified and is not shown. Tell your privacy officer (DPO) "
            "and your administrator; mention the time."
        )
    if isinstance(exc, BadInput):
        return _("The question could not be asked: {message}").format(message=exc.message)
    return _(
        "The question could not be answered. This is not a 'not involved'. Try again; if it "
        "persists, tell your administrator."
    )


def _problem_redirect(
    request: Request, path: str, context: dict[str, Any], exc: Exception
) -> Response:
    """Keep the problem (never the BSN) for the form page and send the browser there: every POST
    ends in a redirect, so no browser keeps a form with a BSN in its history (P1)."""
    message = getattr(exc, "message", "")
    kind = "refused" if isinstance(exc, PolicyRefused) else "problem"
    session = session_of(request)
    assert session is not None  # checked_form made sure
    session.data["flash"] = {
        "path": path,
        "problem": message,
        "technical": getattr(exc, "technical", ""),
        "kind": kind,
        "field": getattr(exc, "field", ""),
        "problems": context.get("problems", []),
        "values": context.get("values", {}),
    }
    return RedirectResponse(path, status_code=303)


def _flash(request: Request, path: str) -> dict[str, Any]:
    session = session_of(request)
    flash = session.data.pop("flash", None) if session else None
    if isinstance(flash, dict) and flash.get("path") == path:
        return {k: v for k, v in flash.items() if k != "path"}
    return {}


def _keep_answer(request: Request, template: str, context: dict[str, Any]) -> Response:
    """Keep an answer in the user's session (in memory, masked BSNs only) and redirect to it."""
    session = session_of(request)
    assert session is not None
    answers = session.data.setdefault("answers", {})
    assert isinstance(answers, dict)
    key = secrets.token_urlsafe(12)
    answers[key] = (template, context)
    while len(answers) > KEPT_ANSWERS:
        answers.pop(next(iter(answers)))
    return RedirectResponse(f"/antwoord/{key}", status_code=303)


# --- asking the incomplete persons again -------------------------------------------------------
# The BSNs of the persons whose answer was incomplete, kept with the answer in the session for a
# "vraag de onvolledige opnieuw": sealed with a key that exists only in this process's memory
# (AES-GCM), so they are never in the clear outside a question and gone with a restart.
_SEAL = AESGCM(AESGCM.generate_key(bit_length=256))


@dataclass(frozen=True)
class Retry:
    """How to ask the incomplete persons of an answer again."""

    sealed: bytes
    nonce: bytes
    count: int
    purpose: str
    namens: str
    gezin: bool
    answer_id: str


def _retry(
    persons: Sequence[Person],
    views: Sequence[Any],
    result: QueryResult,
    namens: str,
    *,
    gezin: bool,
) -> Retry | None:
    again = [
        f"{person.bsn.digits}\t{person.case}"
        for person, view in zip(persons, views, strict=False)
        if not view.complete
    ]
    if not again:
        return None
    nonce = secrets.token_bytes(12)
    sealed = _SEAL.encrypt(nonce, "\n".join(again).encode(), result.answer_id.encode())
    return Retry(sealed, nonce, len(again), result.purpose, namens, gezin, result.answer_id)


def _unseal(retry: Retry) -> list[Person]:
    text = _SEAL.decrypt(retry.nonce, retry.sealed, retry.answer_id.encode()).decode()
    persons = []
    for line in text.split("\n"):
        digits, case = line.split("\t", 1)
        persons.append(Person(parse_bsn(digits), case))
    return persons


async def retry_submit(request: Request) -> Response:
    """Ask again only the persons whose answer was incomplete, marked as a retry of that answer
    (the FG's report does not count it as a repeat)."""
    user = current_user(request, ROLE)
    portal = portal_of(request)
    await checked_form(request)
    session = session_of(request)
    answers = session.data.get("answers", {}) if session else {}
    kept = answers.get(request.path_params["key"]) if isinstance(answers, dict) else None
    retry = kept[1].get("retry") if kept else None
    if not isinstance(retry, Retry):
        return RedirectResponse("/mijn-vragen", status_code=303)
    persons = _unseal(retry)
    back = f"/antwoord/{request.path_params['key']}"
    try:
        purpose = _purpose(portal, user, retry.purpose)
        results = await _ask(
            request,
            user,
            persons,
            purpose,
            retry.namens,
            gezin=retry.gezin and len(persons) > 1,
            retry_of=retry.answer_id,
        )
    except (PolicyRefused, NoAnswer) as exc:
        return _problem_redirect(request, back, {}, exc)
    views = [
        person_view(portal.network, number, person)
        for number, person in enumerate((p for r in results for p in r.persons), start=1)
    ]
    context = _answer_context(portal, results[0], views)
    context.update(
        overview=overview(views),
        results=results,
        incomplete=sum(1 for v in views if not v.complete),
        hits=sum(1 for v in views if v.involved),
        retry=_retry(persons, views, results[0], retry.namens, gezin=retry.gezin),
        retry_of=retry.answer_id,
    )
    return _keep_answer(request, "regisseur/list_result.html", context)


async def answer_page(request: Request) -> Response:
    current_user(request, ROLE)
    session = session_of(request)
    answers = session.data.get("answers", {}) if session else {}
    kept = answers.get(request.path_params["key"]) if isinstance(answers, dict) else None
    if kept is None:
        return render(request, "regisseur/gone.html", status=404)
    template, context = kept
    context = {**context, **_flash(request, request.url.path)}
    return render(request, template, context)


# --- one person ------------------------------------------------------------------------------
async def ask_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    context = _form_context(request, user)
    context.update(_flash(request, "/vraag"))
    return render(request, "regisseur/ask.html", context)


def _form_context(request: Request, user: PortalUser, **values: str) -> dict[str, Any]:
    portal = portal_of(request)
    purposes = portal.purposes_for(user, ROLE)
    listed = {a.organisation for p in purposes for a in p.on_behalf_of}
    aanmelders = [o for o in portal.network.organisations if o.id in listed]
    return {
        "purposes": purposes,
        "values": values,
        # the purposes a question may leave a watch for (the network file's watch_days)
        "watching": [p for p in purposes if p.watch_days > 0],
        "aanmelders": aanmelders,
        "acts_for_others": portal.organisation.acts_for_others,
        "persons_per_case": portal.network.user_limits.persons_per_case,
    }


async def ask_submit(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    form = await checked_form(request)
    parsed = parse(AskForm, form)
    context = _form_context(
        request,
        user,
        doel=str(form.get("doel", ""))[:64],
        zaak=str(form.get("zaak", ""))[:200],
        namens=str(form.get("namens", ""))[:64],
        signaal="ja" if form.get("signaal") == "ja" else "",
    )
    if isinstance(parsed, FormErrors):
        return _errors_redirect(request, "/vraag", context, parsed)
    try:
        purpose = _purpose(portal, user, parsed.doel)
        watch_days = watch_days_for(portal.network, purpose, parsed.signaal)
        if watch_days is None:
            errors = FormErrors.of([("signaal", _(NO_WATCH))])
            return _errors_redirect(request, "/vraag", context, errors)
        results = await _ask(
            request,
            user,
            [Person(parsed.bsn, parsed.zaak)],
            purpose,
            parsed.namens,
            watch_days=watch_days,
        )
    except (PolicyRefused, NoAnswer) as exc:
        return _problem_redirect(request, "/vraag", context, exc)
    result = results[0]
    view = person_view(portal.network, 1, result.persons[0])
    context = _answer_context(portal, result, [view])
    if watch_days:  # said on the answer, so the user sees the box took effect
        context["watch_until"] = rules.watch_until(result.answered_at, watch_days)
    context["retry"] = _retry(
        [Person(parsed.bsn, parsed.zaak)], [view], result, parsed.namens, gezin=False
    )
    return _keep_answer(request, "regisseur/answer.html", context)


NO_WATCH = N_(
    "The purpose you chose does not let a question leave a signal. Untick the signal, or choose "
    "a purpose that allows one; nothing was asked."
)


def watch_days_for(network: Network, purpose: str, ticked: bool) -> int | None:
    """How long the question leaves a watch: the purpose's ``watch_days`` when ticked, 0 when
    not; None when ticked for a purpose that allows none (closed unless the network file says)."""
    if not ticked:
        return 0
    found = network.purpose(purpose)
    return found.watch_days if found is not None and found.watch_days > 0 else None


def _errors_redirect(
    request: Request, path: str, context: dict[str, Any], errors: FormErrors
) -> Response:
    """The form's errors (never the BSN) kept for the form page, and the browser sent there."""
    session = session_of(request)
    assert session is not None  # checked_form made sure
    session.data["flash"] = {
        "path": path,
        "errors": [(e.field, e.message) for e in errors],
        "problems": context.get("problems", []),
        "values": context.get("values", {}),
    }
    return RedirectResponse(path, status_code=303)


def _answer_context(portal: Portal, result: QueryResult, views: list[Any]) -> dict[str, Any]:
    purpose = portal.network.purpose(result.purpose)
    return {
        "result": result,
        "purpose": purpose,
        "persons": views,
        "trail_problem": result.trail_problem,
    }


# --- a list ------------------------------------------------------------------------------------
async def list_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    context = _form_context(request, user)
    context.update(_flash(request, "/lijst"))
    return render(request, "regisseur/list.html", context)


async def list_submit(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    form = await checked_form(request)
    parsed = parse(ListForm, form)
    context = _form_context(
        request,
        user,
        doel=str(form.get("doel", ""))[:64],
        zaak=" ".join(str(form.get("zaak", "")).split())[:200],
        namens=str(form.get("namens", ""))[:64],
        gezin="ja" if form.get("gezin") == "ja" else "",
    )
    errors = parsed if isinstance(parsed, FormErrors) else FormErrors()
    upload = form.get("bestand")
    data = b""
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors.add("bestand", _("Choose the file with the list."))
    else:
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            errors.add("bestand", _("The file is larger than 5 MB; split the list."))
    if errors or isinstance(parsed, FormErrors):
        return _errors_redirect(request, "/lijst", context, errors)
    persons, problems, read = await run_in_threadpool(_read_list, data, parsed.zaak)
    if problems:
        context["problems"] = problems
        context["read"] = read
        return _errors_redirect(
            request,
            "/lijst",
            context,
            FormErrors().add(
                "bestand",
                _("Some lines cannot be asked; nothing was asked. Correct them and upload again."),
            ),
        )
    try:
        purpose = _purpose(portal, user, parsed.doel)
        results = await _ask(request, user, persons, purpose, parsed.namens, gezin=parsed.gezin)
    except (PolicyRefused, NoAnswer) as exc:
        return _problem_redirect(request, "/lijst", context, exc)
    views = [
        person_view(portal.network, number, person)
        for number, person in enumerate((p for r in results for p in r.persons), start=1)
    ]
    context = _answer_context(portal, results[0], views)
    context.update(
        overview=overview(views),
        results=results,
        incomplete=sum(1 for v in views if not v.complete),
        hits=sum(1 for v in views if v.involved),
        retry=_retry(persons, views, results[0], parsed.namens, gezin=parsed.gezin),
    )
    return _keep_answer(request, "regisseur/list_result.html", context)


def _read_list(data: bytes, default_case: str) -> tuple[list[Person], list[str], str]:
    """The persons in an uploaded list, or the problems (per kind, with example lines)."""
    try:
        table = read_table(data, _("the file"), ["bsn", *CASE_COLUMNS], required=["bsn"])
    except BadInput as exc:
        return [], [refusal_text(exc, {"bsn": "BSN"})], ""
    problems = Problems()
    persons: list[Person] = []
    no_case_column = not any(c in table.columns for c in CASE_COLUMNS)
    missing_case = False
    for row in table.rows():
        if row.problem:
            problems.add(row.line, _("the line does not match the header"))
            continue
        try:
            bsn = parse_bsn(row.text("bsn"))
        except InvalidBsn:
            problems.add(row.line, _("not a valid BSN (9 digits, eleven test)"))
            continue
        case = next((row.text(c) for c in CASE_COLUMNS if row.text(c)), default_case)
        case = " ".join(case.split())
        if not case and no_case_column:
            # Said once, with the columns that were not read, rather than on every line.
            problems.add(row.line, _("no case number: no column of the file was read as one"))
            missing_case = True
            continue
        if not case:
            problems.add(row.line, _("no case number (and no case number for the whole list)"))
            continue
        if len(case) > MAX_CASE or not case.isprintable():
            problems.add(row.line, _("the case number is too long or holds odd characters"))
            continue
        persons.append(Person(bsn, case))
    if not persons and not problems:
        return [], [_("The file holds no persons.")], table.description
    lines = _problem_lines(problems)
    if missing_case and table.ignored:
        lines.insert(
            0,
            _(
                "No column with the case number was found; the columns not read are: "
                "{columns}. Name that column \u201cZaaknummer\u201d, or fill in one case number "
                "for the whole list."
            ).format(columns=", ".join(f"\u201c{c}\u201d" for c in table.ignored)),
        )
    return persons, lines, table.description


def _problem_lines(problems: Problems) -> list[str]:
    lines = []
    for kind, count, examples in problems.groups():
        shown = ", ".join(str(n) for n in examples)
        if count == 1:
            lines.append(_("line {line}: {problem}").format(line=shown, problem=kind))
        else:
            lines.append(
                _("{count} lines: {problem} — e.g. line {lines}").format(
                    count=f"{count:,}".replace(",", "."), problem=kind, lines=shown
                )
            )
    return lines


# --- my questions ------------------------------------------------------------------------------
MINE_PAGE_SIZE = 10  # cases per page


async def mine_page(request: Request) -> Response:
    """The user's questions, per case. Filter and page are POSTed, never in the address (a
    question page takes nothing from it)."""
    user = current_user(request, ROLE)
    portal = portal_of(request)
    wanted, number, errors = CaseFilter(), 1, FormErrors()
    if request.method == "POST":
        form = await checked_form(request)
        parsed = parse(MineFilter, form)
        if isinstance(parsed, FormErrors):
            errors = parsed
            parsed = MineFilter(zaak=str(form.get("zaak", "")).strip()[:128])
        wanted = CaseFilter(case=parsed.zaak, first=parsed.van, last=parsed.tot, code=parsed.code)
        number = parsed.pagina

    def read() -> list[Any]:
        entries = [
            entry
            for _, entry in with_entries(portal.trail.records())
            if entry is not None and entry.user == user.name
        ]
        return my_questions(portal.network, user.name, entries)

    everything = await run_in_threadpool(read)
    cases = filter_cases(everything, wanted)
    shown, number, pages = page_of(cases, number, MINE_PAGE_SIZE)
    portal.record(
        Event.LOG_ACCESS,
        user.name,
        ROLE,
        reason="portal: my questions",
        access_point=client_address(request),
        details={"filter": f"user={user.name}, event=own-query"},
    )
    return render(
        request,
        "regisseur/mine.html",
        {
            "cases": shown,
            "total": len(cases),
            "asked_any": bool(everything),
            "wanted": wanted,
            "page": number,
            "pages": pages,
            "errors": errors,
            "answer_code": answer_code,
        },
        status=400 if errors else 200,
    )


# --- an answer found again, and exported ------------------------------------------------------
def _own_entries(portal: Portal, user: PortalUser) -> list[Any]:
    return [
        entry
        for _, entry in with_entries(portal.trail.records())
        if entry is not None and entry.user == user.name
    ]


def _found(portal: Portal, user: PortalUser, code: str) -> Any:
    return find_answer(_own_entries(portal, user), user.name, code)


async def reopened_page(request: Request) -> Response:
    """An answer found again under "Mijn vragen", rebuilt from the record of the question in the
    organisation's own trail: only the user who asked it finds it (any other code: not found)."""
    user = current_user(request, ROLE)
    portal = portal_of(request)
    code = request.path_params["code"]
    entry = await run_in_threadpool(
        lambda: find_answer(_own_entries(portal, user), user.name, code)
    )
    if entry is None:
        return render(request, "regisseur/gone.html", status=404)
    answer = reopen(portal.network, entry)
    portal.record(
        Event.LOG_ACCESS,
        user.name,
        ROLE,
        reason="portal: answer reopened",
        access_point=client_address(request),
        details={"answer": entry.answer_id},
    )
    return render(request, "regisseur/reopened.html", {"answer": answer})


def _safe(cell: str) -> str:
    """A cell a spreadsheet never reads as a formula."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _download(rows: list[list[str]], kind: str, name: str) -> Response:
    header = [_(c) for c in EXPORT_COLUMNS]
    if kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(_("Answers"))
        sheet.append(header)
        for row in rows:
            sheet.append([_safe(c) for c in row])
        out = io.BytesIO()
        book.save(out)
        return Response(
            out.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_safe(c) for c in row] for row in rows)
    return Response(
        ("\ufeff" + text.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def reopened_export(request: Request) -> Response:
    """One answer as CSV or XLSX for the case file (no BSN: the trail keeps none)."""
    user = current_user(request, ROLE)
    portal = portal_of(request)
    kind = request.path_params["kind"]
    if kind not in ("csv", "xlsx"):
        return render(request, "regisseur/gone.html", status=404)
    code = request.path_params["code"]
    entry = await run_in_threadpool(
        lambda: find_answer(_own_entries(portal, user), user.name, code)
    )
    if entry is None:
        return render(request, "regisseur/gone.html", status=404)
    portal.record(
        Event.LOG_ACCESS,
        user.name,
        ROLE,
        reason="portal: answer exported",
        access_point=client_address(request),
        details={"answer": entry.answer_id, "format": kind},
    )
    rows = export_rows([reopen(portal.network, entry)])
    return _download(rows, kind, "antwoord-" + answer_code(entry.answer_id))


async def mine_export(request: Request) -> Response:
    """ "Mijn vragen" (as filtered) as CSV or XLSX: every answered question, per person and
    organisation."""
    user = current_user(request, ROLE)
    portal = portal_of(request)
    form = await checked_form(request)
    parsed = parse(MineFilter, form)
    wanted = (
        CaseFilter()
        if isinstance(parsed, FormErrors)
        else CaseFilter(case=parsed.zaak, first=parsed.van, last=parsed.tot, code=parsed.code)
    )
    kind = "xlsx" if form.get("formaat") == "xlsx" else "csv"
    entries = await run_in_threadpool(lambda: _own_entries(portal, user))
    answered = [
        reopen(portal.network, e)
        for e in entries
        if e.event is Event.OWN_QUERY and e.answer_id and e.reason == "answered"
    ]
    kept = [
        a
        for a in sorted(answered, key=lambda a: a.at, reverse=True)
        if any(wanted.keeps(q) for q in [_asked(a, p.case) for p in a.persons])
    ]
    portal.record(
        Event.LOG_ACCESS,
        user.name,
        ROLE,
        reason="portal: my questions exported",
        access_point=client_address(request),
        details={"filter": f"user={user.name}, event=own-query", "format": kind},
    )
    today = dt.datetime.now(AMSTERDAM).strftime("%Y-%m-%d")
    return _download(export_rows(kept), kind, f"mijn-vragen-{today}")


def _asked(answer: ReopenedAnswer, case: str) -> AskedQuestion:
    return AskedQuestion(answer.at, case, answer.purpose, answer.answer_id, "", [])


MODULE = RoleModule(
    role=ROLE,
    routes=[
        Route("/vraag", ask_page, methods=["GET"]),
        Route("/vraag", ask_submit, methods=["POST"]),
        Route("/lijst", list_page, methods=["GET"]),
        Route("/lijst", list_submit, methods=["POST"]),
        Route("/antwoord/{key}", answer_page, methods=["GET"]),
        Route("/mijn-vragen", mine_page, methods=["GET", "POST"]),
        Route("/mijn-vragen/export", mine_export, methods=["POST"]),
        Route("/mijn-vragen/{code}", reopened_page, methods=["GET"]),
        Route("/mijn-vragen/{code}/{kind}", reopened_export, methods=["GET"]),
        Route("/antwoord/{key}/opnieuw", retry_submit, methods=["POST"]),
    ],
    nav=[
        NavItem("/vraag", N_("Ask about a person")),
        NavItem("/lijst", N_("Ask about a list")),
        NavItem("/mijn-vragen", N_("My questions")),
    ],
)
