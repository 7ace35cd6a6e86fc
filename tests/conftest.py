"""Shared fixtures: databases (SQLite and PostgreSQL), a development network, a local OPRF."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from betrokken.app.devnet import DevNetwork, init_network
from betrokken.config.load import load_network
from betrokken.config.schema import Network
from betrokken.crypto import oprf
from betrokken.crypto.bsn import Bsn
from betrokken.crypto.pseudonym import Pseudonym

PG_ADMIN_URL = os.environ.get(
    "BETROKKEN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _postgres_problem() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL} ({type(exc).__name__})"
    return None


def require_or_skip(problem: str | None) -> None:
    """Skip with the reason on a developer's machine; fail in CI, where it must run."""
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem}; CI=true, so this must run")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One PostgreSQL database for the whole run (made once: CREATE DATABASE costs a checkpoint);
    :func:`database_url` empties it before each test that uses it."""
    require_or_skip(_postgres_problem())
    name = f"betrokken_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty(name: str) -> None:
    """The database as new: no session of an earlier test left in it, no setting it changed, no
    table, sequence or type (one schema holds them all; it is made anew)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET ALL'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    finally:
        admin.dispose()
    engine = create_engine(
        PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind: a new SQLite file, or the run's PostgreSQL database
    emptied (every test sees it as new)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    name = request.getfixturevalue("postgres_database")
    _empty(name)
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> DevNetwork:
    """A development network (not running) shared by in-process tests."""
    return init_network(
        tmp_path_factory.mktemp("devnet"),
        ["zvh-test", "politie-test", "gemeente-test", "ggz-test"],
        name="test-network",
    )


@pytest.fixture(scope="session")
def network(devnet: DevNetwork) -> Network:
    return load_network(devnet.network_file)


class LocalPseudonymiser:
    """Real OPRF with a local key, for unit tests that need pseudonyms without a key service."""

    def __init__(self, key_id: str = "k-test") -> None:
        self.keypair = oprf.derive_key_pair(b"\x07" * 32, b"betrokken tests")
        self.key_id = key_id

    def pseudonymise(self, bsns: Sequence[Bsn]) -> list[Pseudonym]:
        return [
            Pseudonym(oprf.evaluate(self.keypair.secret, b.encode()), self.key_id) for b in bsns
        ]


@pytest.fixture
def local_pseudonymiser() -> LocalPseudonymiser:
    return LocalPseudonymiser()
