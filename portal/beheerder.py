"""The administrator's (beheerder's) pages: the node's status, and an import by upload.

The status is what ``betrokken node status`` shows (the node's store, its witness, its peers over
mutual TLS, its certificate), in words. The import runs the node's own import
(:func:`betrokken.node.admin.import_table`, the code ``betrokken node import``
runs) in a background thread; its page refreshes itself with ``<meta http-equiv="refresh">``
(no script needed, and the Content-Security-Policy does not govern it) until the summary is there,
with repeated problems collapsed (:class:`~betrokken.tabular.Problems`).

The upload holds BSNs. It is read into memory only, never written to disk: the request body is
read up to :data:`MAX_UPLOAD_BYTES` (a larger one is refused before it is read), parsed by a form
parser whose spool never rolls over to a temporary file, and the bytes are dropped as soon as
the import ends (docs/adr/0021).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from babel.numbers import format_decimal
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from betrokken.audit.record import Event
from betrokken.config.load import Loaded
from betrokken.config.schema import NodeConfig
from betrokken.crypto.bsn import mask
from betrokken.errors import BadInput, BetrokkenError, SyncGuarded
from betrokken.node.admin import (
    ENDING_SOON_DAYS,
    FIELDS,
    HEADERS,
    REQUIRED,
    ImportSummary,
    feed_overview,
    import_table,
    node_facts,
)
from betrokken.portal import accounts, i18n
from betrokken.portal.auth import (
    CSRF_FIELD,
    CsrfRefused,
    PortalUser,
    checked_form,
    current_user,
    session_of,
)
from betrokken.portal.forms import FormErrors, ImportForm, parse
from betrokken.portal.i18n import gettext as _
from betrokken.portal.reading import refusal_text, row_text
from betrokken.portal.web import (
    N_,
    NavItem,
    Portal,
    RoleModule,
    client_address,
    portal_of,
    render,
)
from betrokken.tabular import (
    ColumnProblem,
    Problems,
    Table,
    looks_like_a_date,
    preview,
    read_table,
)

log = logging.getLogger("betrokken.portal.beheerder")
ROLE = "beheerder"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # about 300,000 lines of a typical export
REFRESH_SECONDS = 2
MAX_GROUPS = 8
KEEP_JOBS = 20

# The problems the node's import names, in the words of the catalogue (see tabular, importer).
PROBLEMS = (
    N_("no BSN"),
    N_("BSN holds characters other than digits"),
    N_("BSN does not have 9 digits (or 8 when Excel dropped a leading zero)"),
    N_("BSN is all zeros"),
    N_("BSN fails the elfproef (11-check)"),
    N_("not a date (use YYYY-MM-DD or dd-mm-jjjj)"),
    N_("not a date (use YYYY-MM-DD or dd-mm-jjjj, or a date cell)"),
    N_("not a date that exists (use YYYY-MM-DD or dd-mm-jjjj)"),
    N_("until is before since"),
    N_("until is in the past: the registration would be ended at once"),
    N_("advice is not a code of the network file"),
    N_("the registration's end is in the past"),
    N_("disclosure may only be 'domain' or empty"),
    N_("reference is longer than 128 characters"),
    N_("contact is longer than 256 characters"),
    N_("domain is longer than 64 characters"),
    N_("no until in the file and the registration's own end is in the past"),
)
FIELD_NAMES = {
    "bsn": N_("BSN"),
    "since": N_("start date (since)"),
    "until": N_("end date (until)"),
    "contact": N_("contact"),
    "domain": N_("domain"),
    "reference": N_("reference"),
    "disclosure": N_("disclosure"),
}


def problem_text(kind: str) -> str:
    """A problem's kind in the reader's language: ``"since: not a date ..."`` becomes
    ``"startdatum (since): geen datum ..."``; a kind the catalogue does not know stays as it is."""
    name, sep, rest = kind.partition(": ")
    if sep and name in FIELD_NAMES:
        return f"{_(FIELD_NAMES[name])}: {_(rest)}"
    return row_text(kind)


def number(value: int) -> str:
    return format_decimal(value, locale=i18n.current_language())


def problem_lines(problems: Problems, max_groups: int = MAX_GROUPS) -> list[str]:
    """One line per kind of problem, most frequent first: "5.021 regels: ... — bijv. regel 2"."""
    groups = problems.groups(max_groups=len(problems.kinds()))
    out = []
    for kind, count, lines in groups[:max_groups]:
        what = problem_text(kind)
        if count == 1:
            out.append(_("line %(line)s: %(what)s") % {"line": lines[0], "what": what})
        else:
            out.append(
                _("%(count)s lines: %(what)s — e.g. line %(examples)s")
                % {
                    "count": number(count),
                    "what": what,
                    "examples": ", ".join(str(n) for n in lines),
                }
            )
    rest = groups[max_groups:]
    if rest:
        out.append(
            _("… and %(lines)s more lines with %(kinds)s other kinds of problem")
            % {"lines": number(sum(count for _kind, count, _lines in rest)), "kinds": len(rest)}
        )
    return out


# --- status -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    name: str
    address: str
    ok: bool
    state: str
    detail: str


@dataclass(frozen=True)
class NodeOverview:
    running: bool
    peers: tuple[Peer, ...]
    certificate_until: dt.datetime | None
    certificate_days: int | None
    certificate_warning: bool
    active: int
    by_domain: dict[str, int]
    ending_soon: int
    ending_days: int
    ended_not_removed: int
    withdrawals_remembered: int
    last_confirmation: dt.datetime | None
    last_change: dt.datetime | None
    disclosures: int
    stale_keys: bool
    witnessed_size: int | None
    witnessed_at: dt.datetime | None
    alarms: int
    trail_size: int


def _peer_name(name: str) -> str:
    if name.startswith("this node"):
        return _("our node")
    if name == "coordinator":
        return _("central switchboard (coordinator)")
    if name == "key service":
        return _("key service (codes the BSN)")
    return name


def node_overview(loaded: Loaded[NodeConfig]) -> NodeOverview:
    """What ``betrokken node status`` reports, as data."""
    from cryptography import x509

    from betrokken.health import NODE, peer_health
    from betrokken.identity.certs import EXPIRY_WARNING_DAYS

    facts = node_facts(loaded, dt.datetime.now(dt.UTC).date())
    status, accepted = facts.status, facts.witnessed
    peers = []
    running = False
    for found in peer_health(NODE, loaded):
        if found.name.startswith("this node"):
            running = found.ok
        state = {
            "serving": N_("working"),
            "not serving": N_("running, but reports it cannot do its work"),
            "unreachable": N_("cannot be reached"),
        }.get(found.status, found.status)
        peers.append(Peer(_peer_name(found.name), found.address, found.ok, _(state), found.detail))
    until: dt.datetime | None = None
    days: int | None = None
    try:
        cert = x509.load_pem_x509_certificate(Path(loaded.tls.certificate).read_bytes())
        until = cert.not_valid_after_utc
        days = (until - dt.datetime.now(dt.UTC)).days
    except (OSError, ValueError):
        pass
    return NodeOverview(
        running=running,
        peers=tuple(peers),
        certificate_until=until,
        certificate_days=days,
        certificate_warning=days is None or days < EXPIRY_WARNING_DAYS,
        active=status.active,
        by_domain=dict(sorted(status.by_domain.items())),
        ending_soon=status.ending_unconfirmed,
        ending_days=ENDING_SOON_DAYS,
        ended_not_removed=status.ended_not_yet_removed,
        withdrawals_remembered=status.withdrawals_remembered,
        last_confirmation=status.last_confirmation,
        last_change=status.last_change,
        disclosures=status.disclosures,
        stale_keys=facts.stale_keys,
        witnessed_size=accepted.size if accepted else None,
        witnessed_at=accepted.accepted_at if accepted else None,
        alarms=facts.alarms,
        trail_size=facts.trail_size,
    )


async def status_page(request: Request) -> Response:
    current_user(request, ROLE)
    portal = portal_of(request)
    overview = await run_in_threadpool(node_overview, portal.loaded.node)
    health, held = await run_in_threadpool(
        feed_overview, portal.loaded.node, dt.datetime.now(dt.UTC)
    )
    # feeding systems quiet too long, or with an export waiting for a beheerder (docs/adr/0036)
    attention = sorted({h.system for h in health if h.quiet} | {f.system for f in held})
    return render(request, "beheerder/status.html", {"node": overview, "feeds": attention})


# --- import -------------------------------------------------------------------------------------
@dataclass
class ImportJob:
    """One import by upload, as far as it got."""

    token: str
    user: str
    file_name: str
    description: str
    columns: dict[str, str]
    ignored: tuple[str, ...]
    total: int
    sync: bool
    started: dt.datetime
    summary: ImportSummary = field(default_factory=ImportSummary)
    done: int = 0
    finished: bool = False
    failure: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    force: bool = False  # a guarded sync the beheerder confirmed
    # A sync the guard stopped: what it measured, and the file (in memory) until it is confirmed
    # or :data:`PENDING_SECONDS` have passed.
    guarded: SyncGuarded | None = None
    held: Table | None = None
    held_since: float = 0.0
    confirmed: str = ""  # the token of the import the confirmation started

    def advance(self, lines: int) -> None:
        with self.lock:
            self.done += lines


def _jobs(request: Request) -> dict[str, ImportJob]:
    jobs: dict[str, ImportJob] | None = getattr(request.app.state, "imports", None)
    if jobs is None:
        jobs = {}
        request.app.state.imports = jobs
    return jobs


class TooLarge(Exception):
    pass


class InMemoryParser(MultiPartParser):
    """Starlette's form parser, with a spool that never rolls over to a file on disk: the body
    it reads is limited to :data:`MAX_UPLOAD_BYTES`, and so is every file in it."""

    spool_max_size = MAX_UPLOAD_BYTES + 1


async def _limited(request: Request) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise TooLarge()
        yield chunk


async def read_upload(request: Request) -> FormData:
    """The posted form with its file, in memory only; the CSRF token checked."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise TooLarge()
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(400)
    try:
        form = await InMemoryParser(request.headers, _limited(request), max_files=1).parse()
    except MultiPartException:
        raise HTTPException(400) from None
    session = session_of(request)
    sent = form.get(CSRF_FIELD)
    if (
        session is None
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent, request.app.state.portal.sessions.csrf_token(session))
    ):
        await form.close()
        raise CsrfRefused()
    return form


def _run_import(job: ImportJob, table: Table, loaded: Loaded[NodeConfig]) -> None:
    try:
        import_table(
            loaded,
            table,
            job.summary,
            actor=job.user,
            sync=job.sync,
            progress=job.advance,
            force=job.force,
        )
    except SyncGuarded as exc:
        job.failure = exc.message
        job.guarded, job.held, job.held_since = exc, table, time.monotonic()
    except BetrokkenError as exc:
        job.failure = exc.message
    except Exception as exc:  # the page says so; the log has the kind, never a value
        log.error("import by upload failed: %s", type(exc).__name__)
        job.failure = type(exc).__name__
    finally:
        job.finished = True


async def import_form(request: Request) -> Response:
    current_user(request, ROLE)
    mine = [j for j in _jobs(request).values() if j.user == current_user(request, ROLE).name]
    return render(
        request,
        "beheerder/import.html",
        {"problem": "", "limit": number(MAX_UPLOAD_BYTES // (1024 * 1024)), "jobs": mine[-5:]},
    )


async def import_upload(request: Request) -> Response:
    user: PortalUser = current_user(request, ROLE)
    portal: Portal = portal_of(request)
    limit = number(MAX_UPLOAD_BYTES // (1024 * 1024))

    def refuse(problem: str, status: int = 400) -> Response:
        return render(
            request,
            "beheerder/import.html",
            {"problem": problem, "problem_field": "bestand", "limit": limit, "jobs": []},
            status=status,
        )

    try:
        form = await read_upload(request)
    except TooLarge:
        return refuse(
            _("The file is larger than %(limit)s MB. Split it into parts and import each part.")
            % {"limit": limit},
            413,
        )
    upload = form.get("bestand")
    if not isinstance(upload, UploadFile) or not upload.filename:
        await form.close()
        return refuse(_("Choose a file to import (CSV or Excel .xlsx)."))
    data = await upload.read()
    name = Path(upload.filename).name[:100]
    options = parse(ImportForm, form)
    sync = isinstance(options, ImportForm) and options.volledig
    await form.close()
    if not data:
        return refuse(_("The file is empty."))
    configured = portal.loaded.node.component.import_.columns
    try:
        table = read_table(
            data, name, FIELDS, required=REQUIRED, mapping=configured, headers=HEADERS
        )
    except ColumnProblem as exc:
        # Readable, but the columns need a person's choice: the mapping step, the file kept in
        # memory (never on disk) under a token only this user's page knows.
        pending = PendingImport(secrets.token_urlsafe(16), user.name, data, name, sync)
        _pending(request)[pending.token] = pending
        return _mapping_page(request, pending, problem=column_problem(exc), initial=configured)
    except BadInput as exc:
        return refuse(refusal_text(exc, FIELD_NAMES))
    del data  # the table keeps what it needs until the import ends
    return _start(request, user, table, name, sync)


def _start(
    request: Request,
    user: PortalUser,
    table: Table,
    name: str,
    sync: bool,
    *,
    force: bool = False,
) -> Response:
    portal: Portal = portal_of(request)
    job = ImportJob(
        force=force,
        token=secrets.token_urlsafe(16),
        user=user.name,
        file_name=name,
        description=table.description,
        columns=dict(table.columns),
        ignored=table.ignored,
        total=table.size,
        sync=sync,
        started=dt.datetime.now(dt.UTC),
    )
    jobs = _jobs(request)
    for old in [t for t, j in jobs.items() if j.finished][: max(0, len(jobs) - KEEP_JOBS)]:
        del jobs[old]
    jobs[job.token] = job
    threading.Thread(
        target=_run_import, args=(job, table, portal.loaded.node), daemon=True, name="import"
    ).start()
    return RedirectResponse(f"/beheer/import/{job.token}", status_code=303)


def column_problem(exc: ColumnProblem) -> str:
    """What is wrong with the columns, in the reader's language."""
    fields = ", ".join(_(FIELD_NAMES.get(f, f)) for f in exc.missing)
    if exc.dated:
        return _(
            "The column “%(column)s” looks like a date but is not read, and no column is read "
            "for %(fields)s. Choose what it holds; if it holds neither, leave it out of the "
            "export (a forgotten end date would keep a closed case open)."
        ) % {"column": exc.dated, "fields": fields}
    return _("No column of the file is recognised as %(fields)s.") % {"fields": fields}


@dataclass
class PendingImport:
    """An upload waiting for the beheerder's choice of columns (in memory, for a short while)."""

    token: str
    user: str
    data: bytes
    file_name: str
    sync: bool
    created: float = field(default_factory=time.monotonic)


PENDING_SECONDS = 15 * 60
_BSN_LIKE = re.compile(r"\d{7,9}")


def _pending(request: Request) -> dict[str, PendingImport]:
    pending: dict[str, PendingImport] | None = getattr(request.app.state, "pending", None)
    if pending is None:
        pending = {}
        request.app.state.pending = pending
    now = time.monotonic()
    for token in [t for t, p in pending.items() if now - p.created > PENDING_SECONDS]:
        del pending[token]
    return pending


def _masked(cell: str) -> str:
    """A preview cell as shown: anything that could be a BSN masked like every BSN here."""
    return _BSN_LIKE.sub(lambda m: mask(m.group(0).zfill(9)), cell)


def _recognised(header: tuple[str, ...], initial: Mapping[str, str]) -> list[str]:
    """The field each column is read as unless the beheerder chooses otherwise."""
    chosen: list[str] = []
    for name in header:
        folded = name.casefold()
        guess = next((f for f, column in initial.items() if column.casefold() == folded), "")
        if not guess:
            guess = next(
                (
                    f
                    for f in FIELDS
                    if f == folded or folded in (a.casefold() for a in HEADERS.aliases.get(f, ()))
                ),
                "",
            )
        chosen.append("" if guess in chosen else guess)
    return chosen


def _mapping_page(
    request: Request,
    pending: PendingImport,
    *,
    problem: str,
    initial: Mapping[str, str],
    chosen: list[str] | None = None,
) -> Response:
    try:
        header, lines = preview(pending.data, pending.file_name)
    except BadInput as exc:
        _pending(request).pop(pending.token, None)
        return render(
            request,
            "beheerder/import.html",
            {
                "problem": refusal_text(exc, FIELD_NAMES),
                "problem_field": "bestand",
                "limit": number(MAX_UPLOAD_BYTES // (1024 * 1024)),
                "jobs": [],
            },
            status=400,
        )
    return render(
        request,
        "beheerder/mapping.html",
        {
            "pending": pending,
            "problem": problem,
            "problem_field": _mapping_field(header, chosen or _recognised(header, initial)),
            "columns": list(
                zip(
                    header,
                    chosen or _recognised(header, initial),
                    [looks_like_a_date(h) for h in header],
                    strict=True,
                )
            ),
            "lines": [[_masked(c) for c in line] for line in lines],
            "fields": [(f, FIELD_NAMES.get(f, f)) for f in FIELDS],
        },
        status=400,
    )


def _mapping_field(header: tuple[str, ...], chosen: list[str]) -> str:
    """The column choice the mapping's problem links to: the first column that looks like a date
    and is not read, else the first column."""
    for index, (name, field_) in enumerate(zip(header, chosen, strict=True)):
        if looks_like_a_date(name) and not field_:
            return f"kolom-{index}"
    return "kolom-0"


async def import_mapping(request: Request) -> Response:
    """The beheerder's choice of columns for a pending upload: read again with it."""
    user: PortalUser = current_user(request, ROLE)
    form = await checked_form(request)
    pending = _pending(request).get(str(form.get("token", "")))
    if pending is None or pending.user != user.name:
        return render(
            request,
            "beheerder/import.html",
            {
                "problem": _(
                    "The uploaded file is no longer here (it is kept for 15 minutes only). "
                    "Upload it again."
                ),
                "problem_field": "bestand",
                "limit": number(MAX_UPLOAD_BYTES // (1024 * 1024)),
                "jobs": [],
            },
            status=400,
        )
    header = preview(pending.data, pending.file_name, lines=0)[0]
    chosen = [str(form.get(f"kolom-{i}", "")) for i in range(len(header))]
    chosen = [c if c in FIELDS else "" for c in chosen]
    mapping = {f: "" for f in FIELDS}  # nothing read unless chosen
    for column, name in zip(header, chosen, strict=True):
        if name:
            mapping[name] = column
    try:
        table = read_table(
            pending.data,
            pending.file_name,
            FIELDS,
            required=REQUIRED,
            mapping=mapping,
            headers=HEADERS,
        )
    except ColumnProblem as exc:
        return _mapping_page(
            request, pending, problem=column_problem(exc), initial={}, chosen=chosen
        )
    except BadInput as exc:
        return _mapping_page(
            request, pending, problem=refusal_text(exc, FIELD_NAMES), initial={}, chosen=chosen
        )
    del _pending(request)[pending.token]
    return _start(request, user, table, pending.file_name, pending.sync)


async def import_progress(request: Request) -> Response:
    user = current_user(request, ROLE)
    job = _jobs(request).get(request.path_params["token"])
    if job is None or job.user != user.name:
        raise HTTPException(404)
    return _progress_page(request, job)


def _progress_page(request: Request, job: ImportJob, errors: FormErrors | None = None) -> Response:
    with job.lock:
        done = job.done
    summary = job.summary
    still = request.query_params.get("stil") == "1"  # WCAG 2.2.1: the refresh can be turned off
    percent = 100 if job.finished else int(100 * done / job.total) if job.total else 0
    return render(
        request,
        "beheerder/progress.html",
        {
            "job": job,
            "done": number(min(done, job.total)),
            "total": number(job.total),
            "percent": percent,
            "refresh": None if job.finished or still else REFRESH_SECONDS,
            "still": still,
            "counts": {
                "added": number(summary.added),
                "updated": number(summary.updated),
                "unchanged": number(summary.unchanged),
                "rejected": number(summary.rejected),
                "kept_withdrawn": number(summary.kept_withdrawn),
                "ended": number(summary.ended) if summary.ended is not None else None,
            },
            "problems": problem_lines(summary.problems),
            "rejected": summary.rejected,
            "open_until": summary.open_until,
            "sync_skipped": bool(summary.sync_skipped),
            "field_names": FIELD_NAMES,
            "guarded": guarded_text(job.guarded) if job.guarded else "",
            "can_confirm": job.guarded is not None and _held(job),
            "errors": errors or FormErrors(),
        },
        status=400 if errors else 200,
    )


def guarded_text(guarded: SyncGuarded) -> str:
    """What the sync guard stopped, in the reader's language (the error's own text is English)."""
    values = {
        "ending": number(guarded.ending),
        "active": number(guarded.active),
        "percent": format_percent(guarded.ending / guarded.active if guarded.active else 0),
        "allowed": format_percent(guarded.share),
    }
    if guarded.before:
        text = _(
            "The file has too few lines to be the whole caseload: importing it as the whole "
            "caseload would end at least %(ending)s of the %(active)s active registrations "
            "(%(percent)s), more than the %(allowed)s allowed. Nothing was read or changed."
        )
    else:
        text = _(
            "Importing this file as the whole caseload would end %(ending)s of the %(active)s "
            "active registrations (%(percent)s), more than the %(allowed)s allowed. The file's "
            "lines were stored and confirmed; nothing was ended."
        )
    return text % values


def format_percent(share: float) -> str:
    return f"{round(share * 100)}%"


def _held(job: ImportJob) -> bool:
    """Whether a guarded sync's file is still here to confirm (kept for 15 minutes)."""
    if job.held is not None and time.monotonic() - job.held_since > PENDING_SECONDS:
        job.held = None
    return job.held is not None and not job.confirmed


async def confirm_sync(request: Request) -> Response:
    """The beheerder confirms a sync the guard stopped: the same file is imported again as the
    whole caseload, ending what it lacks (``node import --sync --force``), recorded in the trail."""
    user: PortalUser = current_user(request, ROLE)
    portal: Portal = portal_of(request)
    form = await checked_form(request)
    job = _jobs(request).get(request.path_params["token"])
    if job is None or job.user != user.name:
        raise HTTPException(404)
    if job.guarded is None or not _held(job):
        return RedirectResponse(f"/beheer/import/{job.token}", status_code=303)
    if form.get("zeker") != "ja":
        return _progress_page(
            request,
            job,
            errors=FormErrors().add(
                "zeker",
                _("Tick that you checked the file is the whole caseload, or import another file."),
            ),
        )
    table, guarded = job.held, job.guarded
    assert table is not None
    portal.record(
        Event.REGISTRATION,
        user.name,
        ROLE,
        reason="sync-confirmed",
        access_point=client_address(request),
        details={
            "action": "sync-confirmed",
            "file": job.file_name,
            "ending": str(guarded.ending),
            "active": str(guarded.active),
            "allowed share": f"{guarded.share:.2f}",
            "refused import": job.token[:8],
        },
    )
    response = _start(request, user, table, job.file_name, True, force=True)
    job.confirmed = response.headers["location"].rsplit("/", 1)[-1]
    job.held = None
    return response


async def home(request: Request) -> Response:
    current_user(request, ROLE)
    return RedirectResponse("/beheer/status", status_code=303)


MODULE = RoleModule(
    ROLE,
    [
        Route("/beheer", home),
        Route("/beheer/status", status_page),
        Route("/beheer/import", import_form, methods=["GET"]),
        Route("/beheer/import", import_upload, methods=["POST"]),
        Route("/beheer/import/kolommen", import_mapping, methods=["POST"]),
        Route("/beheer/import/{token}", import_progress),
        Route("/beheer/import/{token}/bevestig", confirm_sync, methods=["POST"]),
        *accounts.beheerder_routes(),
    ],
    [
        NavItem("/beheer/status", N_("Node status")),
        NavItem("/beheer/import", N_("Import")),
        NavItem(accounts.ACCOUNTS_PATH, N_("Accounts")),
    ],
)
