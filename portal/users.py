"""Local portal accounts: argon2id password hashes, a TOTP second factor, lock-out.

For small organisations and development; larger ones log in through their own identity provider
(OpenID Connect, :mod:`betrokken.portal.oidc`). The accounts live in the organisation's own
database (the node's), table ``portal_users`` (migration ``node_0005``). A TOTP code is accepted
once: the last used time step is kept, so a code seen over someone's shoulder cannot be replayed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import threading
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Boolean, DateTime, Engine, Float, Integer, MetaData, String, Text, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from betrokken.clock import utcnow
from betrokken.errors import BadInput

ROLES = ("regisseur", "dpo", "beheerder")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
MIN_PASSWORD = 12
# argon2id at OWASP's first recommended setting (19 MiB, 2 passes, 1 lane): about 30 ms of CPU per
# check on this project's 2-core machines, against 215 ms for the library's default (64 MiB, 3
# passes, 4 lanes), so 50 people logging in at 09:00 wait about a second, not half a minute, and
# hold 1 GB less memory. Hashes made with other settings still verify and are rehashed at the next
# login (docs/adr/0019-portal-framework-auth-sessions.md, "Password hashing").
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# At most this many checks at once: each holds 19 MiB and a core; the rest wait their turn in the
# order they came instead of all slowing down together.
_HASHING = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
_DUMMY_HASH = _HASHER.hash("betrokken: a password nobody has")


class PortalBase(DeclarativeBase):
    metadata = MetaData()


class PortalUserRow(PortalBase):
    __tablename__ = "portal_users"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(Text)
    totp_secret: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(128))  # comma-separated, see ROLES
    purposes: Mapped[str] = mapped_column(Text, default="")  # comma-separated; empty: all allowed
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_totp_step: Mapped[int] = mapped_column(Integer, default=0)
    # Added or reset in the browser: the password is a temporary one and the TOTP secret has not
    # been shown to anyone; the next login with that password enrols (migration node_0012).
    must_enrol: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PortalSessionRow(PortalBase):
    """A logged-in session, so a restart (or a second portal process) keeps it: the token's
    SHA-256 (never the token), the user and role, and its times. What a session shows (answers,
    letters, a form's problem) stays in the process's memory."""

    __tablename__ = "portal_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    user: Mapped[str] = mapped_column(Text)  # JSON: name, roles, organisation, purposes, ...
    role: Mapped[str] = mapped_column(String(32), default="")


@dataclass(frozen=True)
class Account:
    username: str
    display_name: str
    roles: tuple[str, ...]
    purposes: tuple[str, ...]
    disabled: bool
    locked_until: dt.datetime | None
    failed_logins: int
    must_enrol: bool = False


@dataclass(frozen=True)
class Enrolment:
    """What the new user needs once: the TOTP secret and the otpauth:// URI for an app."""

    username: str
    password: str | None
    totp_secret: str
    uri: str


@dataclass(frozen=True)
class LoginOutcome:
    account: Account | None  # set when the login succeeded
    # "unknown", "disabled", "password", "code" when it did not; "code-used" for a right code
    # used before (not a guess: not counted); "enrol" for a right temporary password of an
    # account that must enrol first (no session yet: the enrolment page)
    reason: str = ""
    locked_until: dt.datetime | None = None
    known: bool = False  # the user name is an existing account


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def _split(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def _account(row: PortalUserRow) -> Account:
    return Account(
        row.username,
        row.display_name,
        _split(row.roles),
        _split(row.purposes),
        row.disabled,
        _aware(row.locked_until),
        row.failed_logins,
        row.must_enrol,
    )


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise BadInput(
            "a user name is 1 to 128 letters, digits, dots, hyphens, underscores or @",
            hint="e.g. r.jansen or r.jansen@zvh.example.nl",
        )
    return username


def check_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise BadInput(
            "give one or more roles out of: " + ", ".join(ROLES),
            hint="e.g. --role regisseur --role dpo",
        )
    return tuple(dict.fromkeys(roles))


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadInput(
            f"a password has at least {MIN_PASSWORD} characters",
            hint="choose a longer password (a sentence is easier to remember)",
        )
    return password


class UserStore:
    """The portal's local accounts, in the organisation's own database."""

    def __init__(
        self,
        engine: Engine,
        issuer: str,
    ) -> None:
        self.engine = engine
        self.issuer = issuer  # shown in the authenticator app

    # --- administration (``betrokken portal user``) ----------------------------------------
    def add(
        self,
        username: str,
        password: str,
        roles: tuple[str, ...],
        purposes: tuple[str, ...] = (),
        display_name: str = "",
        *,
        enrol_at_login: bool = False,
    ) -> Enrolment:
        """A new account. ``enrol_at_login``: ``password`` is a temporary one, handed over in
        person, and the user is shown the TOTP secret (a QR code) at the first login."""
        check_username(username)
        check_password(password)
        roles = check_roles(roles)
        secret = pyotp.random_base32()
        now = utcnow()
        with Session(self.engine) as session, session.begin():
            if session.get(PortalUserRow, username) is not None:
                raise BadInput(
                    f"the account '{username}' already exists",
                    hint="use `betrokken portal user reset` to give it a new password and code",
                )
            session.add(
                PortalUserRow(
                    username=username,
                    display_name=display_name or username,
                    password_hash=_hashed(password),
                    totp_secret=secret,
                    roles=",".join(roles),
                    purposes=",".join(purposes),
                    disabled=False,
                    failed_logins=0,
                    locked_until=None,
                    last_totp_step=0,
                    must_enrol=enrol_at_login,
                    created_at=now,
                    changed_at=now,
                )
            )
        return Enrolment(username, None, secret, self.uri(username, secret))

    def uri(self, username: str, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=self.issuer)

    def reset(
        self,
        username: str,
        password: str | None = None,
        *,
        roles: tuple[str, ...] | None = None,
        purposes: tuple[str, ...] | None = None,
        new_code: bool = True,
        enrol_at_login: bool = False,
    ) -> tuple[Enrolment, Account, Account]:
        """New password and/or TOTP secret, roles or purposes; unlocks and re-enables.
        Returns the enrolment and the account before and after."""
        if password is not None:
            check_password(password)
        if roles is not None:
            roles = check_roles(roles)
        with Session(self.engine) as session, session.begin():
            row = self._row(session, username)
            before = _account(row)
            if password is not None:
                row.password_hash = _hashed(password)
            secret = row.totp_secret
            if new_code:
                secret = pyotp.random_base32()
                row.totp_secret = secret
                row.last_totp_step = 0
            if roles is not None:
                row.roles = ",".join(roles)
            if purposes is not None:
                row.purposes = ",".join(purposes)
            row.disabled = False
            row.failed_logins = 0
            row.locked_until = None
            if new_code:
                row.must_enrol = enrol_at_login
            row.changed_at = utcnow()
            after = _account(row)
        return Enrolment(username, password, secret, self.uri(username, secret)), before, after

    def disable(self, username: str) -> Account:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, username)
            before = _account(row)
            row.disabled = True
            row.changed_at = utcnow()
        return before

    def unblock(self, username: str) -> Account:
        """Failed logins forgotten (the portal's throttle forgets the name too: see the page)."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, username)
            before = _account(row)
            row.failed_logins = 0
            row.locked_until = None
            row.changed_at = utcnow()
        return before

    def change_password(self, username: str, current: str, new: str) -> bool:
        """The user's own password change: False (and nothing changed) when ``current`` is wrong."""
        check_password(new)
        with Session(self.engine) as session, session.begin():
            row = self._row(session, username)
            if row.disabled or not _verify(row.password_hash, current):
                return False
            row.password_hash = _hashed(new)
            row.changed_at = utcnow()
        return True

    def enrolment_secret(self, username: str) -> str | None:
        """The TOTP secret to show at enrolment, only while the account must enrol."""
        with Session(self.engine) as session:
            row = session.get(PortalUserRow, username)
            if row is None or row.disabled or not row.must_enrol:
                return None
            return row.totp_secret

    def finish_enrolment(
        self, username: str, code: str, new_password: str, now: dt.datetime | None = None
    ) -> Account | None:
        """The first code from the user's app proves the secret arrived; the temporary password
        is replaced. None (nothing changed) when the code is not right."""
        check_password(new_password)
        now = now or utcnow()
        with Session(self.engine) as session, session.begin():
            row = session.get(PortalUserRow, username)
            if row is None or row.disabled or not row.must_enrol:
                return None
            step = _totp_step(row.totp_secret, code.strip().replace(" ", ""), now)
            if step is None or step <= row.last_totp_step:
                return None
            row.last_totp_step = step
            row.password_hash = _hashed(new_password)
            row.must_enrol = False
            row.failed_logins = 0
            row.changed_at = utcnow()
            return _account(row)

    def accounts(self) -> list[Account]:
        with Session(self.engine) as session:
            rows = session.scalars(select(PortalUserRow).order_by(PortalUserRow.username))
            return [_account(row) for row in rows]

    def get(self, username: str) -> Account | None:
        with Session(self.engine) as session:
            row = session.get(PortalUserRow, username)
            return _account(row) if row else None

    def _row(self, session: Session, username: str) -> PortalUserRow:
        row = session.get(PortalUserRow, username)
        if row is None:
            raise BadInput(
                f"there is no account '{username}'",
                hint="`betrokken portal user list` shows the accounts",
            )
        return row

    # --- logging in --------------------------------------------------------------------------
    def login(
        self, username: str, password: str, code: str, now: dt.datetime | None = None
    ) -> LoginOutcome:
        """Check password and TOTP code; count failures (the throttle, not a lock, slows
        guessing: portal/throttle.py). The password check runs outside any transaction, so 50
        logins at once queue for the hasher, not for database connections."""
        now = now or utcnow()
        with Session(self.engine) as session:
            row = session.get(PortalUserRow, username) if USERNAME.fullmatch(username) else None
            found = None if row is None else (row.disabled, row.password_hash)
        if found is None:
            _verify(_DUMMY_HASH, password)  # the same work as for an existing account
            return LoginOutcome(None, "unknown")
        disabled, hashed = found
        # No lock: a lock is something an outsider can hold (portal/throttle.py slows guessing
        # instead). A disabled account does the same work as any other.
        if disabled:
            _verify(_DUMMY_HASH, password)
            return LoginOutcome(None, "disabled", known=True)
        right = _verify(hashed, password)
        rehash = _hashed(password) if right and _HASHER.check_needs_rehash(hashed) else None
        with Session(self.engine) as session, session.begin():
            row = session.get(PortalUserRow, username)
            if row is None or row.password_hash != hashed:  # removed or changed meanwhile
                return LoginOutcome(None, "unknown" if row is None else "password", known=True)
            if not right:
                return self._failed(row, "password", now)
            if row.must_enrol:  # the code is not asked: the user has no app set up yet
                return LoginOutcome(None, "enrol", known=True)
            step = _totp_step(row.totp_secret, code.strip().replace(" ", ""), now)
            if step is None:
                return self._failed(row, "code", now)
            if step <= row.last_totp_step:
                # The right code, used before (typed twice, or seen over a shoulder): said as
                # such, and not a failure (the password and the app are the user's own).
                return LoginOutcome(None, "code-used", known=True)
            row.last_totp_step = step
            row.failed_logins = 0
            row.locked_until = None
            if rehash is not None:
                row.password_hash = rehash
            return LoginOutcome(_account(row), known=True)

    def _failed(self, row: PortalUserRow, reason: str, now: dt.datetime) -> LoginOutcome:
        row.failed_logins += 1  # counted for the account list; the delay is the throttle's
        return LoginOutcome(None, reason, known=True)


def _verify(hashed: str, password: str) -> bool:
    with _HASHING:
        try:
            return _HASHER.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _hashed(password: str) -> str:
    with _HASHING:
        return _HASHER.hash(password)


def _totp_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step ``code`` belongs to (this one or the one either side), or None."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // totp.interval
    for step in (current - 1, current, current + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def temporary_password() -> str:
    """A password for the beheerder to hand over in person: 4 groups of 4 letters and digits
    without look-alikes (no 0/O, 1/l/I), about 80 bits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
