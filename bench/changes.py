"""Each performance change (ADR 0022) measured before and after in one run (``changes``).

The "before" is the old code path, kept here as it was (or reached with the switch the new code
keeps, e.g. a per-row trail without ``lines``), measured in the same process, on the same data,
right next to the new one.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import figure, ratio


def _runs(work: Callable[[], object], inner: int, rounds: int = 5) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(inner):
            work()
        out.append((time.perf_counter() - start) / inner * 1e6)
    return out


def _pair(before: list[float], after: list[float], unit: str = "us") -> dict[str, Any]:
    b, a = figure(before), figure(after)
    return {
        f"before_{unit}": b,
        f"after_{unit}": a,
        "speedup": ratio(b["median"], a["median"]),
    }


def lookup(work_dir: Path, count: int) -> dict[str, Any]:
    """A node's lookup of one pseudonym among ``count``: the old ORM session vs plain SQL."""
    import os

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from betrokken.config.schema import DisclosureLevel
    from betrokken.crypto.pseudonym import Pseudonym
    from betrokken.node.store import Hit, NodeStore, Registration, RegistrationRow

    store = NodeStore(f"sqlite:///{work_dir / 'lookup.db'}")
    today = dt.date(2026, 11, 23)
    regs = [
        Registration(Pseudonym(os.urandom(64), "k1-bench"), "zorg", "desk", dt.date(2026, 1, 1))
        for _ in range(count)
    ]
    for start in range(0, len(regs), 5000):
        store.upsert(regs[start : start + 5000], retention_days=730, lines=(start, start + 4999))
    asked = [regs[7].pseudonym]

    def before() -> object:  # the ORM path as it was
        with Session(store.engine) as session:
            rows = session.scalars(
                select(RegistrationRow).where(
                    RegistrationRow.pseudonym.in_([p.value for p in asked]),
                    RegistrationRow.key_id.in_({p.key_id for p in asked}),
                    RegistrationRow.until >= today,
                    RegistrationRow.since <= today,
                )
            ).all()
            return {
                r.pseudonym: Hit(
                    r.id,
                    r.pseudonym,
                    r.key_id,
                    r.since,
                    r.contact,
                    r.domain,
                    r.reference,
                    DisclosureLevel(r.disclosure) if r.disclosure else None,
                    r.advice,
                )
                for r in rows
            }

    assert before() == store.find(asked, today)
    result = _pair(_runs(before, 300), _runs(lambda: store.find(asked, today), 300))
    store.engine.dispose()
    return result


def signing() -> dict[str, Any]:
    """Signing a checkpoint: the key parsed per signature (as before) vs parsed once."""
    from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint

    key = NoteKey.generate("bench.example/log")
    checkpoint = Checkpoint("bench.example/log", 12345, b"\x01" * 32)

    def before() -> object:
        return sign_checkpoint(checkpoint, NoteKey(key.name, key.private_key))  # a fresh parse

    return _pair(_runs(before, 300), _runs(lambda: sign_checkpoint(checkpoint, key), 300))


def quota(work_dir: Path) -> dict[str, Any]:
    """Counting one person against the quota: a durable write per request (a block of one, as
    before) vs blocks reserved durably (limit 50,000: blocks of 1,000)."""
    from betrokken.keyservice import store as quota_store

    day = dt.date(2026, 11, 23)
    new = quota_store.QuotaStore(f"sqlite:///{work_dir / 'quota-new.db'}")
    old = quota_store.QuotaStore(f"sqlite:///{work_dir / 'quota-old.db'}")
    share = quota_store.QUOTA_BLOCK_SHARE
    try:
        quota_store.QUOTA_BLOCK_SHARE = 10**9  # a block of one person: a write per request
        before = _runs(lambda: old.consume("zvh", 1, 50_000, day), 100)
    finally:
        quota_store.QUOTA_BLOCK_SHARE = share
    after = _runs(lambda: new.consume("zvh", 1, 50_000, day), 100)
    new.engine.dispose()
    old.engine.dispose()
    return _pair(before, after)


def import_trail(work_dir: Path, batches: int) -> dict[str, Any]:
    """Storing a batch of 500 new registrations: a trail record per row (as before) vs one
    record for the batch; per registration, and the bytes each way."""
    import os

    from bench.net import disk_bytes
    from betrokken.crypto.pseudonym import Pseudonym
    from betrokken.node.store import NodeStore, Registration

    def fill(path: Path, per_batch: bool) -> tuple[list[float], float]:
        store = NodeStore(f"sqlite:///{path}")
        empty = disk_bytes(path)
        times = []
        for batch in range(batches):
            regs = [
                Registration(
                    Pseudonym(os.urandom(64), "k1-bench"),
                    "zorg",
                    "desk",
                    dt.date(2026, 1, 1),
                    reference=f"CASE-{batch}-{k}",
                )
                for k in range(500)
            ]
            start = time.perf_counter()
            store.upsert(
                regs,
                retention_days=730,
                lines=(batch * 500, batch * 500 + 499) if per_batch else None,
            )
            times.append((time.perf_counter() - start) / 500 * 1e6)
        store.engine.dispose()
        import sqlite3

        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        return times, (disk_bytes(path) - empty) / (500 * batches)

    before, bytes_before = fill(work_dir / "rows.db", False)
    after, bytes_after = fill(work_dir / "batch.db", True)
    result = _pair(before, after, "us_per_registration")
    result["bytes_per_registration_before"] = round(bytes_before, 1)
    result["bytes_per_registration_after"] = round(bytes_after, 1)
    return result


def cli_help(runs: int) -> dict[str, Any]:
    """``betrokken --help``: every command imported at start (as before) vs lazily."""
    eager = (
        "import betrokken.audit.cli, betrokken.app.network, betrokken.coordinator.cli, "
        "betrokken.keyservice.cli, betrokken.node.cli, betrokken.requester.cli\n"
        "import sys; sys.argv = ['betrokken', '--help']\n"
        "from betrokken.app.launch import main; main()\n"
    )
    lazy = (
        "import sys; sys.argv = ['betrokken', '--help']\n"
        "from betrokken.app.launch import main; main()\n"
    )

    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
        return (time.perf_counter() - start) * 1000

    before, after = [], []
    for _ in range(runs):  # interleaved, so both see the same load
        before.append(wall(eager))
        after.append(wall(lazy))
    return _pair(before, after, "ms")


def all_changes(work_dir: Path, quick: bool) -> dict[str, Any]:
    work_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "node_lookup": lookup(work_dir, 4_000 if quick else 20_000),
        "checkpoint_signature": signing(),
        "quota_count": quota(work_dir),
        "import_trail": import_trail(work_dir, 2 if quick else 8),
        "cli_help": cli_help(3 if quick else 7),
    }
    out["note"] = (
        "each change's old path next to its new one, same process, same data, same run "
        "(bench/changes.py)"
    )
    return out
