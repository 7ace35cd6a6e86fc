"""Fifty people logging in at once: the wait of each and the CPU it costs, per hashing setting.

``python -m bench.logins`` makes ``--people`` local portal accounts in a fresh store (SQLite, and
PostgreSQL at ``--postgres`` when it answers), then lets them all log in at the same moment from
as many threads -- the portal runs each login in Starlette's thread pool, so this is the load a
Monday 09:00 puts on it without the HTTP around it -- and reports per setting the p50/p95/max
wait and the CPU time (utime + stime of this process) per login. Two settings are measured in
the same run, alternately: the portal's current one (portal/users.py) and argon2-cffi's default
(64 MiB, 3 passes, 4 lanes), which the portal used before. The goal (docs/operator.md, "Logging
in"): p95 ≤ 5 s for 50 logins at once on a 2-core machine. Results go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher

PASSWORD = "een lang genoeg wachtwoord"  # noqa: S105 - the bench accounts' own


def _measure(url: str, people: int, hasher: PasswordHasher) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from betrokken.db import make_engine
    from betrokken.portal import users
    from betrokken.portal.users import PortalBase, PortalUserRow, UserStore

    engine = make_engine(url, PortalBase.metadata)
    store = UserStore(engine, "bench")
    hashed = hasher.hash(PASSWORD)
    secrets = {}
    for index in range(people):
        name = f"medewerker.{index:03d}"
        secrets[name] = store.add(name, PASSWORD, ("regisseur",)).totp_secret
    with Session(engine) as session, session.begin():  # every account hashed with `hasher`
        for row in session.query(PortalUserRow):
            row.password_hash = hashed
    current, users._HASHER = users._HASHER, hasher  # the setting under test, rehash included
    try:
        start = threading.Barrier(people + 1)
        waits: list[float] = []
        failed: list[str] = []

        def one(name: str) -> None:
            code = pyotp.TOTP(secrets[name]).now()
            start.wait()
            began = time.perf_counter()
            outcome = store.login(name, PASSWORD, code)
            waits.append(time.perf_counter() - began)
            if outcome.account is None:
                failed.append(f"{name}: {outcome.reason}")

        threads = [threading.Thread(target=one, args=(name,)) for name in secrets]
        for thread in threads:
            thread.start()
        cpu = os.times()
        start.wait()
        for thread in threads:
            thread.join()
        after = os.times()
    finally:
        users._HASHER = current
        engine.dispose()
    spent = (after.user + after.system) - (cpu.user + cpu.system)
    waits.sort()
    return {
        "logins": people,
        "failed": failed,
        "p50_s": statistics.median(waits),
        "p95_s": waits[max(0, round(0.95 * len(waits)) - 1)],
        "max_s": waits[-1],
        "cpu_ms_per_login": 1000 * spent / people,
    }


def _postgres(base: str) -> str | None:
    try:
        import psycopg

        name = f"bench_logins_{os.getpid()}"
        plain = base.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name}")
            connection.execute(f"CREATE DATABASE {name}")
        return base.rsplit("/", 1)[0] + "/" + name
    except Exception:  # no PostgreSQL here: measured on SQLite only
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.logins", description=__doc__)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", type=Path, default=Path("bench/results/logins.json"))
    args = parser.parse_args(argv)
    from betrokken.portal import users

    settings = {
        "current": users._HASHER,
        "argon2-cffi default": PasswordHasher(),
    }
    results: dict[str, Any] = {
        "people": args.people,
        "nproc": os.cpu_count(),
        "settings": {
            name: {"time_cost": h.time_cost, "memory_kib": h.memory_cost, "lanes": h.parallelism}
            for name, h in settings.items()
        },
        "runs": [],
    }
    for run in range(args.runs):
        for name, hasher in settings.items():
            with tempfile.TemporaryDirectory() as folder:
                urls = {"sqlite": f"sqlite:///{Path(folder) / 'users.db'}"}
                if (pg := _postgres(args.postgres)) is not None:
                    urls["postgresql"] = pg
                for store, url in urls.items():
                    load = os.getloadavg()[0]
                    measured = _measure(url, args.people, hasher)
                    measured |= {"run": run, "setting": name, "store": store, "load": load}
                    results["runs"].append(measured)
                    print(
                        f"{name:>20} {store:>10}: p50 {measured['p50_s']:.2f} s, "
                        f"p95 {measured['p95_s']:.2f} s, "
                        f"{measured['cpu_ms_per_login']:.0f} ms CPU per login (load {load:.1f})"
                    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
