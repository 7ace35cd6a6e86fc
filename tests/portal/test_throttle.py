"""Login without a lock an outsider can hold: the same work and answer for every failure, and a
growing delay per source and per account name (portal/throttle.py, portal/users.py)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pyotp
import pytest

from betrokken.db import make_engine
from betrokken.portal.throttle import LoginThrottle
from betrokken.portal.users import PortalBase, UserStore

PASSWORD = "een lang genoeg wachtwoord"


@pytest.mark.parametrize(
    ("failures", "source_wait", "account_wait"),
    [
        (4, 0, 0),  # the first free - 1 failures cost nothing
        (5, 1, 1),  # then 1, 2, 4, ... seconds
        (6, 2, 2),
        (8, 8, 8),
        (10, 32, 30),  # an account name's delay stops at 30 s
        (25, 900, 30),  # a source's at the configured cap
    ],
)
def test_the_delay_doubles_after_the_free_failures_and_stops_at_its_cap(
    failures: int, source_wait: float, account_wait: float
) -> None:
    throttle = LoginThrottle(free=5, source_cap=900, account_cap=30)
    assert throttle.delay(failures, "source") == source_wait
    assert throttle.delay(failures, "account") == account_wait


def test_an_outsider_cannot_hold_an_account_and_slows_only_itself() -> None:
    throttle = LoginThrottle(free=5, source_cap=900, account_cap=30)
    now = 1_000_000.0
    for _ in range(40):  # an outsider guessing the regisseur's password as fast as allowed
        now += throttle.wait("203.0.113.9", "r.jansen", now)
        throttle.failed("203.0.113.9", "r.jansen", now)
    assert throttle.wait("203.0.113.9", "someone.else", now) == pytest.approx(900)
    # The owner, from an address of their own, waits at most the account's cap.
    assert 0 < throttle.wait("10.0.0.5", "r.jansen", now) <= 30
    assert throttle.wait("10.0.0.5", "r.jansen", now + 30) == 0
    throttle.succeeded("10.0.0.5", "r.jansen")
    assert throttle.wait("10.0.0.5", "r.jansen", now) == 0


def test_an_account_name_that_does_not_exist_is_throttled_exactly_like_one_that_does() -> None:
    throttle = LoginThrottle(free=2)
    for name in ("r.jansen", "niemand.bestaat"):
        for _ in range(4):
            throttle.failed(f"source-{name}", name, 10.0)
    assert throttle.wait("x", "r.jansen", 10.0) == throttle.wait("y", "niemand.bestaat", 10.0)
    assert throttle.wait("x", " R.Jansen ", 10.0) > 0  # the name as a person would type it


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'users.db'}", PortalBase.metadata)
    return UserStore(engine, "betrokken test")


def _cpu_medians(outcomes: dict[str, object], rounds: int = 7) -> dict[str, float]:
    """The median CPU time of each login path, measured in turns (one of each per round), so a
    loaded machine slows them alike: what one path does and another does not, not the load."""
    times: dict[str, list[float]] = {reason: [] for reason in outcomes}
    for _ in range(rounds):
        for reason, login in outcomes.items():
            started = time.process_time()
            login()  # type: ignore[operator]
            times[reason].append(time.process_time() - started)
    return {reason: statistics.median(spent) for reason, spent in times.items()}


def test_every_failure_does_the_same_work_and_no_account_is_ever_locked(store: UserStore) -> None:
    """Unknown account, disabled account, wrong password and wrong code each verify one
    argon2id hash (the attacker's move: time the answer to learn which accounts exist)."""
    secret = store.add("r.jansen", PASSWORD, ("regisseur",)).totp_secret
    store.add("o.uitdienst", PASSWORD, ("regisseur",))
    store.disable("o.uitdienst")
    outcomes = {
        "unknown": lambda: store.login("niemand.bestaat", PASSWORD, "123456"),
        "disabled": lambda: store.login("o.uitdienst", PASSWORD, "123456"),
        "password": lambda: store.login("r.jansen", "niet het wachtwoord", "123456"),
        "code": lambda: store.login("r.jansen", PASSWORD, "000000"),
    }
    assert {reason: f().reason for reason, f in outcomes.items()} == {  # type: ignore[attr-defined]
        reason: reason for reason in outcomes
    }
    medians = _cpu_medians(outcomes)
    reference = medians["password"]
    assert all(0.6 * reference <= m <= 1.6 * reference for m in medians.values()), medians
    # Thirty failures later, the right password and code still log in: nothing is locked.
    code = pyotp.TOTP(secret).now()
    assert store.login("r.jansen", PASSWORD, code).account is not None


def test_a_password_hashed_with_older_settings_still_logs_in_and_is_rehashed_to_the_current_ones(
    store: UserStore,
) -> None:
    """Accounts made before the hashing settings changed keep working; their next login stores
    a hash with the current settings (the cheaper check that lets 50 people log in at once)."""
    from argon2 import PasswordHasher
    from sqlalchemy.orm import Session

    from betrokken.portal.users import PortalUserRow

    secret = store.add("r.jansen", PASSWORD, ("regisseur",)).totp_secret
    older = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash(PASSWORD)
    with Session(store.engine) as session, session.begin():
        row = session.get(PortalUserRow, "r.jansen")
        assert row is not None
        row.password_hash = older
    assert store.login("r.jansen", PASSWORD, "000000").reason == "code"  # no rehash on a failure
    with Session(store.engine) as session:
        assert session.get(PortalUserRow, "r.jansen").password_hash == older  # type: ignore[union-attr]
    assert store.login("r.jansen", PASSWORD, pyotp.TOTP(secret).now()).account is not None
    with Session(store.engine) as session:
        stored = session.get(PortalUserRow, "r.jansen").password_hash  # type: ignore[union-attr]
    assert stored != older and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
