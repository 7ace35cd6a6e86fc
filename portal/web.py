"""What every page shares: the templates, the portal's state, the role modules' registration.

A role's pages are one module (``regisseur.py``, ``dpo.py``, ``beheerder.py``) that defines
``MODULE = RoleModule(role, routes, nav)``; :mod:`betrokken.portal.app` mounts every module found.
A page handler is an ``async def`` that calls :func:`betrokken.portal.auth.current_user` with its
role and returns :func:`render`. See README-dev.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute

from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.clock import utcnow
from betrokken.config.load import LoadedPortal
from betrokken.config.schema import Network, Organisation, Purpose
from betrokken.portal import i18n
from betrokken.portal.answers import answer_code
from betrokken.portal.auth import PortalSession, PortalUser, Sessions, session_of
from betrokken.portal.forms import FormErrors
from betrokken.portal.throttle import LoginThrottle
from betrokken.portal.users import UserStore

log = logging.getLogger("betrokken.portal")
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is defined; translate it where it is shown."""
    return message


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # English message id; shown translated
    # How many new things wait on the page for the logged-in user (shown beside the label, e.g.
    # new notices), given the portal and the user's name; None: none
    new: Callable[[Portal, str], int] | None = None


@dataclass(frozen=True)
class RoleModule:
    """One role's pages: its routes and its entries in the navigation."""

    role: str
    routes: Sequence[BaseRoute]
    nav: Sequence[NavItem] = ()


@dataclass
class Portal:
    """Everything a page needs, held by the running portal (``request.app.state.portal``)."""

    loaded: LoadedPortal
    network: Network
    organisation: Organisation
    sessions: Sessions
    trail: AuditLog
    users: UserStore | None
    ask: Callable[..., Any]  # Requester.ask of the organisation (the CLI's code path)
    oidc: Any = None  # betrokken.portal.oidc.OidcLogin when configured
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    modules: list[RoleModule] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The portal's clock: what logins (the TOTP step, a lock-out) and sessions (idle, maximum)
    # are measured by. Tests give one they move on rather than wait for real time to pass.
    clock: Callable[[], dt.datetime] = utcnow
    # How often the portal collects its late answers and signals in the background, measured by
    # ``clock`` (portal.toml's collect_seconds); 0: only when a user opens Meldingen.
    collect_seconds: float = 0.0

    @property
    def label(self) -> str:
        return self.loaded.portal.organisation_label or self.organisation.name

    def record(
        self,
        event: Event,
        user: str,
        role: str = "",
        *,
        reason: str = "",
        access_point: str = "",
        purpose: str = "",
        details: Mapping[str, str] | None = None,
    ) -> int:
        """Append one record to the organisation's own trail (logins, role changes, ...)."""
        entry = AuditEntry(
            event=event,
            at=utcnow(),
            organisation=self.organisation.id,
            user=user,
            role=role,
            access_point=access_point,
            purpose=purpose,
            reason=reason,
            details=dict(details or {}),
        )
        with self.trail.engine.begin() as conn:
            return self.trail.append([entry], conn)[0]

    def purposes_for(self, user: PortalUser, role: str = "regisseur") -> list[Purpose]:
        """The purposes ``user`` may ask: the network allows the organisation and the role, and
        the user's account (or identity provider) lists it (an empty list: every such one)."""
        allowed = []
        for purpose in self.network.purposes:
            if self.organisation.id not in purpose.allowed_organisations:
                continue
            if role not in purpose.allowed_roles:
                continue
            if user.purposes and purpose.id not in user.purposes:
                continue
            allowed.append(purpose)
        return allowed


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


_environment = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.globals.update(
    answer_code=answer_code,
    _=i18n.gettext,
    pgettext=i18n.pgettext,
    outcome_label=i18n.outcome_label,
    outcome_explanation=i18n.outcome_explanation,
    local_time=i18n.local_time,
    LANGUAGES=i18n.LANGUAGES,
    LANGUAGE_NAMES=i18n.LANGUAGE_NAMES,
)


def session_end(sessions: Sessions, session: PortalSession | None) -> str:
    """When the session ends without further activity, in Dutch time (HH:MM)."""
    if session is None:
        return ""
    end = min(session.last_seen + sessions.idle_seconds, session.created + sessions.max_seconds)
    return dt.datetime.fromtimestamp(end, dt.UTC).astimezone(i18n.AMSTERDAM).strftime("%H:%M")


# How long before the session ends the page warns (WCAG 2.2.1: at least 20 seconds to react).
SESSION_WARNING_SECONDS = 120


def seconds_left(sessions: Sessions, session: PortalSession | None) -> int:
    """Seconds until the session ends without further activity (0 without one)."""
    if session is None:
        return 0
    end = min(session.last_seen + sessions.idle_seconds, session.created + sessions.max_seconds)
    return max(0, int(end - sessions.clock()))


def _new(item: NavItem, portal: Portal, user: str) -> int:
    """The menu's count of new things; a page still shows when it cannot be counted."""
    assert item.new is not None
    try:
        return item.new(portal, user)
    except Exception:
        log.warning("could not count what is new on %s", item.path, exc_info=True)
        return 0


def form_errors(context: Mapping[str, Any]) -> FormErrors:
    """The page's form errors (the one form pattern, docs/adr/0038): ``errors`` as the forms
    layer gives them, or a page's one ``problem`` with the field it is about."""
    given = context.get("errors")
    if isinstance(given, FormErrors):
        return given
    if given:
        return FormErrors.of((str(f), str(m)) for f, m in given)
    if "problem_field" in context and context.get("problem"):
        return FormErrors.of([(str(context["problem_field"]), str(context["problem"]))])
    return FormErrors()


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page in the user's language with the shared layout's context (user, nav, CSRF token)."""
    portal = portal_of(request)
    session = session_of(request)
    user = session.user if session else None
    nav = [
        item
        for module in portal.modules
        if user is not None and user.has(module.role)
        for item in module.nav
    ]
    waiting = {
        item.path: _new(item, portal, user.name)
        for item in nav
        if item.new is not None and user is not None
    }
    values = dict(context or {})
    values["errors"] = form_errors(values)
    page = _environment.get_template(template).render(
        request=request,
        path=request.url.path,
        portal=portal,
        organisation_label=portal.label,
        user=user,
        nav=nav,
        waiting=waiting,
        csrf=portal.sessions.csrf_token(session) if session else "",
        session_ends=session_end(portal.sessions, session) if user is not None else None,
        session_seconds_left=seconds_left(portal.sessions, session) if user is not None else 0,
        session_warning_seconds=SESSION_WARNING_SECONDS,
        language=i18n.current_language(),
        now=dt.datetime.now(dt.UTC),
        **values,
    )
    return HTMLResponse(page, status_code=status, headers=dict(headers or {}))
