"""The defer partner's "Beslissen": a professional decides whether to share (docs/adr/0037).

A ``defer`` organisation answers every question ``pending``; for a person known here its node
keeps a request (:mod:`betrokken.node.deferrals`). Its professionals — the portal role the network
file's policy names in ``decided_by`` (closed: none unless named) — see who asked (organisation,
role, on whose behalf), why, for which case, until when, how to reach the asker and this
organisation's own reference; never a BSN. They decide: share (``delen``) with a ground
(consent, legal duty, conflict of duties, reporting right) or not (``niet-delen``) with a reason
(professional secrecy, no consent, the client's interest); each decision is a ``decision`` record in
the trail. An FG decides the same way, at ``/dpo/beslissen``, about another partner's access
request (docs/adr/0039): show our involvement to the person, or restrict it on a ground of article
41 UAVG. The asker hears it at the end of the term, and a refusal reads the same as a person not
known here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from betrokken import rules
from betrokken.errors import BadInput, PolicyRefusal
from betrokken.node import deferrals as store
from betrokken.portal.answers import Segment, contact_segments
from betrokken.portal.auth import checked_form, current_user, session_of
from betrokken.portal.i18n import _
from betrokken.portal.web import N_, NavItem, Portal, RoleModule, portal_of, render

ROLE = "regisseur"

GROUNDS = {
    "toestemming": N_("The client's consent"),
    "wettelijke-plicht": N_("A legal duty to share"),
    "conflict-van-plichten": N_("A conflict of duties"),
    "meldrecht": N_("A reporting right"),
    "beroepsgeheim": N_("Professional secrecy: no ground to share"),
    "geen-toestemming": N_("The client did not consent"),
    "belang-van-de-client": N_("The client's interest comes first"),
    # an access request (docs/adr/0039): the person's right of access, or a restriction of
    # article 41, first paragraph, UAVG
    "recht-op-inzage": N_("The person's right of access (article 15 GDPR)"),
    "voorkoming-en-opsporing-van-strafbare-feiten": N_(
        "Prevention, investigation or prosecution of criminal offences (article 41, first "
        "paragraph, under d, UAVG)"
    ),
    "toezicht-en-inspectie": N_(
        "Supervision, inspection or regulation (article 41, first paragraph, under h, UAVG)"
    ),
    "bescherming-van-de-betrokkene": N_(
        "Protection of the person himself (article 41, first paragraph, under i, UAVG)"
    ),
    "rechten-en-vrijheden-van-anderen": N_(
        "Protection of the rights and freedoms of others (article 41, first paragraph, under i, "
        "UAVG)"
    ),
}


@dataclass(frozen=True)
class RequestView:
    request: store.Request
    asker: str
    on_behalf_of: str
    purpose: str
    contact: list[Segment]
    ground: str  # the recorded ground's label
    disclose: list[tuple[str, str]]  # the grounds to share with: (code, label) per ground
    decline: list[tuple[str, str]]

    @property
    def id(self) -> int:
        return self.request.id


def _name(portal: Portal, organisation_id: str) -> str:
    organisation = portal.network.organisation(organisation_id)
    return organisation.name if organisation else organisation_id


def deciding_purposes(portal: Portal, role: str = ROLE) -> frozenset[str]:
    """The purposes this organisation's ``role`` decides (the network file's ``decided_by``): the
    regisseurs a professional's purposes, the FG (``dpo``) the access request's."""
    return frozenset(
        p.id
        for p in portal.network.purposes
        if role in rules.deciding_roles(portal.network, portal.organisation.id, p.id)
    )


def _view_with(
    portal: Portal, request: store.Request, disclose: tuple[str, ...], decline: tuple[str, ...]
) -> RequestView:
    purpose = portal.network.purpose(request.purpose)
    asker = portal.network.organisation(request.requester)
    return RequestView(
        request=request,
        asker=_name(portal, request.requester),
        on_behalf_of=(
            _name(portal, request.on_behalf_of)
            if request.on_behalf_of and request.on_behalf_of != request.requester
            else ""
        ),
        purpose=purpose.description if purpose else request.purpose,
        contact=contact_segments(asker.contact) if asker else [],
        ground=_(GROUNDS[request.ground]) if request.ground in GROUNDS else request.ground,
        disclose=[(g, GROUNDS[g]) for g in disclose],
        decline=[(g, GROUNDS[g]) for g in decline],
    )


def _view(portal: Portal, request: store.Request) -> RequestView:
    disclose, decline = rules.decision_grounds(portal.network, request.purpose)
    return _view_with(portal, request, disclose, decline)


async def page(request: Request, role: str = ROLE, path: str = "/beslissen") -> Response:
    current_user(request, role)
    portal = portal_of(request)
    purposes = deciding_purposes(portal, role)
    found = await run_in_threadpool(store.list_requests, portal.trail.engine, purposes)
    views = [_view(portal, r) for r in found]
    session = session_of(request)
    flash = session.data.pop("decision", None) if session else None
    context: dict[str, Any] = {
        "requests": views,
        "open": sum(1 for v in views if not v.request.decision),
        "decides": bool(purposes),
        "action": path,
        "access_request": role == rules.ACCESS_REQUEST_DECIDER,
        "flash": flash if isinstance(flash, dict) else {},
    }
    return render(request, "beslissen/list.html", context)


async def decide(request: Request, role: str = ROLE, path: str = "/beslissen") -> Response:
    user = current_user(request, role)
    portal = portal_of(request)
    form = await checked_form(request)
    try:
        request_id = int(str(form.get("verzoek", "")))
    except ValueError:
        request_id = 0
    choice = str(form.get("besluit", ""))
    decision, _sep, ground = choice.partition(":")
    session = session_of(request)
    assert session is not None  # checked_form made sure

    def work() -> str:
        try:
            store.decide(
                portal.trail.engine,
                portal.trail,
                portal.network,
                portal.organisation.id,
                request_id,
                user.name,
                frozenset({role}),
                decision,
                ground,
                dt.datetime.now(dt.UTC),
            )
        except PolicyRefusal:
            return _("Your organisation does not let your role decide this; nothing was recorded.")
        except BadInput as exc:
            if "term" in exc.message:
                return _("The term has passed; the asker was told no information was given.")
            if "decided already" in exc.message:
                return _("This request was decided already; nothing was recorded.")
            return _("Choose a decision with its ground; nothing was recorded.")
        return ""

    problem = await run_in_threadpool(work)
    session.data["decision"] = {"id": request_id, "problem": problem, "done": not problem}
    return RedirectResponse(path, status_code=303)


def _open(portal: Portal, role: str = ROLE) -> int:
    purposes = deciding_purposes(portal, role)
    return store.open_count(portal.trail.engine, purposes) if purposes else 0


# The FG decides about the access requests of other partners' FGs on the same page, at its own
# address in the DPO's part of the portal (docs/adr/0039).
FG_PATH = "/dpo/beslissen"


async def fg_page(request: Request) -> Response:
    return await page(request, rules.ACCESS_REQUEST_DECIDER, FG_PATH)


async def fg_decide(request: Request) -> Response:
    return await decide(request, rules.ACCESS_REQUEST_DECIDER, FG_PATH)


def fg_open(portal: Portal) -> int:
    return _open(portal, rules.ACCESS_REQUEST_DECIDER)


MODULE = RoleModule(
    role=ROLE,
    routes=[
        Route("/beslissen", page, methods=["GET"]),
        Route("/beslissen", decide, methods=["POST"]),
    ],
    nav=[NavItem("/beslissen", N_("Decide on sharing"), new=_open)],
)
