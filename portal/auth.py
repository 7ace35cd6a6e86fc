"""Who is asking: sessions, the logged-in user and their roles, and CSRF tokens.

Sessions are keyed by a random token in an HttpOnly, SameSite=Strict cookie; logged-in ones are
also kept in the database (the token's hash, never the token), so a restart or a second portal
process keeps everyone logged in; logging out ends a session for certain. What a session shows
(answers, letters) stays in the process's memory. A session
ends after ``session_idle_minutes`` without a request and after ``session_max_hours`` in any case.
Every form carries the session's CSRF token (an HMAC of the session under the portal's secret);
:func:`checked_form` refuses a POST without it.

Role modules use :func:`current_user`::

    user = current_user(request, role="dpo")   # a PortalUser, or a Dutch 403 page / the login page
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session as DbSession
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


# How often a session's last request is written to the database (each request would be a write):
# after a restart the idle time counts from at most this many seconds too early.
SAVE_SECONDS = 60.0


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user_json(user: PortalUser) -> str:
    return json.dumps(
        {
            "name": user.name,
            "roles": sorted(user.roles),
            "organisation": user.organisation,
            "purposes": sorted(user.purposes),
            "display_name": user.display_name,
            "method": user.method,
        },
        sort_keys=True,
    )


def _user_of(text: str) -> PortalUser:
    data = json.loads(text)
    return PortalUser(
        name=data["name"],
        roles=frozenset(data["roles"]),
        organisation=data["organisation"],
        purposes=frozenset(data["purposes"]),
        display_name=data["display_name"],
        method=data["method"],
    )


class Sessions:
    """The portal's sessions: in memory, and — with ``engine`` — the logged-in ones also in the
    database (``portal_sessions``: the token's hash, user, role and times), so a restart or a
    second portal process keeps them. ``clock`` is injectable so expiry can be tested."""

    def __init__(
        self,
        secret: bytes,
        *,
        idle_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.time,
        engine: Engine | None = None,
    ) -> None:
        self._secret = secret
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self._sessions: dict[str, PortalSession] = {}
        self._lock = threading.Lock()
        self._engine = engine
        self._saved: dict[str, tuple[str, str, float]] = {}  # token -> (user, role, last_seen)

    def _expired(self, session: PortalSession, now: float) -> bool:
        return (
            now - session.last_seen > self.idle_seconds or now - session.created > self.max_seconds
        )

    def _load(self, token: str) -> PortalSession | None:
        """A logged-in session another process (or this one before a restart) saved."""
        if self._engine is None:
            return None
        from betrokken.portal.users import PortalSessionRow

        with DbSession(self._engine) as db:
            row = db.get(PortalSessionRow, _hash(token))
            if row is None:
                return None
            session = PortalSession(token, row.created, row.last_seen, _user_of(row.user), row.role)
        self._saved[token] = (row.user, row.role, row.last_seen)
        return session

    def save(self, session: PortalSession) -> None:
        """Write a logged-in session when its user or role changed, or its last request is
        more than :data:`SAVE_SECONDS` newer than the one written."""
        if self._engine is None or session.user is None:
            return
        user = _user_json(session.user)
        saved = self._saved.get(session.token)
        if (
            saved is not None
            and saved[:2] == (user, session.role)
            and session.last_seen - saved[2] < SAVE_SECONDS
        ):
            return
        from betrokken.portal.users import PortalSessionRow

        with DbSession(self._engine) as db, db.begin():
            db.merge(
                PortalSessionRow(
                    token_hash=_hash(session.token),
                    created=session.created,
                    last_seen=session.last_seen,
                    user=user,
                    role=session.role,
                )
            )
        self._saved[session.token] = (user, session.role, session.last_seen)

    def _forget(self, tokens: list[str]) -> None:
        if self._engine is None or not tokens:
            return
        from betrokken.portal.users import PortalSessionRow

        with DbSession(self._engine) as db, db.begin():
            db.execute(
                delete(PortalSessionRow).where(
                    PortalSessionRow.token_hash.in_([_hash(t) for t in tokens])
                )
            )
        for token in tokens:
            self._saved.pop(token, None)

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
            session = self._load(token)
            if session is None:
                return None, None
            with self._lock:
                session = self._sessions.setdefault(token, session)
        with self._lock:
            if self._expired(session, now):
                self._sessions.pop(token, None)
                expired = True
            else:
                session.last_seen = now
                expired = False
        if expired:
            self._forget([token])
            return None, session
        return session, None

    def end(self, session: PortalSession) -> None:
        with self._lock:
            self._sessions.pop(session.token, None)
        self._forget([session.token])

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
        self._forget([s.token for s in gone])
        if self._engine is not None:  # and those of other processes, or before a restart
            from betrokken.portal.users import PortalSessionRow

            with DbSession(self._engine) as db, db.begin():
                db.execute(
                    delete(PortalSessionRow).where(
                        (PortalSessionRow.last_seen < now - self.idle_seconds - SAVE_SECONDS)
                        | (PortalSessionRow.created < now - self.max_seconds)
                    )
                )
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
