"""Portal sessions kept in the database: a restart (a new process, the same database) keeps
everyone logged in, with the same CSRF token; the token itself is never stored; a session that
ended — logged out or expired — is gone for every process."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, select

from betrokken.db import make_engine
from betrokken.portal.auth import PortalUser, Sessions
from betrokken.portal.users import PortalSessionRow

SECRET = b"s" * 32
USER = PortalUser("r.regisseur", frozenset({"regisseur", "dpo"}), "zvh-test", frozenset({"x"}))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _sessions(engine: object, clock: Clock) -> Sessions:
    return Sessions(SECRET, idle_seconds=900, max_seconds=8 * 3600, clock=clock, engine=engine)  # type: ignore[arg-type]


def test_a_restarted_portal_keeps_everyone_logged_in_and_never_stores_the_token(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}", MetaData(), component="node")
    clock = Clock()
    before = _sessions(engine, clock)
    session = before.renew(before.new())
    session.user, session.role = USER, "dpo"
    before.save(session)
    csrf = before.csrf_token(session)

    after = _sessions(engine, clock)  # the restart: nothing in memory
    clock.now += 300
    found, expired = after.find(session.token)
    assert expired is None and found is not None
    assert (found.user, found.role) == (USER, "dpo")
    assert after.csrf_token(found) == csrf  # a form opened before the restart still posts
    with engine.connect() as conn:
        stored = conn.execute(select(PortalSessionRow.token_hash)).scalars().all()
    assert stored and session.token not in stored  # the cookie's value is not at rest

    after.end(found)  # logged out: gone for every process
    assert _sessions(engine, clock).find(session.token) == (None, None)


def test_an_anonymous_session_is_not_stored_and_an_idle_one_expires_everywhere(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}", MetaData(), component="node")
    clock = Clock()
    sessions = _sessions(engine, clock)
    anonymous = sessions.new()
    sessions.save(anonymous)
    assert _sessions(engine, clock).find(anonymous.token) == (None, None)
    session = sessions.new()
    session.user = USER
    sessions.save(session)
    clock.now += 901
    found, expired = _sessions(engine, clock).find(session.token)
    assert found is None and expired is not None and expired.user == USER
    assert _sessions(engine, clock).find(session.token) == (None, None)
