"""The "Meldingen": a partner asked about a person known here and was told; and the late answers
of a defer partner to this user's own questions (docs/adr/0037).

On a hit at level ``organisation`` or ``domain`` the node keeps a notice for the organisation's
contact point (docs/adr/0024, section 7; :mod:`betrokken.node.notices`). Its professionals (the
portal role ``regisseur``) see the list with what is new, open a notice (which marks it read) and
acknowledge it (a ``notice`` record in the organisation's trail). A notice says who asked
(organisation, role, on whose behalf), why, for which case, when, how to reach the asker and this
organisation's own reference; never what other partners answered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from betrokken.errors import BadInput, BetrokkenError
from betrokken.node import notices as store
from betrokken.portal.answers import (
    OrganisationAnswer,
    Segment,
    contact_segments,
    organisation_answer,
)
from betrokken.portal.auth import checked_form, current_user
from betrokken.portal.i18n import _
from betrokken.portal.web import N_, NavItem, Portal, RoleModule, portal_of, render
from betrokken.requester import late as late_store
from betrokken.requester.client import OrganisationResult

ROLE = "regisseur"


@dataclass(frozen=True)
class NoticeView:
    notice: store.Notice
    asker: str  # the asking organisation's name
    on_behalf_of: str  # the aanmelder's name, empty when the asker asked for itself
    purpose: str  # the purpose's description
    level: str  # what the asker was told about this organisation
    contact: list[Segment]

    @property
    def id(self) -> int:
        return self.notice.id


def _name(portal: Portal, organisation_id: str) -> str:
    organisation = portal.network.organisation(organisation_id)
    return organisation.name if organisation else organisation_id


LEVELS = {
    "organisation": N_("our organisation by name, with our contact point"),
    "domain": N_("only that an organisation in our field is involved"),
}


def _view(portal: Portal, notice: store.Notice) -> NoticeView:
    purpose = portal.network.purpose(notice.purpose)
    return NoticeView(
        notice=notice,
        asker=_name(portal, notice.requester),
        on_behalf_of=(
            _name(portal, notice.on_behalf_of)
            if notice.on_behalf_of and notice.on_behalf_of != notice.requester
            else ""
        ),
        purpose=purpose.description if purpose else notice.purpose,
        level=_(LEVELS.get(notice.level, notice.level)),
        contact=contact_segments(notice.asker_contact),
    )


@dataclass(frozen=True)
class LateView:
    """A late answer to one of the user's questions: a defer partner's decision."""

    late: late_store.LateAnswer
    sender: str
    purpose: str
    answers: list[tuple[str, OrganisationAnswer]]  # per person: case, answer


_COLLECTORS: dict[int, late_store.MailboxCollector] = {}
_COLLECTING = threading.Lock()


def collect_mailbox(portal: Portal) -> str:
    """Collect the organisation's mailbox at the coordinator; a problem to show, or ''."""
    with _COLLECTING:
        collector = _COLLECTORS.get(id(portal))
        try:
            if collector is None:
                collector = _COLLECTORS[id(portal)] = late_store.collector_from_config(
                    portal.loaded.node
                )
            done = collector.collect()
        except BetrokkenError:
            return _(
                "Late answers could not be collected from the coordinator now; this page tries "
                "again when you open it."
            )
    if done.refused:
        return _(
            "{count} late message(s) failed their check and were refused (recorded as an alarm "
            "for your DPO)."
        ).format(count=done.refused)
    return ""


def _late_view(portal: Portal, answer: late_store.LateAnswer) -> LateView:
    purpose = portal.network.purpose(answer.purpose)
    return LateView(
        late=answer,
        sender=_name(portal, answer.sender),
        purpose=purpose.description if purpose else answer.purpose,
        answers=[
            (case, organisation_answer(portal.network, OrganisationResult(answer.sender, a)))
            for case, a in answer.answers
        ],
    )


def _late(portal: Portal, user: str) -> tuple[str, list[LateView], list[late_store.Awaited]]:
    problem = collect_mailbox(portal)
    engine = portal.trail.engine
    views = [_late_view(portal, a) for a in late_store.list_late(engine, user)]
    awaited = late_store.list_awaited(engine, user)
    late_store.mark_read(engine, user)
    return problem, views, awaited


async def list_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    found = await run_in_threadpool(store.list_notices, portal.trail.engine)
    views = [_view(portal, n) for n in found]
    problem, late, awaited = await run_in_threadpool(_late, portal, user.name)
    return render(
        request,
        "meldingen/list.html",
        {
            "notices": views,
            "unread": sum(1 for v in views if v.notice.unread),
            "late": late,
            "awaited": [(a, _name(portal, a.sender)) for a in awaited],
            "late_problem": problem,
        },
    )


def _id(request: Request) -> int:
    try:
        return int(request.path_params["id"])
    except ValueError:
        raise HTTPException(404) from None


async def notice_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    try:
        notice = await run_in_threadpool(
            store.open_notice, portal.trail.engine, _id(request), user.name
        )
    except BadInput:
        raise HTTPException(404) from None
    return render(request, "meldingen/notice.html", {"n": _view(portal, notice)})


async def acknowledge(request: Request) -> Response:
    user = current_user(request, ROLE)
    portal = portal_of(request)
    await checked_form(request)
    notice_id = _id(request)
    try:
        await run_in_threadpool(
            store.acknowledge,
            portal.trail.engine,
            portal.trail,
            portal.organisation.id,
            notice_id,
            user.name,
            ROLE,
        )
    except BadInput:
        raise HTTPException(404) from None
    return RedirectResponse(f"/meldingen/{notice_id}", status_code=303)


MODULE = RoleModule(
    role=ROLE,
    routes=[
        Route("/meldingen", list_page, methods=["GET"]),
        Route("/meldingen/{id}", notice_page, methods=["GET"]),
        Route("/meldingen/{id}/bevestigen", acknowledge, methods=["POST"]),
    ],
    nav=[
        NavItem(
            "/meldingen", N_("Notices"), new=lambda portal: store.unread_count(portal.trail.engine)
        )
    ],
)
