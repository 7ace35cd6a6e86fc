"""Measure proof times against the log's size (not a test; figures for ADR 0010).

    .venv/bin/python -m tests.audit.measure_proofs [--sizes 1000,100000,1000000]

For each size it builds a SQLite log of realistic records in bulk (the backfill stores the
subtree hashes), then reports the median (p50), min and max of

* ``inclusion``: ``AuditLog.inclusion_proof`` of a random record (as the coordinator's receipt
  for a question asked against an older checkpoint would) and ``receipt``: of the last record;
* ``consistency``: ``AuditLog.consistency_proof`` from a random older size to the head;
* ``*_before``: the same proofs the way the log made them before ADR 0010 (all leaf hashes read,
  then ``merkle.inclusion_proof`` / ``consistency_proof``), with fewer repetitions at 10^6;
* ``append``: one signed append of one record; and the bytes the subtree table takes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from bench.bulklog import add_records, realistic_entry
from betrokken.audit.log import AuditLog, LogBase
from betrokken.crypto import merkle
from betrokken.crypto.note import NoteKey
from betrokken.db import make_engine


def _timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(statistics.median(times), 3),
        "min_ms": round(min(times), 3),
        "max_ms": round(max(times), 3),
        "runs": repeat,
    }


def measure(size: int, folder: Path, rng: random.Random) -> dict[str, object]:
    path = folder / f"log-{size}.db"
    engine = make_engine(f"sqlite:///{path}", LogBase.metadata)
    AuditLog(engine, None, "measure")
    add_records(engine, 0, size, content=True)
    started = time.perf_counter()
    key = NoteKey.generate("measure")
    log = AuditLog(engine, key, key.name)
    backfill_s = time.perf_counter() - started
    n = log.size()
    repeat = 300
    before_repeat = 200 if n <= 10_000 else 15 if n <= 200_000 else 5
    result: dict[str, object] = {"size": n, "backfill_s": round(backfill_s, 2)}
    result["inclusion"] = _timed(lambda: log.inclusion_proof(rng.randrange(n), n), repeat)
    result["receipt"] = _timed(lambda: log.inclusion_proof(n - 1, n), repeat)
    result["consistency"] = _timed(lambda: log.consistency_proof(rng.randrange(1, n), n), repeat)
    result["inclusion_before"] = _timed(
        lambda: merkle.inclusion_proof(log.leaf_hashes(n), rng.randrange(n)), before_repeat
    )
    result["consistency_before"] = _timed(
        lambda: merkle.consistency_proof(log.leaf_hashes(n), rng.randrange(1, n)),
        before_repeat,
    )
    counter = iter(range(n, n + 10_000))
    result["append"] = _timed(lambda: log.append([realistic_entry(next(counter))]), 100)
    with engine.connect() as conn:
        try:
            pages = {
                name: int(total)
                for name, total in conn.execute(
                    text("select name, sum(pgsize) from dbstat group by name")
                )
            }
        except Exception:  # SQLite built without the dbstat table
            pages = {}
    records = sum(v for k, v in pages.items() if "log_records" in k)
    result["bytes_per_record"] = {
        "records_and_indexes": round(records / log.size()) if pages else None,
        "subtrees": round(pages.get("log_subtrees", 0) / log.size()) if pages else None,
    }
    engine.dispose()
    path.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    args = parser.parse_args()
    rng = random.Random(8)
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            print(json.dumps(measure(size, Path(folder), rng)), flush=True)


if __name__ == "__main__":
    main()
