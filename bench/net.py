"""Bench networks: a development network (betrokken/app/devnet.py) whose nodes are filled in bulk.

Importing 100k registrations per node through the VOPRF round trip would take minutes per node,
so the node databases are written directly (docs/performance.md, "How the nodes are filled"):
the persons the bench asks about get their real pseudonyms, computed here under each
organisation's key as the key service derives it from its seed (RFC 9497 DeriveKeyPair with the
organisation in ``info``, then Evaluate without blinding); every other row is filler, a random
64-byte pseudonym under the node's key id, which is what a real pseudonym looks like to a node.
The schema comes from the node's own migration chain, so the running node accepts the file.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from betrokken.app.cluster import Cluster
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.config.load import load_network, load_node
from betrokken.config.schema import Network
from betrokken.crypto import oprf
from betrokken.crypto.bsn import Bsn, generate_bsn
from betrokken.identity.keyfiles import read_seed

ASKER = "zvh-bench"
PURPOSE = "zvh-triage"
SERVICE_USER = "bench"  # the command line asks only as a service account of the network file
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def node_ids(count: int) -> list[str]:
    return [f"org-{i:02d}" for i in range(1, count + 1)]


def people(count: int, seed: int = 8) -> list[Bsn]:
    rng = random.Random(seed)
    seen: dict[str, Bsn] = {}
    while len(seen) < count:
        bsn = generate_bsn(rng)
        seen[bsn.digits] = bsn
    return list(seen.values())


def registered_at(person: int, node: int, persons: int) -> bool:
    """The first half of the persons are registered at about a third of the nodes, the rest
    nowhere (so questions are half hits, half misses)."""
    return person < persons // 2 and (person + node) % 3 == 0


@dataclass
class BenchNet:
    net: DevNetwork
    network: Network
    nodes: list[str]
    persons: list[Bsn]
    per_node: int
    postgres: bool
    cluster: Cluster | None = None
    pg_databases: list[str] = field(default_factory=list)

    @property
    def asker_config(self) -> Path:
        return self.net.node_configs[ASKER]

    def node_url(self, org: str) -> str:
        return load_node(self.net.node_configs[org]).component.database

    def start(self) -> None:
        """Start every process; when a port was taken meanwhile (other benches on this machine
        build their networks at the same time), move the network to free ports and start once
        more."""
        from betrokken.errors import Unavailable

        for attempt in range(3):
            self.cluster = Cluster(self.net)
            try:
                self.cluster.start()
                return
            except Unavailable as exc:
                self.cluster = None
                if "cannot listen" not in str(exc) or attempt == 2:
                    raise
                move_ports(self.net)
                self.network = load_network(self.net.network_file)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None

    def pid(self, name: str) -> int:
        assert self.cluster is not None
        return self.cluster.processes[name].pid

    def remove(self) -> None:
        self.stop()
        if self.pg_databases:
            drop_pg_databases(self.pg_databases)
        shutil.rmtree(self.net.directory, ignore_errors=True)


def _loosen(network_file: Path) -> None:
    """The bench asks hundreds of questions a minute: lift the coordinator's rate limit (a
    production setting against abuse, not a cost of the protocol), and give nodes time."""
    text = network_file.read_text()
    text = text.replace("rate_limit_per_minute = 600", "rate_limit_per_minute = 1000000")
    # 50 node processes on 2 shared cores can take longer than the 3 s a node gets in production:
    # a late node would be UNREACHABLE and the answer incomplete; the bench measures the time.
    text = text.replace("deadline_seconds = 3.0", "deadline_seconds = 30.0")
    network_file.write_text(text)


# The witness loop of each node (it checks the coordinator's log and compares it with other
# nodes, every 60 s by default) is not part of a question: it ran in some measured windows and not
# in others. It runs once when a node starts, then not again while the bench measures.
WITNESS_INTERVAL_SECONDS = 3600.0


def _without_asker_node(network_file: Path, asker: str) -> None:
    """The asking organisation asks and answers nothing: without a node_address it has no node
    process (an idle process on the same two cores is a cost no question has) and is no witness."""
    text = network_file.read_text()
    blocks = text.split("[[organisations]]")
    for k, block in enumerate(blocks[1:], start=1):
        if re.search(rf'^id = "{re.escape(asker)}"$', block, re.M):
            blocks[k] = re.sub(r'^node_address = "[^"]*"\n', "", block, count=1, flags=re.M)
    network_file.write_text("[[organisations]]".join(blocks))


def _quiet_witness(node_config: Path) -> None:
    text = node_config.read_text()
    line = f"witness_interval_seconds = {WITNESS_INTERVAL_SECONDS}\n"
    node_config.write_text(text.replace("\n[tls]", f"\n{line}\n[tls]", 1))


# Each bench process starts at its own place in 21000-51000, so benches run at the same time on
# this machine (other sessions measure too) rarely reach for the same ports.
_NEXT_BASE = [21_000 + (os.getpid() % 300) * 100]
_ADDRESS = re.compile(r"127\.0\.0\.1:(\d+)")


def _config_files(net: DevNetwork) -> list[Path]:
    return [
        net.network_file,
        net.keyservice_config,
        net.coordinator_config,
        *net.node_configs.values(),
        *net.portal_configs.values(),
    ]


def move_ports(net: DevNetwork) -> None:
    """Every loopback port of the network's files moved to a free range (same order)."""
    files = _config_files(net)
    ports = sorted({int(p) for f in files for p in _ADDRESS.findall(f.read_text())})
    base = _free_base(len(ports))
    moved = {old: base + k for k, old in enumerate(ports)}
    for path in files:
        path.write_text(
            _ADDRESS.sub(lambda m: f"127.0.0.1:{moved[int(m.group(1))]}", path.read_text())
        )


def _free_base(count: int) -> int:
    """A free range of loopback ports far from the 7400-9000 that demos and tests use (other
    networks on this machine), never the same range twice in one run."""
    from betrokken.app.devnet import port_is_free

    while _NEXT_BASE[0] < 60_000:
        base = _NEXT_BASE[0]
        _NEXT_BASE[0] += count + 10
        if all(port_is_free(p) for p in range(base, base + count)):
            return base
    raise RuntimeError("no free range of loopback ports")


def _template(directory: Path) -> Path:
    """An empty node database at the newest revision of the node's migration chain."""
    from betrokken.node.store import NodeStore

    path = directory / "template-node.db"
    if not path.exists():
        store = NodeStore(f"sqlite:///{path}")
        store.engine.dispose()
    return path


def _rows(
    key_id: str, secret: bytes, persons: Sequence[Bsn], node: int, per_node: int, rng: random.Random
) -> list[tuple[object, ...]]:
    today = dt.datetime.now(dt.UTC).date()
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    until = (today + dt.timedelta(days=700)).isoformat()
    rows: list[tuple[object, ...]] = []
    for k, bsn in enumerate(persons):
        if registered_at(k, node, len(persons)):
            value = oprf.evaluate(secret, bsn.encode())
            since = (today - dt.timedelta(days=30 + k % 300)).isoformat()
            rows.append((value, key_id, since, until, f"CASE-{k:05d}", stamp))
    filler = per_node - len(rows)
    for n in range(max(0, filler)):
        since = (today - dt.timedelta(days=n % 540)).isoformat()
        rows.append((rng.randbytes(64), key_id, since, until, f"FILL-{n:06d}", stamp))
    return rows


INSERT = (
    "INSERT INTO registrations (pseudonym, key_id, domain, contact, since, until, reference, "
    "disclosure, created_at, updated_at, given_until, confirmed_at, lookup_key) "
    "VALUES (?, ?, 'overig', 'coordination desk', ?, ?, ?, NULL, ?, ?, NULL, ?, ?)"
)


def _fill_sqlite(path: Path, rows: list[tuple[object, ...]]) -> None:
    from betrokken.crypto.question import lookup_key

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.executemany(
            INSERT,
            [(*r, r[5], r[5], lookup_key(bytes(r[0]))) for r in rows],  # type: ignore[arg-type]
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _fill_postgres(url: str, rows: list[tuple[object, ...]]) -> None:
    from betrokken.crypto.question import lookup_key
    from betrokken.node.store import NodeStore, RegistrationRow

    store = NodeStore(url)
    try:
        table = RegistrationRow.__table__
        with store.engine.begin() as conn:
            stamp = dt.datetime.now(dt.UTC)
            batch = [
                {
                    "pseudonym": r[0],
                    "lookup_key": lookup_key(bytes(r[0])),  # type: ignore[arg-type]
                    "key_id": r[1],
                    "domain": "overig",
                    "contact": "coordination desk",
                    "since": dt.date.fromisoformat(str(r[2])),
                    "until": dt.date.fromisoformat(str(r[3])),
                    "reference": r[4],
                    "disclosure": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "given_until": None,
                    "confirmed_at": stamp,
                }
                for r in rows
            ]
            for start in range(0, len(batch), 10_000):
                conn.execute(table.insert(), batch[start : start + 10_000])
    finally:
        store.engine.dispose()


def create_pg_databases(names: Sequence[str]) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_databases(names: Sequence[str]) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def build(
    directory: Path,
    nodes: int,
    per_node: int,
    persons: int = 200,
    *,
    postgres: bool = False,
    name: str | None = None,
) -> BenchNet:
    """A network of ``ASKER`` plus ``nodes`` nodes, each holding ``per_node`` registrations."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = node_ids(nodes)
    label = name or f"bench-{nodes}"
    base = _free_base(2 * (3 + nodes))
    net = init_network(
        directory / label,
        [ASKER, *ids],
        name=label,
        quota=10_000_000,
        base_port=base,
        service_users=(SERVICE_USER,),
    )
    _loosen(net.network_file)
    _without_asker_node(net.network_file, ASKER)
    for org_id in ids:
        _quiet_witness(net.node_configs[org_id])
    network = load_network(net.network_file)
    seed = read_seed(net.keyservice_config.parent / "oprf.seed")
    population = people(persons)
    template = _template(directory)
    rng = random.Random(nodes * 1_000_003 + per_node)
    pg_names: list[str] = []
    for number, org_id in enumerate(ids, start=1):
        org = network.organisation(org_id)
        assert org is not None
        secret = oprf.derive_organisation_key(seed, org_id).secret
        rows = _rows(org.pseudonym_key_id, secret, population, number, per_node, rng)
        config = net.node_configs[org_id]
        if postgres:
            db = f"bench_{label}_{org_id}".replace("-", "_")
            pg_names.append(db)
            create_pg_databases([db])
            text = config.read_text().replace('"sqlite:///node.db"', f'"{pg_url(db)}"')
            config.write_text(text)
            _fill_postgres(pg_url(db), rows)
        else:
            path = config.parent / "node.db"
            shutil.copyfile(template, path)
            _fill_sqlite(path, rows)
    return BenchNet(net, network, ids, population, per_node, postgres, pg_databases=pg_names)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def disk_bytes(path: Path) -> int:
    """A SQLite database's size with its WAL and shared-memory files."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            total += os.path.getsize(candidate)
    return total
