"""The beheerder's feeds page, and the report of a case system's full export.

The page shows, per feeding system (``[[feeds]]`` in node.toml), its last success, how long ago
that was, its refused lines and whether it is quiet longer than configured; and the full exports
held back because they would end too many registrations, each with a confirm and a refuse button
(a form with the CSRF token, as every form here). The decision is recorded in the node's trail;
the watcher (``betrokken node watch``) then applies or discards the file (docs/adr/0036).

The report (:func:`report_text`) is what the watcher writes beside each processed file, in
``verwerkt/``: Dutch first, English second, from this one catalogue (ADR 0020).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from babel.dates import format_timedelta
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from betrokken.clock import utcnow
from betrokken.node.admin import CONFIRM, REFUSE, decide_held, feed_overview
from betrokken.portal import i18n
from betrokken.portal.auth import checked_form, current_user
from betrokken.portal.beheerder import ROLE, number, problem_lines
from betrokken.portal.i18n import gettext as _
from betrokken.portal.web import N_, NavItem, RoleModule, portal_of, render
from betrokken.tabular import Problems

FEEDS_PATH = "/beheer/feeds"

# Why a feed ended nothing or stopped, by the code the node records (betrokken.node.feeds).
PROBLEMS = {
    "refused-lines": N_(
        "lines were refused, so the file is not known to be the whole caseload; nothing was ended"
    ),
    "empty": N_(
        "the file holds no registrations; nothing was ended (an empty export is far more "
        "often a failed export than an empty caseload)"
    ),
    "held-back": N_("held back: it would end more of this system's registrations than allowed"),
    "unreadable": N_("the file could not be read"),
    "refused-by-beheerder": N_("refused by a beheerder: nothing was ended"),
}


def problem_text(code: str | None) -> str:
    if not code:
        return ""
    head, _sep, rest = code.partition(": ")
    if head in PROBLEMS:
        return _(PROBLEMS[head]) + (f" ({rest})" if rest else "")
    return code


def duration(delta: dt.timedelta | None) -> str:
    """A duration as a person reads it, in the page's language ("3 uur")."""
    if delta is None:
        return ""
    return format_timedelta(delta, locale=i18n.current_language(), threshold=1.5)


# --- the page -------------------------------------------------------------------------------------
async def feeds_page(request: Request) -> Response:
    current_user(request, ROLE)
    portal = portal_of(request)
    health, held = await run_in_threadpool(feed_overview, portal.loaded.node, utcnow())
    done = request.query_params.get("besluit", "")
    return render(
        request,
        "beheerder/feeds.html",
        {
            "feeds": health,
            "held": held,
            "duration": duration,
            "problem_text": problem_text,
            "number": number,
            "done": done if done in (CONFIRM, REFUSE) else "",
            "problem": "",
        },
    )


async def feeds_decide(request: Request) -> Response:
    """A beheerder confirms or refuses a held-back export."""
    user = current_user(request, ROLE)
    portal = portal_of(request)
    form = await checked_form(request)
    decision = str(form.get("besluit", ""))
    held_id = str(form.get("bestand", ""))
    if decision not in (CONFIRM, REFUSE) or not held_id.isdigit():
        raise HTTPException(400)
    try:
        await run_in_threadpool(
            decide_held, portal.loaded.node, int(held_id), decision, user.name, utcnow()
        )
    except LookupError:
        health, held = await run_in_threadpool(feed_overview, portal.loaded.node, utcnow())
        return render(
            request,
            "beheerder/feeds.html",
            {
                "feeds": health,
                "held": held,
                "duration": duration,
                "problem_text": problem_text,
                "number": number,
                "done": "",
                "problem": _(
                    "This file no longer waits for a decision (another beheerder decided, or a "
                    "newer export of the system replaced it)."
                ),
            },
            status=409,
        )
    return RedirectResponse(f"{FEEDS_PATH}?besluit={decision}", status_code=303)


def beheerder_routes() -> list[BaseRoute]:
    return [
        Route(FEEDS_PATH, feeds_page, methods=["GET"]),
        Route(FEEDS_PATH, feeds_decide, methods=["POST"]),
    ]


MODULE = RoleModule(ROLE, beheerder_routes(), [NavItem(FEEDS_PATH, N_("Feeds"))])


# --- the report beside a processed file ---------------------------------------------------------
@dataclass
class ReportFacts:
    """What became of one full export (counts and refused lines; never a value of a line)."""

    system: str
    file_name: str
    at: dt.datetime
    outcome: str  # one of OUTCOMES
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_withdrawn: int = 0
    ended: int | None = None
    ending: int = 0  # held back: how many it would end
    holding: int = 0  # registrations the system held before
    share: float = 0.0  # the configured hold_back_share
    skipped: str = ""  # a code of PROBLEMS: why nothing was ended
    failure: str = ""  # what could not be done (the node's own message)
    decided_by: str = ""
    problems: Problems = field(default_factory=Problems)


OUTCOMES = {
    "applied": N_("Processed: the file is the system's whole caseload."),
    "confirmed": N_("Processed after a beheerder's confirmation (%(user)s)."),
    "held": N_(
        "Held back: the file would end %(ending)s of the %(holding)s registrations this system "
        "feeds, more than the %(share)s allowed. Nothing was ended; the file waits in "
        "wacht-op-beheerder/ until a beheerder confirms or refuses it in the portal (Feeds)."
    ),
    "refused": N_("Refused by a beheerder (%(user)s): nothing was ended; the file is removed."),
    "superseded": N_(
        "Replaced by a newer export of the same system before a beheerder decided: nothing of "
        "this file was ended; the file is removed."
    ),
    "unreadable": N_("Not processed: the file could not be read. Nothing was changed."),
}


def _report(facts: ReportFacts) -> list[str]:
    lines = [
        _("Processing report of a full export"),
        "",
        _("System: %(system)s") % {"system": facts.system},
        _("File: %(file)s") % {"file": facts.file_name},
        _("Time: %(when)s") % {"when": i18n.local_time(facts.at, seconds=True)},
        "",
        _(OUTCOMES[facts.outcome])
        % {
            "user": facts.decided_by,
            "ending": number(facts.ending),
            "holding": number(facts.holding),
            "share": f"{facts.share:.0%}",
        },
    ]
    if facts.failure:
        lines.append(_("Reason: %(reason)s") % {"reason": facts.failure})
    if facts.outcome not in ("unreadable",):
        lines += [
            "",
            _("Added: %(n)s") % {"n": number(facts.added)},
            _("Confirmed: %(n)s (of which changed: %(changed)s)")
            % {"n": number(facts.updated + facts.unchanged), "changed": number(facts.updated)},
            _("Ended (no longer in the system's export): %(n)s") % {"n": number(facts.ended or 0)},
            _("Refused lines: %(n)s") % {"n": number(facts.problems.count)},
        ]
        if facts.kept_withdrawn:
            lines.append(
                _("Kept withdrawn (withdrawn by hand): %(n)s") % {"n": number(facts.kept_withdrawn)}
            )
        lines += [f"  {line}" for line in problem_lines(facts.problems, max_groups=50)]
        if facts.skipped:
            lines += ["", problem_text(facts.skipped)]
    return lines


def report_text(facts: ReportFacts) -> str:
    """The report in Dutch, then in English (the one catalogue)."""
    previous = i18n.current_language()
    parts = []
    try:
        for language in ("nl", "en"):
            i18n.set_language(language)
            parts.append("\n".join(_report(facts)))
    finally:
        i18n.set_language(previous)
    return ("\n\n" + "-" * 60 + "\n\n").join(parts) + "\n"
