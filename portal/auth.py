"""Who is asking: sessions, the logged-in user and their roles, and CSRF tokens.

Sessions live in the portal process's memory, keyed by a random token in an HttpOnly,
SameSite=Strict cookie: logging out (or restarting the portal) ends them for certain. A session
ends after ``session_idle_minutes`` without a request and after ``session_max_hours`` in any case.
Every form carries the session's CSRF token (an HMAC of the session under the portal's secret);
:func:`checked_form` refuses a POST without it.

Role modules use :func:`current_user`::

    user = current_user(request, role="dpo")   # a PortalUser, or a Dutch 403 page / the login page
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.requests import Request

SESSION_COOKIE = "betrokken_sessie"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class PortalUser:
    """A person logged in to the portal: their account name, roles and organisation."""

    name: str
    roles: frozenset[str]
    organisation: str
    purposes: frozenset[str] = frozenset()  # empty: every purpose the network allows
    display_name: str = ""
    method: str = "local"  # "local" or "oidc"

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass
class PortalSession:
    token: str
    created: float
    last_seen: float
    user: PortalUser | None = None
    role: str = ""  # the role the user acts in now (one of user.roles)
    data: dict[str, object] = field(default_factory=dict)  # e.g. the OIDC state, last answer


class LoginRequired(Exception):
    """No (or an expired) session: the login page is shown."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("login required")
        self.expired = expired


class Forbidden(Exception):
    """Logged in, but without the role this page needs: a 403 page in the user's language."""

    def __init__(self, role: str) -> None:
        super().__init__(f"role {role} required")
        self.role = role


class CsrfRefused(Exception):
    """A form without this session's token (a forged or stale form)."""


class Sessions:
    """The portal's sessions, in memory; ``clock`` is injectable so expiry can be tested."""

    def __init__(
        self,
        secret: bytes,
        *,
        idle_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self._sessions: dict[str, PortalSession] = {}
        self._lock = threading.Lock()

    def new(self) -> PortalSession:
        now = self.clock()
        session = PortalSession(secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sessions[session.token] = session
        return session

    def find(self, token: str) -> tuple[PortalSession | None, PortalSession | None]:
        """(the live session, the session that just expired)."""
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None, None
            if now - session.last_seen > self.idle_seconds or now - session.created > (
                self.max_seconds
            ):
                del self._sessions[token]
                return None, session
            session.last_seen = now
            return session, None

    def end(self, session: PortalSession) -> None:
        with self._lock:
            self._sessions.pop(session.token, None)

    def renew(self, session: PortalSession) -> PortalSession:
        """A fresh token for the same session (at login: no session fixation)."""
        fresh = self.new()
        fresh.data = dict(session.data)
        self.end(session)
        return fresh

    def csrf_token(self, session: PortalSession) -> str:
        return hmac.new(self._secret, session.token.encode(), hashlib.sha256).hexdigest()

    def expire_idle(self) -> list[PortalSession]:
        now = self.clock()
        with self._lock:
            gone = [
                s
                for s in self._sessions.values()
                if now - s.last_seen > self.idle_seconds or now - s.created > self.max_seconds
            ]
            for session in gone:
                del self._sessions[session.token]
        return gone


def session_of(request: Request) -> PortalSession | None:
    session: PortalSession | None = request.state.session
    return session


def current_user(request: Request, role: str | None = None) -> PortalUser:
    """The logged-in user, who must hold ``role`` (when given); else the login or a 403 page."""
    session = session_of(request)
    if session is None or session.user is None:
        raise LoginRequired(expired=bool(getattr(request.state, "expired", False)))
    if role is not None and not session.user.has(role):
        raise Forbidden(role)
    return session.user


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after checking its CSRF token against the session's."""
    form = await request.form()
    session = session_of(request)
    sent = form.get(CSRF_FIELD)
    sessions: Sessions = request.app.state.portal.sessions
    if (
        session is None
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent, sessions.csrf_token(session))
    ):
        raise CsrfRefused()
    return form
