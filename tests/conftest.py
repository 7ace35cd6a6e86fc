"""Shared fixtures: databases (SQLite and PostgreSQL), a development network, a local OPRF; and
the two tiers.

**The tiers** (docs/adr/0025-test-tiers.md). ``make check`` runs every test that starts no
process and no browser (``-m "not e2e and not browser"``), ``make test`` everything. A test is
``e2e`` when it starts processes — it is marked by hand, or here when it uses a fixture that does
(:data:`PROCESS_FIXTURES`) — and ``browser`` (and ``e2e``) when it drives Chromium
(:data:`BROWSER_FIXTURES`). So that the tier stays true, a test not marked ``e2e`` that starts a
Python process or a browser fails, naming the marker (:func:`pytest_runtest_protocol`); small
system tools (``chattr``, ``systemd-analyze``) are allowed.
"""

from __future__ import annotations

import fcntl
import os
import random
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from betrokken.app.devnet import DevNetwork, init_network, port_is_free
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


# Fixtures that start processes (a running network, and everything built on it) or a browser.
PROCESS_FIXTURES = frozenset({"running"})
BROWSER_FIXTURES = frozenset({"browser", "browser_profile", "chromium"})


# Under `make test` two workers share the tests (pytest-xdist, --dist loadgroup): the worker's name
# ("gw0", "gw1"; empty when pytest runs alone) keeps what each makes apart.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
NETWORK_GROUP = "network"
PROCESS_GROUP = "process"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if fixtures & (PROCESS_FIXTURES | BROWSER_FIXTURES):
            item.add_marker(pytest.mark.e2e)
        group = worker_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            if config.getoption("loadgroup", False):  # a worker of `make test`
                _name_the_group(item, group)


def _name_the_group(item: pytest.Item, group: str) -> None:
    """Give the test the node id ``<id>@<group>``, by which pytest-xdist's ``loadgroup`` hands a
    group to one worker. pytest-xdist 3.8 writes it to ``item._nodeid``, which pytest 9 no longer
    reads (the id is ``item._id``, a structured ``NodeId``), so its groups would silently be
    ignored; tests/e2e/test_workers.py fails if a group is not in the id."""
    suffixed = f"{item.nodeid}@{group}"
    node_id = getattr(item, "_id", None)
    if node_id is not None and hasattr(type(node_id), "parse"):
        item._id = type(node_id).parse(suffixed)
    else:
        item._nodeid = suffixed


def worker_group(item: pytest.Item) -> str | None:
    """Which tests one worker runs together, in the order of the files (docs/adr/0031):

    * the tests on one network (``running``, and what is built on it) or on the browser beside
      it (``browser``, ``chromium``): ``network:tests/e2e`` and ``network:tests/portal``, one
      group per place that defines the network. They share a network and a browser, started once,
      and some read what the ones before them left (the P1 scans run last);
    * the tests of a module with a module-wide fixture (a network of its own, a filled log): it
      is made once, not once on each worker.

    Any other test goes to whichever worker is free."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs if info is not None else {}
    for name in sorted(PROCESS_FIXTURES) + sorted(BROWSER_FIXTURES):
        if definitions.get(name):
            return f"{NETWORK_GROUP}:{definitions[name][-1].baseid}"
    if any(defs and defs[-1].scope == "module" for defs in definitions.values()):
        return item.nodeid.split("::")[0]
    if item.get_closest_marker("e2e") is not None:
        return f"{PROCESS_GROUP}:{item.nodeid}"  # a group of one, handed out early
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With workers (``-n``): :func:`networks_first` (docs/adr/0031)."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class NetworksFirst(LoadGroupScheduling):  # type: ignore[misc]
        ordered = False

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the first hand-out: the queue is complete, order it once
                self.ordered = True
                units = sorted(self.workqueue.items(), key=lambda unit: networks_first(unit[0]))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return NetworksFirst(config, log)


def networks_first(scope: str) -> int:
    """The order in which the workers are handed the groups: first the networks (one to each
    worker, so that both start at once and neither waits at the end for a network no one began),
    then every other test that starts processes (the slow ones, so that none is the last), then
    the modules with a fixture of their own, then the rest (pytest-xdist keeps its order within
    each: the largest groups first, then the order of the files)."""
    if scope.startswith(f"{NETWORK_GROUP}:"):
        return 0
    if scope.startswith(f"{PROCESS_GROUP}:"):
        return 1
    if "::" not in scope:
        return 2
    return 3


def _starts_a_process_of_its_own(args: Any) -> str | None:
    """The program, if ``args`` would start Python or a browser (what ``e2e`` means)."""
    program = args[0] if isinstance(args, list | tuple) else str(args).split()[0]
    name = Path(os.fsdecode(program)).name
    if os.fsdecode(program) == sys.executable or name.startswith(("python", "chrom")):
        return name
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    if item.get_closest_marker("e2e") is not None:
        yield
        return
    real = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        program = _starts_a_process_of_its_own(args)
        if program is not None:
            raise AssertionError(
                f"{item.nodeid} starts {program}: a test that starts processes or a browser is "
                "marked e2e (pytest.mark.e2e), so that `make check` stays free of them"
            )
        real(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = guarded  # type: ignore[method-assign]
    try:
        yield
    finally:
        subprocess.Popen.__init__ = real  # type: ignore[method-assign]


# Blocks of loopback ports for networks that tests start (network_ports), each held by the process
# that took it (an exclusive flock on a file per block; the kernel drops it when the process ends).
PORT_BLOCK = 50
PORT_BLOCKS = range(20000, 30000, PORT_BLOCK)
_held_blocks: list[int] = []  # open descriptors: the locks this process holds until it ends


def _hold_block(base: int) -> bool:
    """Take the machine-wide lock on the block at ``base``; False when another process has it."""
    path = Path(tempfile.gettempdir()) / f"betrokken-test-ports-{base}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_blocks.append(fd)
    return True


def network_ports(organisations: int) -> int:
    """The first of the loopback ports a development network of ``organisations`` takes: a block
    of 50 in 20000-29999 that no other process holds, taken for as long as this one runs.

    ``network init`` without ``--base-port`` takes the first free block from 7400, so two runs of
    the suite on one machine (engineers share one), or the two workers of one run (``make test``:
    docs/adr/0031-two-test-workers.md), would take the same block: nothing listens there until the
    servers start. Each block is held by the process that took it (a lock on a file, which the
    kernel drops when the process ends), so no other worker or run takes it while this process
    lives; among the free blocks one is drawn at random."""
    count = 3 * organisations + 4  # init_network: two services, nodes, metrics, portals
    assert count <= PORT_BLOCK, f"{organisations} organisations need more than one block"
    blocks = list(PORT_BLOCKS)
    random.SystemRandom().shuffle(blocks)
    for base in blocks:
        if not _hold_block(base):
            continue
        if all(port_is_free(port) for port in range(base, base + count)):
            return base  # held until this process ends: a module's network may stop and start
        os.close(_held_blocks.pop())  # something else listens there: leave the block
    raise AssertionError(f"no block of {count} free loopback ports in 20000-29999")


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
    name = f"betrokken_test_{WORKER or 'main'}_{uuid.uuid4().hex[:12]}"
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
        ["zvh-test", "politie-test", "gemeente-test", "ggz-test", "veilig-thuis-test"],
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
