"""The asker's "Opvolging": what the regisseur did after each hit.

Every hit of the regisseur's own questions (a partner, or a partner's field, said 'involved')
gets a follow-up state: contact made, a casusoverleg planned, no action needed with a reason,
regie taken by a partner (``rules.check_follow_up``). Each is a ``follow-up`` record in the
organisation's own trail, under its own pseudonym of the person, as the question is
(:mod:`betrokken.audit.followup`); nothing central lists persons. The page shows each hit's latest
state and the day it should be followed up by (the network's ``follow_up_working_days``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from betrokken import rules
from betrokken.audit.access import with_entries
from betrokken.audit.followup import Hit, follow_up_entry, hits_in
from betrokken.errors import BadInput
from betrokken.portal.auth import checked_form, current_user, session_of
from betrokken.portal.i18n import _
from betrokken.portal.web import N_, NavItem, Portal, RoleModule, client_address, portal_of, render

ROLE = "regisseur"

STATES = {
    "contact-gelegd": N_("contact made"),
    "casusoverleg-gepland": N_("casusoverleg planned"),
    "geen-actie-nodig": N_("no action needed"),
    "regie-overgenomen": N_("regie taken by"),
}
REASONS = {
    "al-afgestemd": N_("already agreed with the partner"),
    "niet-relevant-voor-de-zaak": N_("not relevant for the case"),
    "zaak-afgesloten": N_("the case is closed"),
}


@dataclass(frozen=True)
class HitView:
    number: int
    hit: Hit
    partner: str  # the partner's name, or "an organisation in the field ..."
    purpose: str
    due: dt.date
    overdue: bool
    state: str  # the latest state in words, empty when none

    @property
    def token(self) -> str:
        return _token(self.hit)


def _partner(portal: Portal, found: str) -> str:
    if found.startswith(rules.DOMAIN_LABEL):
        return _("An organisation in the field {domain}").format(
            domain=found.removeprefix(rules.DOMAIN_LABEL).split(" (")[0]
        )
    organisation = portal.network.organisation(found.split(" (")[0])
    return organisation.name if organisation else found


def _state_text(portal: Portal, hit: Hit) -> str:
    latest = hit.latest
    if latest is None:
        return ""
    text = _(STATES.get(latest.state, latest.state))
    if latest.reason:
        text += ": " + _(REASONS.get(latest.reason, latest.reason))
    if latest.regie:
        text += " " + _partner(portal, latest.regie)
    return text


def _hits(portal: Portal, user: str) -> list[Hit]:
    entries = [e for _, e in with_entries(portal.trail.records()) if e is not None]
    return [h for h in hits_in(entries) if h.user == user]


def _views(portal: Portal, hits: list[Hit]) -> list[HitView]:
    days = portal.network.after_the_hit.follow_up_working_days
    today = portal.clock().date()
    views = []
    for number, hit in enumerate(hits, start=1):
        purpose = portal.network.purpose(hit.purpose)
        due = hit.due(days)
        views.append(
            HitView(
                number=number,
                hit=hit,
                partner=_partner(portal, hit.key.found),
                purpose=purpose.description if purpose else hit.purpose,
                due=due,
                overdue=hit.latest is None and today > due,
                state=_state_text(portal, hit),
            )
        )
    return views


async def page(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    hits = await run_in_threadpool(_hits, portal, user.name)
    session = session_of(request)
    flash = session.data.pop("follow-up", None) if session else None
    context: dict[str, Any] = {
        "hits": _views(portal, hits),
        "states": STATES,
        "reasons": REASONS,
        "partners": [o for o in portal.network.organisations if o.id != portal.organisation.id],
        "flash": flash if isinstance(flash, dict) else {},
        "days": portal.network.after_the_hit.follow_up_working_days,
    }
    return render(request, "opvolging/list.html", context)


async def record(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    form = await checked_form(request)
    token = str(form.get("treffer", ""))
    state = str(form.get("stand", ""))
    reason = str(form.get("reden", "")) if state == "geen-actie-nodig" else ""
    regie = str(form.get("regie", "")) if state == "regie-overgenomen" else ""
    session = session_of(request)
    assert session is not None  # checked_form made sure

    def work() -> str:
        # Only a hit of this user's own questions, as the trail has it: a form cannot name another.
        hit = next(
            (h for h in _hits(portal, user.name) if _token(h) == token),
            None,
        )
        if hit is None:
            return _("That hit is not among your questions; nothing was recorded.")
        try:
            rules.check_follow_up(portal.network, state, reason, regie)
        except BadInput:
            if state == "geen-actie-nodig":
                return _("Choose why no action is needed; nothing was recorded.")
            if state == "regie-overgenomen":
                return _("Choose the organisation that took regie; nothing was recorded.")
            return _("Choose what you did; nothing was recorded.")
        entry = follow_up_entry(
            portal.organisation.id, hit, user.name, ROLE, state, reason=reason, regie=regie
        )
        entry = replace(entry, access_point=client_address(request))
        with portal.trail.engine.begin() as conn:
            portal.trail.append([entry], conn)
        return ""

    problem = await run_in_threadpool(work)
    session.data["follow-up"] = {"token": token, "problem": problem, "done": not problem}
    return RedirectResponse("/opvolging", status_code=303)


def _token(hit: Hit) -> str:
    return f"{hit.key.answer_id}|{hit.key.fingerprint}|{hit.key.found}"


MODULE = RoleModule(
    role=ROLE,
    routes=[
        Route("/opvolging", page, methods=["GET"]),
        Route("/opvolging", record, methods=["POST"]),
    ],
    nav=[NavItem("/opvolging", N_("Follow-up"))],
)
