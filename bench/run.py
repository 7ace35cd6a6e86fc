"""The scenarios of ``make bench`` and the files they write (docs/performance.md).

Every figure is ``{"median", "min", "max", "runs"}`` over repeated runs; every ratio is taken
between medians measured in this same run. A scenario that cannot run here is ``null`` with a
``why`` next to it.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.net import ASKER, PURPOSE, BenchNet, build, disk_bytes, people, rss_mb
from bench.stats import Figure, figure, median_of, percentile, ratio, slope, timed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PSI_PYTHON = ROOT / ".venv-psi" / "bin" / "python"


@dataclass(frozen=True)
class Sizes:
    quick: bool
    per_node: int
    small_per_node: int
    nodes: tuple[int, ...]
    skipped_nodes: tuple[int, ...]
    rounds: int
    questions: int
    qps_seconds: float
    qps_rounds: int
    log_sizes: tuple[int, ...]
    skipped_log_sizes: tuple[int, ...]
    log_questions: int
    import_rows: int
    import_runs: int
    batch_runs: int
    psi_runs: int
    cli_runs: int
    crypto_repeat: int


FULL = Sizes(
    quick=False,
    per_node=100_000,
    small_per_node=1_000,
    nodes=(2, 5, 10, 20, 50),
    skipped_nodes=(),
    rounds=5,
    questions=30,
    qps_seconds=4.0,
    qps_rounds=3,
    log_sizes=(1_000, 100_000, 1_000_000),
    skipped_log_sizes=(),
    log_questions=20,
    import_rows=20_000,
    import_runs=3,
    batch_runs=5,
    psi_runs=3,
    cli_runs=7,
    crypto_repeat=200,
)
QUICK = Sizes(
    quick=True,
    per_node=1_000,  # the same as the small network: its N=5 network serves both
    small_per_node=1_000,
    nodes=(2, 5),
    skipped_nodes=(10, 20, 50),
    rounds=3,
    questions=10,
    qps_seconds=2.0,
    qps_rounds=1,
    log_sizes=(1_000, 100_000),
    skipped_log_sizes=(1_000_000,),
    log_questions=8,
    import_rows=1_000,
    import_runs=1,
    batch_runs=2,
    psi_runs=1,
    cli_runs=3,
    crypto_repeat=30,
)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def ms(values: list[float]) -> list[float]:
    return [v * 1000 for v in values]


def voprf_round(pair: Any, inputs: list[bytes]) -> list[bytes]:
    """Every VOPRF step for ``inputs`` in one process: blind, BlindEvaluate with the batched
    proof, Finalize verifying it."""
    from betrokken.crypto import oprf

    blinded = [oprf.blind(x) for x in inputs]
    evaluated, proof = oprf.blind_evaluate(pair.secret, [b for _, b in blinded], public=pair.public)
    return oprf.finalize(
        inputs,
        [r for r, _ in blinded],
        [b for _, b in blinded],
        evaluated,
        public=pair.public,
        proof=proof,
    )


# --- crypto floor --------------------------------------------------------------------------------
def crypto(sizes: Sizes) -> dict[str, Any]:
    from betrokken.crypto import envelope as env
    from betrokken.crypto import oprf

    pair = oprf.generate_key_pair()
    scalar = oprf._G.random_scalar()
    element = oprf._G.scalar_mult_gen(oprf._G.random_scalar())
    repeat = sizes.crypto_repeat

    def mult() -> None:
        oprf._G.scalar_mult(scalar, element)

    def voprf(count: int) -> Callable[[], None]:
        inputs = [f"{100000000 + i}".encode() for i in range(count)]
        return lambda: voprf_round(pair, inputs)

    key = env.EnvelopeKey.generate()
    public = key.public_bytes()
    plaintext = os.urandom(600)

    def hpke() -> None:
        env.open_sealed(key, b"info", env.seal(public, b"info", plaintext))

    def us_runs(work: Callable[[], None], per: int, inner: int) -> Figure:
        runs = []
        for _ in range(5):
            runs.append(statistics.median(timed(work, inner)) * 1e6 / per)
        return figure(runs)

    return {
        "mult_us": us_runs(mult, 1, repeat * 5),
        "voprf_single_us": us_runs(voprf(1), 1, repeat),
        "voprf_batch_us_per_element": us_runs(voprf(100), 100, max(3, repeat // 20)),
        "hpke_us": us_runs(hpke, 1, repeat),
        "note": "one VOPRF evaluation = blind + BlindEvaluate with its DLEQ proof + Finalize "
        "verifying the proof, client and server work in one process; batched over 100 elements",
    }


# --- the question floor --------------------------------------------------------------------------
class QuestionFloor:
    """The cryptographic and storage work of one question to ``N`` nodes, in one process, no
    network: the VOPRF under N + 1 keys (the nodes' and the asker's own, with proofs), the N
    envelopes sealed and opened and the N replies sealed and opened, N indexed look-ups in plain
    SQL on the nodes' own databases, one durable append (SQLite, synchronous=FULL)."""

    def __init__(self, bn: BenchNet, scratch: Path) -> None:
        from betrokken.crypto import oprf
        from betrokken.crypto import question as q
        from betrokken.identity.keyfiles import read_envelope_key, read_seed

        seed = read_seed(bn.net.keyservice_config.parent / "oprf.seed")
        self.keys = [oprf.derive_organisation_key(seed, org) for org in [ASKER, *bn.nodes]]
        self.key_ids = {org: bn.network.organisation(org).pseudonym_key_id for org in bn.nodes}  # type: ignore[union-attr]
        self.envelope_keys = []
        for org_id in bn.nodes:
            org = bn.network.organisation(org_id)
            assert org is not None
            path = bn.net.node_configs[org_id].parent / "envelope.key"
            self.envelope_keys.append((org_id, read_envelope_key(path, org.envelope_key)))
        self.lookups = [
            sqlite3.connect(f"file:{bn.net.node_configs[o].parent / 'node.db'}?mode=ro", uri=True)
            for o in bn.nodes
        ]
        scratch.mkdir(parents=True, exist_ok=True)
        self.durable = sqlite3.connect(scratch / "floor-append.db", isolation_level=None)
        self.durable.execute("PRAGMA journal_mode=WAL")
        self.durable.execute("PRAGMA synchronous=FULL")
        self.durable.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, v BLOB)")
        self.network = bn.network.name
        self.q = q
        self.oprf = oprf
        self.today = dt.datetime.now(dt.UTC).date().isoformat()
        self.persons = bn.persons

    def once(self, turn: int) -> None:
        from betrokken.crypto import envelope as env

        oprf, q = self.oprf, self.q
        bsn = self.persons[turn % len(self.persons)].encode()
        blind, element = oprf.blind(bsn)
        outputs = []
        for pair in self.keys:
            evaluated, proof = oprf.blind_evaluate(pair.secret, [element], public=pair.public)
            outputs.append(
                oprf.finalize(
                    [bsn], [blind], [element], evaluated, public=pair.public, proof=proof
                )[0]
            )
        answer_id = f"00000000-0000-4000-8000-{turn:012d}"
        for (org_id, key), pseudonym in zip(self.envelope_keys, outputs[1:], strict=True):
            reply_key = env.new_reply_key()
            item = q.LookupItem.seal(pseudonym, "k", answer_id, org_id, 0, q.NeedToKnow("C", "b"))
            content = q.EnvelopeContent(answer_id, org_id, reply_key, (item,)).to_bytes()
            info = q.envelope_info(self.network, answer_id, org_id)
            opened = env.open_sealed(key, info, env.seal(key.public_bytes(), info, content))
            assert opened == content
            aad = q.reply_aad(self.network, answer_id, org_id)
            env.open_reply(reply_key, aad, env.seal_reply(reply_key, aad, os.urandom(200)))
        for conn, (org_id, _), pseudonym in zip(
            self.lookups, self.envelope_keys, outputs[1:], strict=True
        ):
            conn.execute(
                "SELECT id, pseudonym, since, contact, domain, reference, disclosure, advice "
                "FROM registrations "
                "WHERE lookup_key = ? AND key_id = ? AND until >= ? AND since <= ?",
                (q.lookup_key(pseudonym), self.key_ids[org_id], self.today, self.today),
            ).fetchall()
        self.durable.execute("BEGIN")
        self.durable.execute("INSERT INTO log (v) VALUES (?)", (os.urandom(600),))
        self.durable.execute("COMMIT")

    def close(self) -> None:
        for conn in self.lookups:
            conn.close()
        self.durable.close()


# --- asking --------------------------------------------------------------------------------------
def _requester(bn: BenchNet) -> Any:
    from betrokken.config.load import load_node
    from betrokken.requester.client import Requester

    return Requester.from_config(load_node(bn.asker_config))


INCOMPLETE = [0]  # answers that were not complete (a node too late): reported, never hidden


def ask_times(
    requester: Any, bn: BenchNet, count: int, offset: int = 0, batch: int = 1
) -> list[float]:
    from betrokken.requester.client import Person

    out = []
    for turn in range(count):
        persons = [
            Person(bn.persons[(offset + turn * batch + k) % len(bn.persons)], f"CASE-{turn}-{k}")
            for k in range(batch)
        ]
        start = time.perf_counter()
        result = requester.ask(persons, purpose=PURPOSE, user="bench", role="regisseur")
        out.append(time.perf_counter() - start)
        if not result.complete:
            INCOMPLETE[0] += 1
    return out


_ASKER: dict[str, Any] = {}


def _asker_init(config: str, digits: list[str]) -> None:
    """Each concurrent asker is its own process with its own requester, made once."""
    from betrokken.config.load import load_node
    from betrokken.crypto.bsn import parse_bsn
    from betrokken.requester.client import Requester

    _ASKER["requester"] = Requester.from_config(load_node(config))
    _ASKER["persons"] = [parse_bsn(d) for d in digits]


def _asker_once(turn: int) -> bool:
    from betrokken.requester.client import Person

    persons = _ASKER["persons"]
    try:
        _ASKER["requester"].ask(
            [Person(persons[turn % len(persons)], "CASE-QPS")],
            purpose=PURPOSE,
            user="bench",
            role="regisseur",
        )
        return True
    except Exception:
        return False


def _asker(start_at: float, seconds: float) -> tuple[int, int]:
    """Questions answered (and failed) from ``start_at`` for ``seconds``."""
    done = failed = 0
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + seconds
    turn = os.getpid()
    while time.time() < end:
        turn += 1
        if _asker_once(turn):
            done += 1
        else:
            failed += 1
    return done, failed


def qps(bn: BenchNet, sizes: Sizes, askers: int = 8) -> tuple[Figure, int]:
    context = multiprocessing.get_context("spawn")
    digits = [b.digits for b in bn.persons]
    values: list[float] = []
    failures = 0
    with context.Pool(askers, _asker_init, (str(bn.asker_config), digits)) as pool:
        pool.map(_asker_once, range(askers * 2), chunksize=1)  # every asker made and warm
        for _ in range(sizes.qps_rounds):
            start_at = time.time() + 1.0
            results = pool.starmap(_asker, [(start_at, sizes.qps_seconds)] * askers, chunksize=1)
            values.append(sum(d for d, _ in results) / sizes.qps_seconds)
            failures += sum(f for _, f in results)
    return figure(values, 1), failures


# --- scenarios on running networks ---------------------------------------------------------------
def query_at(n: int, sizes: Sizes, work: Path, out: dict[str, Any]) -> None:
    say(f"query: building a network of {n} nodes with {sizes.per_node} registrations each")
    bn = build(work, n, sizes.per_node)
    try:
        bn.start()
        requester = _requester(bn)
        ask_times(requester, bn, 5)  # warm: channels, witness state, caches
        p50, p95, p99 = [], [], []
        for r in range(sizes.rounds):
            samples = ms(ask_times(requester, bn, sizes.questions, offset=r * 7))
            p50.append(percentile(samples, 50))
            p95.append(percentile(samples, 95))
            p99.append(percentile(samples, 99))
        floor = QuestionFloor(bn, work / f"floor-{n}")
        floors = []
        for r in range(sizes.rounds):
            runs = []
            for turn in range(sizes.questions):
                start = time.perf_counter()
                floor.once(r * 1000 + turn)
                runs.append((time.perf_counter() - start) * 1000)
            floors.append(statistics.median(runs))
        floor.close()
        say(
            f"query N={n}: p50 {statistics.median(p50):.1f} ms, "
            f"floor {statistics.median(floors):.1f} ms"
        )
        entry: dict[str, Any] = {
            "p50_ms": figure(p50),
            "p95_ms": figure(p95),
            "p99_ms": figure(p99),
            "floor_ms": figure(floors),
            "registrations_per_node": sizes.per_node,
            "questions_per_run": sizes.questions,
        }
        entry["p50_floor_ratio"] = ratio(median_of(entry["p50_ms"]), median_of(entry["floor_ms"]))
        if sizes.quick and n != 5:  # the quick run measures throughput where the goal is
            entry["qps"], entry["qps_why"] = None, "the quick run measures qps at N=5 only"
        else:
            entry["qps"], entry["qps_failures"] = qps(bn, sizes)
            say(f"query N={n}: {entry['qps']['median']} questions/s with 8 askers")
        out["query"][str(n)] = entry
        if n == 5:
            if sizes.per_node == sizes.small_per_node:  # the quick run: this is the small one
                out["_coordinator_small"] = rss_mb(bn.pid("coordinator"))
                out["_small_sqlite_p50"] = entry["p50_ms"]
            else:
                out["_coordinator_large"] = rss_mb(bn.pid("coordinator"))
            batch_at(bn, requester, sizes, out)
            cli_query(bn, sizes, out)
        requester.close()
    finally:
        bn.remove()


def batch_at(bn: BenchNet, requester: Any, sizes: Sizes, out: dict[str, Any]) -> None:
    persons = 100
    times = ask_times(requester, bn, sizes.batch_runs, batch=persons)
    per_s = figure([persons / t for t in times], 1)
    entry: dict[str, Any] = {"persons": persons, "nodes": len(bn.nodes), "per_s": per_s}
    peer = psi_peer(bn, sizes, persons)
    if isinstance(peer, str):
        entry.update(peer_per_s=None, peer_reused_per_s=None, vs_peer=None, vs_peer_reused=None)
        entry["why"] = peer
    else:
        entry["peer_per_s"] = figure([persons / t for t in peer["with_setup_s"]], 2)
        entry["peer_reused_per_s"] = figure([persons / t for t in peer["reused_s"]], 1)
        entry["vs_peer"] = ratio(median_of(per_s), median_of(entry["peer_per_s"]))
        entry["vs_peer_reused"] = ratio(median_of(per_s), median_of(entry["peer_reused_per_s"]))
        entry["peer"] = (
            "openmined-psi (ECDH-PSI, GCS set-up, fpr 1e-9), the same 100 persons against each "
            "node's set pairwise, client and server in one process"
        )
    say(f"batch: {entry['per_s']['median']} persons/s; peer {entry.get('peer_per_s')}")
    out["batch"] = entry


def psi_peer(bn: BenchNet, sizes: Sizes, persons: int) -> dict[str, Any] | str:
    if not PSI_PYTHON.exists():
        return (
            "openmined-psi is not installed: `make bench` makes .venv-psi with it (it needs "
            "protobuf < 7, betrokken protobuf 7, so it cannot share betrokken's environment)"
        )
    params = {
        "client": [b.digits for b in bn.persons[:persons]],
        "nodes": len(bn.nodes),
        "per_node": bn.per_node,
        "runs": sizes.psi_runs,
    }
    done = subprocess.run(
        [str(PSI_PYTHON), str(ROOT / "bench" / "peer_psi.py")],
        input=json.dumps(params),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        return f"openmined-psi failed: {done.stderr.strip()[-300:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _betrokken() -> str:
    return str(Path(sys.executable).parent / "betrokken")


def cli_query(bn: BenchNet, sizes: Sizes, out: dict[str, Any]) -> None:
    walls = []
    for turn in range(sizes.cli_runs):
        bsn = bn.persons[turn % len(bn.persons)].digits
        start = time.perf_counter()
        done = subprocess.run(
            [
                _betrokken(),
                "query",
                "--config",
                str(bn.asker_config),
                "--bsn",
                bsn,
                "--purpose",
                PURPOSE,
                "--case",
                "CASE-CLI",
                "--user",
                "bench",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise RuntimeError(f"betrokken query failed: {done.stderr[-500:]}")
    out["cli"]["query_wall_ms"] = figure(walls)
    out["cli"]["query_nodes"] = len(bn.nodes)


def cli_help(sizes: Sizes, out: dict[str, Any]) -> None:
    walls = []
    for _ in range(sizes.cli_runs + 3):
        start = time.perf_counter()
        subprocess.run([_betrokken(), "--help"], capture_output=True, check=True)
        walls.append((time.perf_counter() - start) * 1000)
    bare = []
    for _ in range(sizes.cli_runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append((time.perf_counter() - start) * 1000)
    out["cli"]["help_ms"] = figure(walls)
    out["cli"]["bare_python_ms"] = figure(bare)
    out["cli"]["help_vs_bare_python"] = ratio(
        median_of(out["cli"]["help_ms"]), statistics.median(bare)
    )


def log_at(size: int, sizes: Sizes, work: Path, out: dict[str, Any]) -> None:
    from bench.bulklog import add_records
    from betrokken.audit.log import AuditLog, LogBase
    from betrokken.config.load import load_coordinator
    from betrokken.db import make_engine

    say(f"log: a coordinator whose log already holds {size} records")
    bn = build(work, 2, sizes.small_per_node, name=f"log-{size}")
    try:
        url = load_coordinator(bn.net.coordinator_config).component.database
        engine = make_engine(url, LogBase.metadata, component="coordinator")
        AuditLog(engine, None, "bench")  # the head row
        add_records(engine, 0, size)
        log = AuditLog(engine, None, "bench")  # stores the subtree hashes
        engine.dispose()
        bn.start()
        requester = _requester(bn)
        ask_times(requester, bn, 3)
        p50 = []
        for r in range(sizes.rounds):
            p50.append(percentile(ms(ask_times(requester, bn, sizes.log_questions, r)), 50))
        requester.close()
        bn.stop()
        engine = make_engine(url, LogBase.metadata, component="coordinator")
        log = AuditLog(engine, None, "bench")
        now = log.size()
        with engine.connect() as conn:  # the records the questions made (not the bulk filler)
            real = conn.exec_driver_sql(
                'SELECT avg(length(content)), count(*) FROM log_records WHERE "index" >= ?',
                (size,),
            ).one()
        out["log"]["record_bytes"] = round(float(real[0] or 0), 1)
        asked = 3 + sizes.rounds * sizes.log_questions
        out["log"]["records_per_question"] = round(real[1] / asked, 2)
        witness = []
        for r in range(sizes.rounds):
            old = size // 2 + r
            witness.append(
                statistics.median(ms(timed(lambda o=old: log.consistency_proof(o, now), 20)))
            )
        engine.dispose()
        out["log"]["p50_ms"][str(size)] = figure(p50)
        out["log"]["witness_consistency_ms"][str(size)] = figure(witness)
        say(
            f"log {size}: p50 {statistics.median(p50):.1f} ms, "
            f"consistency {statistics.median(witness):.3f} ms"
        )
    finally:
        bn.remove()


def coordinator_and_postgres(sizes: Sizes, work: Path, out: dict[str, Any]) -> None:
    """The coordinator's memory with small nodes, and questions with nodes on PostgreSQL."""
    p50: dict[str, Figure] = {}
    if "_small_sqlite_p50" in out:  # measured on the query scenario's network of this size
        p50["sqlite"] = out.pop("_small_sqlite_p50")
    for kind in [k for k in ("sqlite", "postgres") if k not in p50]:
        say(f"small network of 5 nodes ({sizes.small_per_node} registrations) on {kind}")
        bn = build(work, 5, sizes.small_per_node, postgres=kind == "postgres", name=f"small-{kind}")
        try:
            bn.start()
            requester = _requester(bn)
            ask_times(requester, bn, 5)
            runs = []
            for r in range(sizes.rounds):
                runs.append(percentile(ms(ask_times(requester, bn, sizes.questions, r)), 50))
            p50[kind] = figure(runs)
            if kind == "sqlite":
                out["_coordinator_small"] = rss_mb(bn.pid("coordinator"))
            requester.close()
        finally:
            bn.remove()
    out["postgres"]["query_p50_ms"] = p50
    out["postgres"]["query_ratio"] = ratio(median_of(p50["postgres"]), median_of(p50["sqlite"]))


# --- import --------------------------------------------------------------------------------------
def import_floor(sizes: Sizes) -> Figure:
    """Per element, the VOPRF work of an import on one core: blind, BlindEvaluate over batches of
    1000 with the proof, Finalize verifying it."""
    from betrokken.crypto import oprf

    pair = oprf.generate_key_pair()
    count = 1000 if not sizes.quick else 200
    inputs = [f"{100000000 + i}".encode() for i in range(count)]
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        voprf_round(pair, inputs)
        runs.append(count / (time.perf_counter() - start))
    return figure(runs, 1)


def _pg_size(name: str) -> int:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchone()
    return int(row[0]) if row else 0


def imports(sizes: Sizes, work: Path, out: dict[str, Any]) -> None:
    from bench.net import create_pg_databases, drop_pg_databases, pg_url
    from betrokken.app.demo import write_export
    from betrokken.node.store import NodeStore

    say(f"import: {sizes.import_rows} rows per run, SQLite and PostgreSQL")
    bn = build(work, 1, 0, name="import")
    floor = import_floor(sizes)
    out["import"]["floor_per_s"] = floor
    try:
        bn.start()
        config = bn.net.node_configs[bn.nodes[0]]
        export = work / "export.csv"
        write_export(export, people(sizes.import_rows, seed=11))
        for kind in ("sqlite", "postgres"):
            rates, sizes_b, rss = [], [], []
            for run in range(sizes.import_runs):
                name = f"bench_import_{run}"
                if kind == "sqlite":
                    path = config.parent / f"import-{run}.db"
                    url = f"sqlite:///{path}"
                else:
                    create_pg_databases([name])
                    url = pg_url(name)
                NodeStore(url).engine.dispose()  # the schema, so its size is not counted
                before = disk_bytes(path) if kind == "sqlite" else _pg_size(name)
                copy = config.parent / f"import-{kind}-{run}.toml"
                copy.write_text(config.read_text().replace('"sqlite:///node.db"', f'"{url}"'))
                start = time.perf_counter()
                process = subprocess.Popen(
                    [_betrokken(), "node", "import", "--config", str(copy), str(export), "--quiet"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                _, status, usage = os.wait4(process.pid, 0)
                wall = time.perf_counter() - start
                code = os.waitstatus_to_exitcode(status)
                stdout = process.stdout.read().decode() if process.stdout else ""
                stderr = process.stderr.read().decode() if process.stderr else ""
                process.returncode = code
                if code not in (0, 2) or f"{sizes.import_rows} added" not in stdout:
                    raise RuntimeError(f"import failed ({code}): {stdout[-300:]} {stderr[-500:]}")
                if kind == "sqlite":
                    conn = sqlite3.connect(path)
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    conn.close()
                    after = disk_bytes(path)
                else:
                    with __import__("psycopg").connect(
                        f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True
                    ) as conn:
                        conn.execute("VACUUM ANALYZE")
                    after = _pg_size(name)
                    drop_pg_databases([name])
                rates.append(sizes.import_rows / wall)
                sizes_b.append((after - before) / sizes.import_rows)
                rss.append(usage.ru_maxrss / 1024)
            entry = {
                "per_s": figure(rates, 1),
                "bytes_per_registration": figure(sizes_b, 1),
                "peak_rss_mb": figure(rss, 1),
                "rows": sizes.import_rows,
            }
            entry["floor_ratio"] = ratio(median_of(entry["per_s"]), median_of(floor))
            out["import"][kind] = entry
            say(
                f"import {kind}: {entry['per_s']['median']} rows/s, "
                f"{entry['bytes_per_registration']['median']} B/registration"
            )
    finally:
        bn.remove()
    out["postgres"]["import_ratio"] = ratio(
        median_of(out["import"]["sqlite"]["per_s"]), median_of(out["import"]["postgres"]["per_s"])
    )


# --- the whole run -------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def skeleton(sizes: Sizes) -> dict[str, Any]:
    return {
        "quick": sizes.quick,
        "sizes": {
            "registrations_per_node": sizes.per_node,
            "small_registrations_per_node": sizes.small_per_node,
            "nodes": list(sizes.nodes),
            "log_records": list(sizes.log_sizes),
            "import_rows": sizes.import_rows,
            "questions_per_run": sizes.questions,
            "runs": sizes.rounds,
        },
        "crypto": {},
        "query": {},
        "fanout": {},
        "log": {"p50_ms": {}, "witness_consistency_ms": {}},
        "cli": {},
        "import": {},
        "batch": {},
        "coordinator": {},
        "postgres": {},
    }


def finish(out: dict[str, Any], sizes: Sizes) -> None:
    why_quick = "not measured in the quick run (make bench-quick); make bench measures it"
    for n in sizes.skipped_nodes:
        out["query"][str(n)] = None
        out["query"][f"{n}_why"] = why_quick
    for n in sizes.nodes:
        if str(n) not in out["query"]:
            out["query"][str(n)] = None
            out["query"][f"{n}_why"] = "failed in this run: see errors"
    for size in sizes.log_sizes:
        if str(size) not in out["log"]["p50_ms"]:
            out["log"]["p50_ms"][str(size)] = None
            out["log"]["witness_consistency_ms"][str(size)] = None
            out["log"][f"why_{size}"] = "failed in this run: see errors"
    points = [
        (int(n), entry["p50_ms"]["median"])
        for n, entry in out["query"].items()
        if isinstance(entry, dict) and n.isdigit()
    ]
    s = slope(points)
    out["fanout"] = {
        "slope_ms_per_node": None if s is None else round(s, 3),
        "from": "least-squares slope of query p50_ms over N",
        "nodes": [p[0] for p in points],
    }
    for size in sizes.skipped_log_sizes:
        out["log"]["p50_ms"][str(size)] = None
        out["log"]["witness_consistency_ms"][str(size)] = None
        out["log"][f"why_{size}"] = why_quick
    measured = [int(k) for k, v in out["log"]["p50_ms"].items() if v]
    if measured:
        low, high = min(measured), max(measured)
        out["log"]["growth_ratio"] = ratio(
            out["log"]["p50_ms"][str(high)]["median"], out["log"]["p50_ms"][str(low)]["median"]
        )
        out["log"]["growth_between"] = [low, high]
    small = out.pop("_coordinator_small", None)
    large = out.pop("_coordinator_large", None)
    out["coordinator"] = {
        "rss_mb": {
            "1000": None if small is None else round(small, 1),
            "100000": None if large is None else round(large, 1),
        },
        "registrations_per_node": [sizes.small_per_node, FULL.per_node],
        "difference": ratio(abs((large or 0) - (small or 0)), small) if small and large else None,
        "measured": "VmRSS of the coordinator process after its questions, 5 nodes",
    }
    if large is None:
        out["coordinator"]["why"] = why_quick
    out.pop("_small_sqlite_p50", None)
    out["goals"] = goals(out)


def _goal(
    what: str, value: float | None, goal: float, higher_is_better: bool = False
) -> dict[str, Any]:
    if value is None:
        return {"what": what, "goal": goal, "measured": None, "met": None, "factor": None}
    met = value >= goal if higher_is_better else value <= goal
    factor = (goal / value if higher_is_better else value / goal) if value and goal else None
    return {
        "what": what,
        "goal": goal,
        "measured": value,
        "met": met,
        "factor": None if factor is None else round(factor, 2),
    }


def goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    def q(n: int, key: str) -> float | None:
        entry = out["query"].get(str(n))
        if not isinstance(entry, dict):
            return None
        value = entry.get(key)
        return median_of(value) if isinstance(value, dict) else value

    imp = out["import"].get("sqlite") or {}
    batch = out["batch"]
    result = [
        _goal("query.p50_ms at N=10", q(10, "p50_ms"), 15),
        _goal("query.p99_ms at N=10", q(10, "p99_ms"), 40),
        _goal("query.p99_ms at N=50", q(50, "p99_ms"), 120),
    ]
    result += [
        _goal(f"query.p50_floor_ratio at N={n}", q(n, "p50_floor_ratio"), 2)
        for n in (2, 5, 10, 20, 50)
    ]
    result += [
        _goal("fanout.slope_ms_per_node", out["fanout"].get("slope_ms_per_node"), 1.0),
        _goal("log.growth_ratio", out["log"].get("growth_ratio"), 1.2),
        _goal("cli.query_wall_ms", median_of(out["cli"].get("query_wall_ms")), 300),
        _goal("cli.help_ms", median_of(out["cli"].get("help_ms")), 150),
        _goal("import.floor_ratio (SQLite)", imp.get("floor_ratio"), 0.7, True),
        _goal(
            "import.bytes_per_registration (SQLite)",
            median_of(imp.get("bytes_per_registration")),
            400,
        ),
        _goal("postgres.query_ratio", out["postgres"].get("query_ratio"), 1.3),
        _goal("postgres.import_ratio", out["postgres"].get("import_ratio"), 1.3),
        _goal("batch.vs_peer", batch.get("vs_peer"), 50, True),
        _goal("batch.vs_peer_reused", batch.get("vs_peer_reused"), 1, True),
        _goal("coordinator.rss_mb difference", out["coordinator"].get("difference"), 0.10),
        _goal(
            "query.qps at N=5",
            median_of(
                out["query"].get("5", {}).get("qps")
                if isinstance(out["query"].get("5"), dict)
                else None
            ),
            100,
            True,
        ),
    ]
    return result


def summary(out: dict[str, Any]) -> str:
    lines = [
        f"betrokken bench {out['at']} ({'QUICK' if out['quick'] else 'full'} run, "
        f"{out['seconds']:.0f} s), {out['machine']['nproc']} cores {out['machine']['cpu']}",
    ]
    c = out["crypto"]
    if c:
        lines.append(
            f"crypto: mult {c['mult_us']['median']} us, VOPRF {c['voprf_single_us']['median']} us "
            f"single / {c['voprf_batch_us_per_element']['median']} us per element batched, "
            f"HPKE {c['hpke_us']['median']} us"
        )
    for n, entry in out["query"].items():
        if isinstance(entry, dict):
            lines.append(
                f"query N={n}: p50 {entry['p50_ms']['median']} ms, "
                f"p95 {entry['p95_ms']['median']}, "
                f"p99 {entry['p99_ms']['median']}, floor {entry['floor_ms']['median']} ms "
                f"(x{entry['p50_floor_ratio']}), "
                f"{entry['qps']['median'] if entry['qps'] else None} q/s with 8 askers"
            )
    lines.append(f"fan-out slope: {out['fanout'].get('slope_ms_per_node')} ms/node")
    lines.append(
        "log p50: "
        + ", ".join(
            f"{k}: {v['median'] if v else None} ms" for k, v in out["log"]["p50_ms"].items()
        )
        + f"; growth {out['log'].get('growth_ratio')}"
    )
    lines.append(json.dumps({"cli": out["cli"]}))
    for kind in ("sqlite", "postgres"):
        entry = out["import"].get(kind)
        if entry:
            lines.append(
                f"import {kind}: {entry['per_s']['median']} rows/s (x{entry['floor_ratio']} of the "
                f"floor), {entry['bytes_per_registration']['median']} B/registration, "
                f"{entry['peak_rss_mb']['median']} MB peak"
            )
    lines.append(json.dumps({"batch": out["batch"]}, default=str)[:400])
    lines.append(json.dumps({"coordinator": out["coordinator"], "postgres": out["postgres"]}))
    lines.append("goals:")
    for goal in out["goals"]:
        mark = {True: "met", False: "MISSED", None: "not measured"}[goal["met"]]
        lines.append(
            f"  {mark:12} {goal['what']}: {goal['measured']} "
            f"(goal {goal['goal']}, factor {goal['factor']})"
        )
    return "\n".join(lines) + "\n"


SCENARIOS = ("crypto", "changes", "cli", "query", "log", "import", "small")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, within 3 minutes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    if args.quick and args.only == parser.get_default("only"):
        only.discard("changes")  # the before/after pairs: make bench measures them
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    started = time.perf_counter()
    at = dt.datetime.now(dt.UTC)
    out = skeleton(sizes)
    out["machine"] = machine()
    work = Path(tempfile.mkdtemp(prefix="betrokken-bench-"))
    out["errors"] = []

    def guarded(name: str, step: Callable[[], object]) -> None:
        """A scenario that fails is reported (its keys stay null), the others still run."""
        try:
            step()
        except Exception as exc:
            say(f"{name} FAILED: {type(exc).__name__}: {exc}")
            out["errors"].append(f"{name}: {type(exc).__name__}: {str(exc)[:500]}")

    def run_crypto() -> None:
        out["crypto"] = crypto(sizes)

    def run_changes() -> None:
        from bench.changes import all_changes

        out["changes"] = all_changes(work / "changes", sizes.quick)

    try:
        if "crypto" in only:
            say("crypto floor")
            guarded("crypto", run_crypto)
        if "changes" in only:
            say("each change before and after")
            guarded("changes", run_changes)
        if "cli" in only:
            guarded("cli", lambda: cli_help(sizes, out))
        if "query" in only:
            for n in sizes.nodes:
                guarded(f"query N={n}", lambda n=n: query_at(n, sizes, work, out))
        if "log" in only:
            for size in sizes.log_sizes:
                guarded(f"log {size}", lambda size=size: log_at(size, sizes, work, out))
        if "import" in only:
            guarded("import", lambda: imports(sizes, work, out))
        if "small" in only:
            guarded("small", lambda: coordinator_and_postgres(sizes, work, out))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out["machine"]["loadavg_at_end"] = os.getloadavg()
    out["at"] = at.isoformat(timespec="seconds")
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["incomplete_answers"] = INCOMPLETE[0]
    finish(out, sizes)
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=2, sort_keys=False) + "\n"
    stem = "latest"  # the quick run says so inside ("quick": true)
    (args.out / f"{stem}.json").write_text(text)
    dated = at.strftime("%Y-%m-%dT%H%MZ") + ("-quick" if sizes.quick else "")
    (args.out / f"{dated}.json").write_text(text)
    summary_text = summary(out)
    (args.out / f"{stem}.txt").write_text(summary_text)
    print(summary_text)
    return 0
