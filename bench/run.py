"""The scenarios of ``make bench`` and the files they write (docs/performance.md).

Every figure is ``{"median", "min", "max", "runs"}`` over repeated runs; every ratio is taken
between medians measured in this same run. A scenario that cannot run here is ``null`` with a
``why`` next to it.
"""

from __future__ import annotations

import dataclasses
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
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cpu
from bench.cpu import LoadSampler, unit_costs
from bench.net import ASKER, PURPOSE, BenchNet, build, disk_bytes, people, rss_mb
from bench.stats import Figure, figure, median_of, percentile, ratio, slope, timed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PSI_PYTHON = ROOT / ".venv-psi" / "bin" / "python"
LOAD = LoadSampler()  # the load average, sampled through the whole run


def _own_cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the networks' processes,
    the askers, the command lines): what the bench made the machine do so far."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Timings:
    """Wall and CPU seconds of each scenario and of the phases inside one (``timings_s`` in the
    JSON), so a run can be planned: which scenario takes how long, and how much of it is CPU."""

    def __init__(self) -> None:
        self.out: dict[str, dict[str, Any]] = {}

    def scenario(self, name: str) -> Any:
        return self._span(self.out, name)

    def phase(self, scenario: str, name: str) -> Any:
        phases = self.out.setdefault(scenario, {}).setdefault("phases", {})
        return self._span(phases, name)

    @staticmethod
    def _span(into: dict[str, Any], name: str) -> Any:
        import contextlib

        @contextlib.contextmanager
        def span() -> Any:
            wall, used = time.perf_counter(), _own_cpu()
            try:
                yield
            finally:
                entry = into.setdefault(name, {})
                entry["wall"] = round(entry.get("wall", 0.0) + time.perf_counter() - wall, 1)
                entry["cpu"] = round(entry.get("cpu", 0.0) + _own_cpu() - used, 1)

        return span()


TIMINGS = Timings()


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
    qps_nodes: tuple[int, ...]  # the N at which throughput is measured (the goal's is N=5)
    log_sizes: tuple[int, ...]
    skipped_log_sizes: tuple[int, ...]
    log_questions: int
    import_rows: int
    import_runs: int
    batch_runs: int
    psi_runs: int
    cli_runs: int
    crypto_repeat: int
    rss_registrations: tuple[int, int]  # the coordinator's memory: two registration counts ...
    rss_log_sizes: tuple[int, int]  # ... times two log sizes, after the same workload
    rss_questions: int
    psi_per_node: int  # the peer baseline's set per node: always the full run's registrations
    psi_nodes: int  # against how many nodes the peer baseline runs (scaled to the batch's N)


FULL = Sizes(
    quick=False,
    per_node=100_000,
    small_per_node=1_000,
    nodes=(2, 5, 10, 20, 50),
    skipped_nodes=(),
    rounds=5,
    questions=40,
    qps_seconds=4.0,
    qps_rounds=3,
    qps_nodes=(2, 5, 10, 20, 50),
    log_sizes=(1_000, 100_000, 1_000_000),
    skipped_log_sizes=(),
    log_questions=20,
    import_rows=20_000,
    import_runs=3,
    batch_runs=5,
    psi_runs=3,
    cli_runs=7,
    crypto_repeat=200,
    rss_registrations=(1_000, 100_000),
    rss_log_sizes=(1_000, 100_000),
    rss_questions=40,
    psi_per_node=100_000,
    psi_nodes=5,
)
QUICK = Sizes(
    quick=True,
    per_node=1_000,  # the same as the small network: its N=5 network serves both
    small_per_node=1_000,
    nodes=(2, 5),
    skipped_nodes=(10, 20, 50),
    rounds=3,
    questions=20,
    qps_seconds=2.0,
    qps_rounds=1,
    qps_nodes=(5,),
    log_sizes=(1_000, 100_000),
    skipped_log_sizes=(1_000_000,),
    log_questions=8,
    import_rows=1_000,
    import_runs=1,
    batch_runs=2,
    psi_runs=1,
    cli_runs=3,
    crypto_repeat=30,
    rss_registrations=(1_000, 10_000),
    rss_log_sizes=(1_000, 20_000),
    rss_questions=15,
    psi_per_node=100_000,
    psi_nodes=1,
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
            [Person(persons[turn % len(persons)], f"CASE-QPS-{os.getpid()}-{turn}")],
            purpose=PURPOSE,
            user="bench",
            role="regisseur",
        )
        return True
    except Exception as exc:
        _ASKER.setdefault("error", f"{type(exc).__name__}: {str(exc)[:300]}")
        return False


def _asker_error(_: int) -> str | None:
    error: str | None = _ASKER.get("error")
    return error


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


def qps(bn: BenchNet, sizes: Sizes, askers: int = 8) -> tuple[Figure, int, Figure]:
    """Questions answered per second by ``askers`` processes asking at once, and the load
    average sampled while they asked."""
    context = multiprocessing.get_context("spawn")
    digits = [b.digits for b in bn.persons]
    values: list[float] = []
    loads: list[float] = []
    failures = 0
    with context.Pool(askers, _asker_init, (str(bn.asker_config), digits)) as pool:
        pool.map(_asker_once, range(askers * 2), chunksize=1)  # every asker made and warm
        for _ in range(sizes.qps_rounds):
            start_at = time.time() + 1.0
            results = pool.starmap(_asker, [(start_at, sizes.qps_seconds)] * askers, chunksize=1)
            loads += LOAD.between(start_at, time.time()) or [os.getloadavg()[0]]
            values.append(sum(d for d, _ in results) / sizes.qps_seconds)
            failures += sum(f for _, f in results)
        if failures:
            errors = [e for e in pool.map(_asker_error, range(askers), chunksize=1) if e]
            say(f"qps: {failures} questions failed, e.g. {errors[:1]}")
    return figure(values, 1), failures, figure(loads, 2)


# --- scenarios on running networks ---------------------------------------------------------------
IDLE_MAX_SECONDS = 30.0  # the idle window before each measured one is as long, up to this
SETTLE_SECONDS = 1.0  # after the last question: the nodes' trail writer records its answers


def warm_settle_seconds(nodes: int) -> float:
    """The wait between the warm-up and the first idle window: longer with more node processes
    to settle on the same two cores."""
    return max(5.0, nodes / 5)


def process_ids(bn: BenchNet) -> dict[str, int]:
    """Every process a question runs in: the asking process (this one) and the network's."""
    assert bn.cluster is not None
    return {"requester": os.getpid(), **{n: p.pid for n, p in bn.cluster.processes.items()}}


def protocol_units(out: dict[str, Any], sizes: Sizes) -> dict[str, float]:
    """Each protocol primitive's CPU µs (bench/cpu.py), measured once per run, three times."""
    if "units_us" not in out["cpu"]:
        runs = [unit_costs(repeat=max(50, sizes.crypto_repeat)) for _ in range(3)]
        out["cpu"]["units_us"] = {k: figure([r[k] for r in runs], 2) for k in runs[0]}
    return {k: float(v["median"]) for k, v in out["cpu"]["units_us"].items()}


@dataclass
class Windows:
    """What the measured windows of one network gave: CPU ms per question per kind (one value a
    run), each run's wall percentiles and the load average sampled in the windows."""

    cpu_runs: dict[str, list[float]]
    p50: list[float]
    p95: list[float]
    p99: list[float]
    loads: list[float]
    idle_seconds: list[float]
    window_seconds: list[float]


def measure_windows(
    pids: dict[str, int],
    ask: Callable[[int], list[float]],
    rounds: int,
    first_window: float,
    *,
    reader: Callable[[dict[str, int]], cpu.Reading] = cpu.read,
    sleep: Callable[[float], None] = time.sleep,
    loads: Callable[[float, float], list[float]] = LOAD.between,
) -> Windows:
    """``rounds`` windows of questions (``ask(r)`` asks them and gives each one's wall seconds),
    each right after an idle window as long as the window before it (the first as long as
    ``first_window``), at least 1 s and at most IDLE_MAX_SECONDS: every process read at the
    idle window's start and end and at the measured window's start and end, after the nodes'
    trail writer has recorded the last answer (SETTLE_SECONDS)."""
    out = Windows({}, [], [], [], [], [], [])
    window = first_window
    for r in range(rounds):
        idle_start = reader(pids)
        sleep(min(max(window, 1.0), IDLE_MAX_SECONDS))
        idle_end = reader(pids)
        began = time.time()
        start = reader(pids)
        samples = ms(ask(r))
        sleep(SETTLE_SECONDS)
        end = reader(pids)
        window = end.at - start.at
        out.idle_seconds.append(round(idle_end.at - idle_start.at, 2))
        out.window_seconds.append(round(window, 2))
        out.loads.extend(loads(began, time.time()) or [os.getloadavg()[0]])
        kinds = cpu.by_kind(cpu.per_question(idle_start, idle_end, start, end, len(samples)))
        for kind, value in kinds.items():
            out.cpu_runs.setdefault(kind, []).append(value)
        out.p50.append(percentile(samples, 50))
        out.p95.append(percentile(samples, 95))
        out.p99.append(percentile(samples, 99))
    return out


def floor_runs(
    floor: QuestionFloor, rounds: int, questions: int
) -> tuple[list[float], list[float]]:
    """The question floor, ``rounds`` runs of ``questions``: each run's median wall ms and its
    mean CPU ms (this thread's) per question — a mean, as the processes' CPU is."""
    floors, floor_cpu = [], []
    for r in range(rounds):
        runs, cpu_ms = [], []
        for turn in range(questions):
            start_cpu = time.thread_time()
            start_wall = time.perf_counter()
            floor.once(r * 1000 + turn)
            runs.append((time.perf_counter() - start_wall) * 1000)
            cpu_ms.append((time.thread_time() - start_cpu) * 1000)
        floors.append(statistics.median(runs))
        floor_cpu.append(statistics.fmean(cpu_ms))
    return floors, floor_cpu


def node_protocol_ms(n: int, quorum: int, units: dict[str, float]) -> float:
    """One node's share of the protocol floor beyond the question floor, in CPU ms: checking the
    question's and the checkpoint's signatures and a quorum of cosignatures, one inclusion proof
    and one consistency proof checked, its durable commit (P7), and — as a witness, its share of
    the quorum + 1 cosignings — a cosignature made and the checkpoint stored before it."""
    counts = cpu.protocol_counts(n, quorum)
    cosign_share = counts["cosign"] / n if n else 0.0
    return (
        2 * units["verify"]
        + quorum * units["verify_cosignature"]
        + units["verify_inclusion"]
        + units["verify_consistency"]
        + units["durable_commit"]
        + cosign_share * (units["cosign"] + units["verify"] + units["durable_commit"])
    ) / 1000


def coordinator_protocol_ms(n: int, quorum: int, units: dict[str, float]) -> float:
    """The coordinator's share of the protocol floor, in CPU ms: the question's signature
    checked, the checkpoint signed, each of the quorum + 1 cosignatures it collects checked,
    N + 1 inclusion proofs and one consistency proof made, its two durable commits (P6)."""
    counts = cpu.protocol_counts(n, quorum)
    return (
        units["verify"]
        + units["sign"]
        + counts["cosign"] * units["verify_cosignature"]
        + counts["inclusion_proof"] * units["inclusion_proof"]
        + counts["consistency_proof"] * units["consistency_proof"]
        + 2 * units["durable_commit"]
    ) / 1000


def query_at(n: int, sizes: Sizes, work: Path, out: dict[str, Any]) -> None:
    say(f"query: building a network of {n} nodes with {sizes.per_node} registrations each")
    scenario = f"query N={n}"
    with TIMINGS.phase(scenario, "build"):
        bn = build(work, n, sizes.per_node)
    try:
        with TIMINGS.phase(scenario, "start and warm"):
            bn.start()
            requester = _requester(bn)
            pids = process_ids(bn)
            warm = ask_times(requester, bn, 5)  # warm: channels, witness state, caches
            # the nodes record the warm-up's answers and settle after their start a few seconds
            # later (measured at N=10: 2-4 times the idle rate for ~4 s): not in the first idle
            # window, whose rate is taken off every process's CPU in the first measured window
            time.sleep(warm_settle_seconds(n))
        with TIMINGS.phase(scenario, "windows"):
            w = measure_windows(
                pids,
                lambda r: ask_times(requester, bn, sizes.questions, offset=r * 7),
                sizes.rounds,
                statistics.median(warm) * sizes.questions + SETTLE_SECONDS,
            )
        with TIMINGS.phase(scenario, "floor"):
            floor = QuestionFloor(bn, work / f"floor-{n}")
            floors, floor_cpu = floor_runs(floor, sizes.rounds, sizes.questions)
            floor.close()
            units = protocol_units(out, sizes)
        quorum = bn.network.witness_quorum()
        counts = cpu.protocol_counts(n, quorum, len(bn.network.witness_ids()))
        extra = cpu.protocol_extra_ms(counts, units)
        entry_cpu: dict[str, Any] = {kind: figure(values) for kind, values in w.cpu_runs.items()}
        entry_cpu["floor"] = figure(floor_cpu)
        entry_cpu["protocol_floor"] = figure([f + extra for f in floor_cpu])
        entry_cpu["node_protocol_ms"] = round(node_protocol_ms(n, quorum, units), 3)
        entry_cpu["coordinator_protocol_ms"] = round(coordinator_protocol_ms(n, quorum, units), 3)
        entry_cpu["protocol_counts"] = counts
        entry_cpu["witness_quorum"] = quorum
        entry_cpu["load1"] = figure(w.loads, 2)
        entry_cpu["questions_per_run"] = sizes.questions
        entry_cpu["idle_seconds"] = w.idle_seconds
        entry_cpu["window_seconds"] = w.window_seconds
        entry_cpu["total_runs_ms"] = [round(v, 3) for v in w.cpu_runs["total"]]
        entry_cpu["total_floor_ratio"] = ratio(
            median_of(entry_cpu["total"]), median_of(entry_cpu["floor"])
        )
        entry_cpu["total_protocol_floor_ratio"] = ratio(
            median_of(entry_cpu["total"]), median_of(entry_cpu["protocol_floor"])
        )
        out["cpu"][str(n)] = entry_cpu
        say(
            f"query N={n}: p50 {statistics.median(w.p50):.1f} ms, "
            f"floor {statistics.median(floors):.1f} ms; CPU per question "
            + ", ".join(
                f"{k} {median_of(entry_cpu[k]):.2f}"
                for k in ("requester", "keyservice", "coordinator", "node", "total")
            )
            + f" ms; floor {median_of(entry_cpu['floor']):.2f}, protocol floor "
            f"{median_of(entry_cpu['protocol_floor']):.2f} ms "
            f"(load {statistics.median(w.loads):.1f})"
        )
        entry: dict[str, Any] = {
            "p50_ms": figure(w.p50),
            "p95_ms": figure(w.p95),
            "p99_ms": figure(w.p99),
            "floor_ms": figure(floors),
            "registrations_per_node": sizes.per_node,
            "questions_per_run": sizes.questions,
            "load1": figure(w.loads, 2),
        }
        entry["p50_floor_ratio"] = ratio(median_of(entry["p50_ms"]), median_of(entry["floor_ms"]))
        if n not in sizes.qps_nodes:  # the quick run measures it where the goal is, N=5
            entry["qps"], entry["qps_why"] = None, f"measured at N={sizes.qps_nodes} in this run"
        else:
            with TIMINGS.phase(scenario, "qps"):
                entry["qps"], entry["qps_failures"], entry["qps_load1"] = qps(bn, sizes)
            say(f"query N={n}: {entry['qps']['median']} questions/s with 8 askers")
        out["query"][str(n)] = entry
        if n == 5:
            if sizes.per_node == sizes.small_per_node:  # the small network is this one
                out["_small_sqlite_p50"] = entry["p50_ms"]
            with TIMINGS.phase(scenario, "batch and peer"):
                batch_at(bn, requester, sizes, out)
            with TIMINGS.phase(scenario, "cli query"):
                cli_query(bn, sizes, out)
        requester.close()
    finally:
        with TIMINGS.phase(scenario, "stop"):
            bn.remove()


def batch_at(bn: BenchNet, requester: Any, sizes: Sizes, out: dict[str, Any]) -> None:
    persons = 100
    times = ask_times(requester, bn, sizes.batch_runs, batch=persons)
    per_s = figure([persons / t for t in times], 1)
    entry: dict[str, Any] = {
        "persons": persons,
        "nodes": len(bn.nodes),
        "registrations_per_node": bn.per_node,
        "per_s": per_s,
    }
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
        entry["peer_registrations_per_node"] = sizes.psi_per_node
        entry["peer_nodes_measured"] = peer["nodes_measured"]
    say(f"batch: {entry['per_s']['median']} persons/s; peer {entry.get('peer_per_s')}")
    out["batch"] = entry


def psi_peer(bn: BenchNet, sizes: Sizes, persons: int) -> dict[str, Any] | str:
    if not PSI_PYTHON.exists():
        return (
            "openmined-psi is not installed: `make bench` makes .venv-psi with it (it needs "
            "protobuf < 7, betrokken protobuf 7, so it cannot share betrokken's environment)"
        )
    measured = min(len(bn.nodes), sizes.psi_nodes)
    params = {
        "client": [b.digits for b in bn.persons[:persons]],
        "nodes": measured,
        "per_node": sizes.psi_per_node,
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
    # Pairwise PSI is one independent exchange per node, each the same size: the time against
    # all nodes is that against one times the nodes (the quick run measures one).
    scale = len(bn.nodes) / measured
    result["with_setup_s"] = [t * scale for t in result["with_setup_s"]]
    result["reused_s"] = [t * scale for t in result["reused_s"]]
    result["nodes_measured"] = measured
    return result


def _betrokken() -> str:
    return str(Path(sys.executable).parent / "betrokken")


def run_cpu(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall ms and CPU ms (user + system of the child, from wait4) of one command. Its output
    goes to files, so the child is reaped here, by wait4, with its resource usage."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        wall = (time.perf_counter() - start) * 1000
        process.returncode = code = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        done = subprocess.CompletedProcess(
            command,
            code,
            stdout.read().decode(errors="replace"),
            stderr.read().decode("utf-8", "replace"),
        )
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, done


def compiled() -> None:
    """betrokken's bytecode written before its commands are measured, as pip writes it when it
    installs the package. An editable install compiles a module the first time it is imported
    and keeps the bytecode, unless PYTHONDONTWRITEBYTECODE is set (as in some development and
    CI environments): then every command would compile its ~70 modules again, ~60 ms of CPU that
    an installed `betrokken` never spends (docs/adr/0045). Existing bytecode is read either way."""
    import compileall

    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in sorted(set(mapping["package-dir"].values())):
        compileall.compile_dir(ROOT / folder, quiet=1)


def cli_query(bn: BenchNet, sizes: Sizes, out: dict[str, Any]) -> None:
    compiled()
    walls, cpus = [], []
    for turn in range(sizes.cli_runs):
        bsn = bn.persons[turn % len(bn.persons)].digits
        wall, used, done = run_cpu(
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
            ]
        )
        if done.returncode != 0:
            raise RuntimeError(f"betrokken query failed: {done.stderr[-500:]}")
        walls.append(wall)
        cpus.append(used)
    out["cli"]["query_wall_ms"] = figure(walls)
    out["cli"]["query_cpu_ms"] = figure(cpus)
    out["cli"]["query_nodes"] = len(bn.nodes)


def cli_help(sizes: Sizes, out: dict[str, Any]) -> None:
    compiled()
    walls, cpus = [], []
    for _ in range(sizes.cli_runs + 3):
        wall, used, done = run_cpu([_betrokken(), "--help"])
        if done.returncode != 0:
            raise RuntimeError(f"betrokken --help failed: {done.stderr[-500:]}")
        walls.append(wall)
        cpus.append(used)
    bare, bare_cpu = [], []
    for _ in range(sizes.cli_runs):
        wall, used, _done = run_cpu([sys.executable, "-c", "pass"])
        bare.append(wall)
        bare_cpu.append(used)
    out["cli"]["help_ms"] = figure(walls)
    out["cli"]["help_cpu_ms"] = figure(cpus)
    out["cli"]["bare_python_ms"] = figure(bare)
    out["cli"]["bare_python_cpu_ms"] = figure(bare_cpu)
    out["cli"]["help_vs_bare_python"] = ratio(
        median_of(out["cli"]["help_cpu_ms"]), statistics.median(bare_cpu)
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
    """Questions with nodes on PostgreSQL against the same on SQLite."""
    p50: dict[str, Figure] = {}
    if out.get("_small_sqlite_p50"):  # measured on the query scenario's network of this size
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
            requester.close()
        finally:
            bn.remove()
    out["postgres"]["query_p50_ms"] = p50
    out["postgres"]["query_ratio"] = ratio(median_of(p50["postgres"]), median_of(p50["sqlite"]))


def _fill_log(bn: BenchNet, records: int) -> None:
    """The coordinator's log already holding ``records`` records (bench/bulklog.py)."""
    from bench.bulklog import add_records
    from betrokken.audit.log import AuditLog, LogBase
    from betrokken.config.load import load_coordinator
    from betrokken.db import make_engine

    url = load_coordinator(bn.net.coordinator_config).component.database
    engine = make_engine(url, LogBase.metadata, component="coordinator")
    AuditLog(engine, None, "bench")  # the head row
    add_records(engine, 0, records)
    AuditLog(engine, None, "bench")  # stores the subtree hashes
    engine.dispose()


def coordinator_rss(sizes: Sizes, work: Path, out: dict[str, Any]) -> None:
    """The coordinator's memory after the same workload, against two registration counts per
    node and two log sizes: it holds no registrations, and its log is on disk."""
    rss: dict[str, float] = {}
    # every pair in the full run; the quick run the two corners (both small, both large)
    pairs = (
        list(zip(sizes.rss_registrations, sizes.rss_log_sizes, strict=True))
        if sizes.quick
        else [(r, g) for r in sizes.rss_registrations for g in sizes.rss_log_sizes]
    )
    failed: dict[str, str] = {}
    for per_node, records in pairs:
        name = f"registrations={per_node},log={records}"
        say(f"coordinator RSS: 5 nodes of {per_node} registrations, a log of {records}")
        bn = build(work, 5, per_node, name=f"rss-{per_node}-{records}")
        try:  # one pair that fails is reported; the others still count
            _fill_log(bn, records)
            bn.start()
            requester = _requester(bn)
            ask_times(requester, bn, 5)
            ask_times(requester, bn, sizes.rss_questions)
            ask_times(requester, bn, 2, batch=20)
            requester.close()
            rss[name] = round(rss_mb(bn.pid("coordinator")), 1)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            say(f"coordinator RSS {name} FAILED: {failed[name]}")
        finally:
            bn.remove()
    if len(rss) < 2:
        raise RuntimeError(f"the coordinator's memory was read for fewer than two pairs: {failed}")
    low, high = min(rss.values()), max(rss.values())
    out["coordinator"] = {
        "rss_mb": rss,
        "difference": ratio(high - low, low),
        "measured": "VmRSS of the coordinator process after the same workload (5 warm-up "
        f"questions, {sizes.rss_questions} one-person questions, two of 20 persons), 5 nodes",
    }
    if failed:
        out["coordinator"]["failed"] = failed
    say(f"coordinator RSS: {rss}")


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
                # each import its own database and its own signed state file: a state written by
                # the previous import would make the next, empty database look rolled back
                text = config.read_text().replace('"sqlite:///node.db"', f'"{url}"')
                state = f'state_file = "import-{kind}-{run}.state"\n'
                copy.write_text(text.replace("\n[tls]", f"\n{state}\n[tls]", 1))
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
        "cpu": {},
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
    why_quick = (
        "not measured in the quick run (make bench-quick); make bench measures it"
        if sizes.quick
        else "not measured in this reduced run (--nodes); make bench measures it"
    )
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
        "from": "least-squares slope of query p50_ms over N: wall time, each N at its own load; "
        "kept for comparison with earlier runs. The fan-out's cost is cpu_ms_per_node",
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
    if not out["coordinator"]:
        out["coordinator"] = {"rss_mb": None, "difference": None, "why": "not measured in this run"}
    added = cpu.added_per_node(
        {int(n): e["total_runs_ms"] for n, e in out["cpu"].items() if n.isdigit()}
    )
    out["cpu"]["per_added_node_ms"] = added
    out["cpu"]["per_added_node_from"] = (
        "least-squares slope of the total CPU per question over N, one slope per run index "
        "(run k of every N); median, min and max of those slopes"
    )
    out["fanout"]["cpu_ms_per_node"] = added
    out.pop("_small_sqlite_p50", None)
    out["goals"] = goals(out)


def _goal(
    what: str,
    value: float | None,
    goal: float | None,
    higher_is_better: bool = False,
    *,
    kind: str = "other",
    **extra: Any,
) -> dict[str, Any]:
    """One row of the goals table: met or missed, and by which factor (measured over goal;
    goal over measured for an "at least" goal), so > 1 is a miss by that factor. ``kind``
    groups the table (bench/report.py, ``KINDS``)."""
    row: dict[str, Any] = {"what": what, "kind": kind, "goal": goal, "measured": value}
    if value is None or goal is None:
        row.update(met=None, factor=None)
    else:
        met = value >= goal if higher_is_better else value <= goal
        factor = (goal / value if higher_is_better else value / goal) if value and goal else None
        row.update(met=met, factor=None if factor is None else round(factor, 2))
    row.update({k: v for k, v in extra.items() if v is not None})
    return row


CORES = 2  # the goals' machine: what a question's CPU can be spread over


def cpu_goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals on CPU per question (docs/performance.md, "Goals"): each from medians of this
    run; a goal whose figures were not measured is "not measured". The wall goals are stated
    against the CPU per question measured in the same run, on the same network."""

    def c(n: int, key: str) -> float | None:
        entry = out["cpu"].get(str(n))
        return median_of(entry.get(key)) if isinstance(entry, dict) else None

    def q(n: int, key: str) -> float | None:
        entry = out["query"].get(str(n))
        value = entry.get(key) if isinstance(entry, dict) else None
        return median_of(value) if isinstance(value, dict) else value

    def raw(n: int, key: str) -> Any:
        entry = out["cpu"].get(str(n))
        return entry.get(key) if isinstance(entry, dict) else None

    result = []
    for n in (5, 10):
        result.append(
            _goal(
                f"cpu total / question floor at N={n}",
                ratio(c(n, "total"), c(n, "floor")),
                2.0,
                kind="cpu",
                note=f"total {c(n, 'total')} ms, question floor {c(n, 'floor')} ms",
            )
        )
        result.append(
            _goal(
                f"cpu total / protocol floor at N={n}",
                ratio(c(n, "total"), c(n, "protocol_floor")),
                1.5,
                kind="cpu",
                note=f"total {c(n, 'total')} ms, protocol floor {c(n, 'protocol_floor')} ms",
            )
        )
    measured_n = sorted(int(n) for n, e in out["cpu"].items() if n.isdigit() and e)
    for n in sorted({5, 10, *measured_n}):
        share = raw(n, "node_protocol_ms")
        result.append(
            _goal(
                f"cpu.{n}.node ms (each node)",
                c(n, "node"),
                1.5,
                kind="cpu",
                note=None if share is None else f"the node's protocol share alone {share} ms",
            )
        )
    share = raw(10, "coordinator_protocol_ms")
    result.append(
        _goal(
            "cpu.10.coordinator ms",
            c(10, "coordinator"),
            3.0,
            kind="cpu",
            note=None if share is None else f"its protocol share alone {share} ms",
        )
    )
    result.append(
        _goal(
            "cpu.per_added_node_ms",
            median_of(out["cpu"].get("per_added_node_ms")),
            3.0,
            kind="cpu",
            note=f"fitted over N={measured_n}",
        )
    )
    # Wall time on an idle machine against the CPU the question needs on 2 cores, and
    # throughput against what 2 cores can give at that CPU per question.
    total10, p50 = c(10, "total"), q(10, "p50_ms")
    wall_goal = round(1.3 * total10 / CORES + 5, 2) if total10 and total10 > 0 else None
    result.append(
        _goal(
            "query.p50_ms at N=10 against 1.3 x (cpu total / 2 cores) + 5 ms",
            p50 if wall_goal else None,
            wall_goal,
            kind="wall against cpu",
            load1=c(10, "load1"),
            note=None if total10 is None else f"cpu.10.total {total10} ms, the same windows",
        )
    )
    total5, qps5 = c(5, "total"), q(5, "qps")
    qps_goal = round(0.8 * CORES * 1000 / total5, 1) if total5 and total5 > 0 else None
    result.append(
        _goal(
            "query.qps at N=5, 8 askers, against 0.8 x (2 cores / cpu total)",
            qps5 if qps_goal else None,
            qps_goal,
            True,
            kind="wall against cpu",
            load1=q(5, "qps_load1"),
            note=None if total5 is None else f"cpu.5.total {total5} ms, the same network",
        )
    )
    result.append(
        _goal("cli.query_cpu_ms", median_of(out["cli"].get("query_cpu_ms")), 300, kind="cli")
    )
    result.append(
        _goal("cli.help_cpu_ms", median_of(out["cli"].get("help_cpu_ms")), 150, kind="cli")
    )
    return result


def goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    def q(n: int, key: str) -> float | None:
        entry = out["query"].get(str(n))
        if not isinstance(entry, dict):
            return None
        value = entry.get(key)
        return median_of(value) if isinstance(value, dict) else value

    imp = out["import"].get("sqlite") or {}
    batch = out["batch"]
    result = cpu_goals(out)
    wall = [
        _goal("query.p50_ms at N=10", q(10, "p50_ms"), 15),
        _goal("query.p99_ms at N=10", q(10, "p99_ms"), 40),
        _goal("query.p99_ms at N=50", q(50, "p99_ms"), 120),
        *(
            _goal(f"query.p50_floor_ratio at N={n}", q(n, "p50_floor_ratio"), 2)
            for n in (2, 5, 10, 20, 50)
        ),
        _goal("fanout.slope_ms_per_node (wall)", out["fanout"].get("slope_ms_per_node"), 1.0),
        _goal("cli.query_wall_ms", median_of(out["cli"].get("query_wall_ms")), 300),
        _goal("cli.help_ms", median_of(out["cli"].get("help_ms")), 150),
        _goal("query.qps at N=5", q(5, "qps"), 100, True),
    ]
    for row in wall:
        row["kind"] = "wall"
    result += wall
    result += [
        _goal("log.growth_ratio", out["log"].get("growth_ratio"), 1.2),
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
    for n, entry in out["cpu"].items():
        if n.isdigit() and isinstance(entry, dict):
            lines.append(
                f"cpu N={n} (ms per question): "
                + ", ".join(
                    f"{k} {entry[k]['median']}"
                    for k in (*cpu.KINDS, "total", "floor", "protocol_floor")
                )
                + f"; total/floor x{entry['total_floor_ratio']}, "
                f"total/protocol floor x{entry['total_protocol_floor_ratio']}, "
                f"load {entry['load1']['median']}"
            )
    lines.append(f"cpu per added node: {out['cpu'].get('per_added_node_ms')} ms")
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


SCENARIOS = ("crypto", "changes", "cli", "query", "log", "import", "small", "rss")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, within 3 minutes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--nodes", help="comma-separated N to measure (default: the size's)")
    parser.add_argument("--rounds", type=int, help="runs of each figure (default: the size's)")
    parser.add_argument(
        "--qps", help="comma-separated N at which to measure throughput (default: the size's)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.nodes:  # a reduced run: the other N are reported as not measured
        nodes = tuple(int(n) for n in args.nodes.split(","))
        skipped = tuple(n for n in (*sizes.nodes, *sizes.skipped_nodes) if n not in nodes)
        sizes = dataclasses.replace(sizes, nodes=nodes, skipped_nodes=skipped)
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    if args.qps:
        sizes = dataclasses.replace(sizes, qps_nodes=tuple(int(n) for n in args.qps.split(",")))
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
    LOAD.start()

    def guarded(name: str, step: Callable[[], object]) -> None:
        """A scenario that fails is reported (its keys stay null), the others still run."""
        try:
            with TIMINGS.scenario(name):
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
        if "rss" in only:
            guarded("rss", lambda: coordinator_rss(sizes, work, out))
    finally:
        LOAD.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out["machine"]["loadavg_at_end"] = os.getloadavg()
    loads = [load for _, load in LOAD.samples]
    out["machine"]["loadavg_through_run"] = figure(loads, 2) if loads else None
    out["machine"]["loadavg_samples"] = f"every {LOAD.every:g} s, {len(loads)} samples"
    out["at"] = at.isoformat(timespec="seconds")
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["incomplete_answers"] = INCOMPLETE[0]
    out["timings_s"] = TIMINGS.out
    out["timings_note"] = (
        "wall and CPU seconds of each scenario (CPU: this process and its ended children, the "
        "networks' processes among them) and wall seconds of the phases of a query scenario "
        "(their CPU: this process only), for planning a run"
    )
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
