"""CPU time per process per question, and the floors it is compared with (docs/performance.md).

Wall time on a shared 2-core machine measures waiting as much as work; CPU time per process does
not depend on how loaded the machine is. A measured window is read from ``/proc/<pid>/stat``
(utime + stime, every thread of the process) before and after, for every process of the bench
network and for the asking process itself; the same processes are read over an idle window of
the same length just before, and that idle rate (health probes, the coordinator's look at its
nodes) is subtracted. What remains, divided by the questions asked, is each process's CPU per
question.

The *question floor* is the cryptography and storage a question cannot do without, in one thread
(bench/run.py, ``QuestionFloor``); the *protocol floor* adds what this protocol must do beyond it
— the signatures, the checkpoint and its cosignatures checked, the inclusion and consistency
proofs made and checked, the durable commits — counted per question by :func:`protocol_counts`
and priced by :func:`unit_costs`, each primitive measured here in CPU time. Total over question
floor says how far the whole is from the work; total over protocol floor how much of that is
overhead around the protocol rather than the protocol itself.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

# The process kinds of a question, as the JSON names them (``cpu.<N>.<kind>``).
KINDS = ("requester", "keyservice", "coordinator", "node")


def stat_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may hold spaces or parentheses itself, so
    the fields are counted from the last ``)``: utime and stime are fields 14 and 15."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads, finished ones included), in seconds."""
    return stat_ticks(Path(f"/proc/{pid}/stat").read_text()) / TICK


@dataclass(frozen=True)
class Reading:
    """The CPU seconds each named process had used at one moment (``at``: monotonic seconds)."""

    at: float
    cpu: Mapping[str, float]


def read(pids: Mapping[str, int]) -> Reading:
    return Reading(time.monotonic(), {name: cpu_seconds(pid) for name, pid in pids.items()})


def per_question(
    idle_start: Reading, idle_end: Reading, start: Reading, end: Reading, questions: int
) -> dict[str, float]:
    """CPU ms per question of each process: what it used between ``start`` and ``end`` less its
    idle rate (between ``idle_start`` and ``idle_end``) over the window's length, divided by the
    questions asked in the window. Clock ticks are 10 ms, so a small negative value can come out
    of a process that did nothing; it is kept (a clamp would bias the median upwards)."""
    if questions <= 0:
        raise ValueError("no questions in the window")
    idle_seconds = idle_end.at - idle_start.at
    window = end.at - start.at
    if idle_seconds <= 0 or window <= 0:
        raise ValueError("an empty window")
    out = {}
    for name in start.cpu:
        used = end.cpu[name] - start.cpu[name]
        idle_rate = (idle_end.cpu[name] - idle_start.cpu[name]) / idle_seconds
        out[name] = (used - idle_rate * window) * 1000 / questions
    return out


def kind_of(process: str) -> str:
    """``node-org-01`` -> ``node``; the other processes are named by their kind."""
    return "node" if process.startswith("node-") else process


def by_kind(per_process: Mapping[str, float]) -> dict[str, float]:
    """Per kind: the process's figure; ``node`` the mean over the nodes, ``nodes_total`` their
    sum, ``total`` every process of the question together."""
    nodes = [v for k, v in per_process.items() if kind_of(k) == "node"]
    out = {k: per_process[k] for k in KINDS if k != "node" and k in per_process}
    out["node"] = statistics.fmean(nodes) if nodes else 0.0
    out["node_max"] = max(nodes) if nodes else 0.0
    out["nodes_total"] = sum(nodes)
    out["total"] = sum(per_process.values())
    return out


# --- the load average through the run --------------------------------------------------------
@dataclass
class LoadSampler:
    """``os.getloadavg()`` every ``every`` seconds on a daemon thread (a read of /proc/loadavg:
    microseconds of the asking process's CPU, inside its idle rate)."""

    every: float = 5.0
    samples: list[tuple[float, float]] = field(default_factory=list)  # (wall time, load1)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="loadavg")
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), os.getloadavg()[0]))
            if self._stop.wait(self.every):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def between(self, start: float, end: float) -> list[float]:
        return [load for at, load in self.samples if start <= at <= end]


# --- the protocol floor ------------------------------------------------------------------------
def protocol_counts(nodes: int, quorum: int, witnesses: int | None = None) -> dict[str, int]:
    """What one question to ``nodes`` nodes must do beyond the question floor, as designed
    (docs/adr/0024: a question is recorded, the checkpoint covering it cosigned by a quorum of
    witnesses, each node answers only under it with ``quorum`` cosignatures besides its own).

    ``witnesses`` defaults to ``nodes`` (the nodes are the witnesses; the asker is not one). The
    fewest cosignatures that give every node ``quorum`` besides its own are ``quorum + 1``. Per
    question, at least:

    * sign: the question (requester), the checkpoint (coordinator);
    * cosign: ``quorum + 1`` witnesses;
    * verify (a note's Ed25519 signature): the question at the coordinator and at each node, the
      checkpoint at each node, at each cosigning witness and at the requester;
    * verify_cosignature: ``quorum`` at each node and at the requester, every cosignature the
      coordinator collects;
    * inclusion_proof / verify_inclusion: the question's record, for each node and the receipt;
    * consistency_proof: one (the nodes on a common witnessed size); verify_consistency: each
      node once (when it cosigns or when it answers);
    * durable_commit: the coordinator twice (the question before it is asked, P6; the outcome),
      each node once (its answered mark, P7), each cosigning witness once (the checkpoint stored
      before it is cosigned), the requester once (its trail); less the one append the question
      floor already holds.
    """
    w = nodes if witnesses is None else witnesses
    cosigns = min(quorum + 1, w) if w else 0
    return {
        "sign": 2,
        "cosign": cosigns,
        "verify": 1 + 2 * nodes + cosigns + 1,
        "verify_cosignature": (nodes + 1) * quorum + cosigns,
        "inclusion_proof": nodes + 1,
        "verify_inclusion": nodes + 1,
        "consistency_proof": 1 if nodes else 0,
        "verify_consistency": nodes,
        "durable_commit": 2 + nodes + cosigns + 1 - 1,
    }


def protocol_extra_ms(counts: Mapping[str, int], units_us: Mapping[str, float]) -> float:
    """CPU ms of the protocol's work beyond the floor: each primitive's count times its cost."""
    return sum(count * units_us[name] for name, count in counts.items()) / 1000


def thread_us(work: Callable[[], object], repeat: int) -> float:
    """The median CPU µs of this thread for one call of ``work`` (``repeat`` calls, in ten
    groups: the thread clock's resolution is fine, a single call is not worth trusting)."""
    groups = []
    per = max(1, repeat // 10)
    for _ in range(10):
        start = time.thread_time()
        for _ in range(per):
            work()
        groups.append((time.thread_time() - start) * 1e6 / per)
    return statistics.median(groups)


def unit_costs(repeat: int = 200, log_size: int = 20_000) -> dict[str, float]:
    """CPU µs of each primitive :func:`protocol_counts` names, measured in this thread with
    betrokken's own code: Ed25519 note signatures and cosignatures (C2SP), RFC 9162 proofs made
    from stored perfect-subtree hashes of a log of ``log_size`` records and verified, and one
    durable SQLite append (WAL, synchronous=FULL; the fsync's wait is not CPU)."""
    from betrokken.crypto import merkle
    from betrokken.crypto.cosignature import (
        Cosigner,
        cosign,
        note_body,
        signed_message,
        verify_cosignatures,
    )
    from betrokken.crypto.note import Checkpoint, NoteKey, open_checkpoint, sign_checkpoint

    hashes: dict[tuple[int, int], bytes] = {}
    frontier = merkle.Frontier()
    leaves = [merkle.leaf_hash(i.to_bytes(8, "big") * 40) for i in range(log_size)]
    for position, leaf in enumerate(leaves):
        hashes[(0, position)] = leaf
        for level, index, value in frontier.append(leaf):
            hashes[(level, index)] = value

    def subtree(level: int, index: int) -> bytes:
        return hashes[(level, index)]

    size, old, index = log_size, log_size - 7, log_size - 3
    root = merkle.root_from(size, subtree)
    old_root = merkle.root_from(old, subtree)
    inclusion = merkle.inclusion_proof_from(index, size, subtree)
    consistency = merkle.consistency_proof_from(old, size, subtree)
    assert merkle.verify_inclusion(leaves[index], index, size, inclusion, root)
    assert merkle.verify_consistency(old, size, old_root, root, consistency)

    key = NoteKey.generate("bench.example/coordinator")
    witness = NoteKey.generate("bench.example/witness")
    cosigner = Cosigner(witness.name, witness.public_key)
    checkpoint = Checkpoint("bench.example/coordinator", size, root)
    note = sign_checkpoint(checkpoint, key)
    stamp = int(time.time())
    cosigned = note + cosign(note_body(note), witness, stamp)
    verifier = key.verifier()
    assert open_checkpoint(note, verifier) == checkpoint
    assert verify_cosignatures(cosigned, {"w": cosigner})

    # The signatures as the primitive: Ed25519 over the bytes a note or cosignature signs, the
    # key parsed once. What betrokken's note and cosignature code adds (parsing, base64, key
    # ids) is overhead, measured next to them under "api_*" and not part of the floor.
    public = key.signer.public_key()
    witness_public = witness.signer.public_key()
    body = checkpoint.body()
    message = signed_message(body, stamp)
    signature = key.signer.sign(body)
    cosignature = witness.signer.sign(message)
    units = {
        "sign": thread_us(lambda: key.signer.sign(body), repeat),
        "cosign": thread_us(lambda: witness.signer.sign(message), repeat),
        "verify": thread_us(lambda: public.verify(signature, body), repeat),
        "verify_cosignature": thread_us(
            lambda: witness_public.verify(cosignature, message), repeat
        ),
        "inclusion_proof": thread_us(
            lambda: merkle.inclusion_proof_from(index, size, subtree), repeat
        ),
        "verify_inclusion": thread_us(
            lambda: merkle.verify_inclusion(leaves[index], index, size, inclusion, root), repeat
        ),
        "consistency_proof": thread_us(
            lambda: merkle.consistency_proof_from(old, size, subtree), repeat
        ),
        "verify_consistency": thread_us(
            lambda: merkle.verify_consistency(old, size, old_root, root, consistency), repeat
        ),
        "api_sign_checkpoint": thread_us(lambda: sign_checkpoint(checkpoint, key), repeat),
        "api_open_checkpoint": thread_us(lambda: open_checkpoint(note, verifier), repeat),
        "api_verify_cosignatures": thread_us(
            lambda: verify_cosignatures(cosigned, {"w": cosigner}), repeat
        ),
    }
    with tempfile.TemporaryDirectory(prefix="bench-commit-") as scratch:
        conn = sqlite3.connect(Path(scratch) / "commit.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, v BLOB)")
        payload = os.urandom(600)

        def commit() -> None:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO log (v) VALUES (?)", (payload,))
            conn.execute("COMMIT")

        units["durable_commit"] = thread_us(commit, max(20, repeat // 4))
        conn.close()
    return units


def added_per_node(totals: Mapping[int, list[float]]) -> dict[str, float | int] | None:
    """The CPU one more node adds to a question: the least-squares slope of the total CPU per
    question over N, fitted once per run index (run k at every N), as a figure of those slopes.
    None with fewer than two N."""
    from bench.stats import figure, slope

    if len(totals) < 2:
        return None
    runs = min(len(v) for v in totals.values())
    slopes = []
    for k in range(runs):
        fitted = slope([(n, values[k]) for n, values in sorted(totals.items())])
        if fitted is not None:
            slopes.append(fitted)
    return figure(slopes) if slopes else None
