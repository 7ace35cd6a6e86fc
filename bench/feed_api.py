"""The registration API's bulk throughput against ``betrokken node import`` of the same rows, in
one run on real processes: ``python -m bench.feed_api [--rows N]``.

A network with one node is started (the key service, the coordinator, the node with its
registration API on loopback). The same persons are first imported from a CSV export by
``node import`` (a process of its own, into a database of its own), then registered through the
API's bulk calls over HTTPS by the example client (docs/examples/feed_client.py, 1,000 changes
per call) into the running node's database. Both pseudonymise through the same key service and
write SQLite. The goal (docs/adr/0035): the API within 1.2x of the import's time. Writes
bench/results/feed_api-latest.json and a dated copy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.net import build, people

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GOAL = 1.2
SECRET = "bench-feed-secret"  # noqa: S105 - a made-up client secret of a throwaway network


def _client_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "feed_client", ROOT / "docs" / "examples" / "feed_client.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["feed_client"] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _betrokken() -> str:
    return str(Path(sys.executable).parent / "betrokken")


def _wait_for(port: int, seconds: float = 60.0) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the registration API did not listen on {port}")


def measure(rows: int, work: Path, chunk: int = 1000) -> dict[str, Any]:
    from betrokken.app.demo import write_export
    from betrokken.node.feeds_api import secret_sha256

    client_module = _client_module()
    bn = build(work, 1, 0, name="feedapi")
    org = bn.nodes[0]
    config = bn.net.node_configs[org]
    port = _free_port()
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[[feeds]]\nname = "gcos"\ntoken_sha256 = "{secret_sha256(SECRET)}"\n'
            f'\n[feed_api]\nlisten = "127.0.0.1:{port}"\nmax_changes = {chunk}\n'
        )
    persons = people(rows, seed=23)
    export = work / "export.csv"
    write_export(export, persons)
    changes = [{"operation": "register", "bsn": p.digits} for p in persons]
    try:
        bn.start()
        _wait_for(port)
        copy = config.parent / "import.toml"
        copy.write_text(config.read_text().replace('"sqlite:///node.db"', '"sqlite:///import.db"'))
        start = time.perf_counter()
        done = subprocess.run(
            [_betrokken(), "node", "import", "--config", str(copy), str(export), "--quiet"],
            capture_output=True,
            text=True,
            check=False,
        )
        import_seconds = time.perf_counter() - start
        if f"{rows} added" not in done.stdout:
            raise RuntimeError(f"import failed: {done.stdout[-300:]} {done.stderr[-500:]}")
        client = client_module.FeedClient(
            f"https://127.0.0.1:{port}", "gcos", SECRET, str(config.parent / "../../ca/ca.crt")
        )
        client.token()  # not part of the measurement: once per hour
        start = time.perf_counter()
        outcomes = client_module.send(client, changes, chunk, "bench")
        api_seconds = time.perf_counter() - start
        if outcomes.get("added") != rows:
            raise RuntimeError(f"the API did not add every row: {dict(outcomes)}")
    finally:
        bn.remove()
    return {
        "rows": rows,
        "chunk": chunk,
        "import_seconds": round(import_seconds, 2),
        "import_per_s": round(rows / import_seconds, 1),
        "api_seconds": round(api_seconds, 2),
        "api_per_s": round(rows / api_seconds, 1),
        "api_over_import": round(api_seconds / import_seconds, 3),
        "goal": GOAL,
        "met": api_seconds / import_seconds <= GOAL,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as scratch:
        result = measure(args.rows, Path(scratch), args.chunk)
    result["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    (RESULTS / "feed_api-latest.json").write_text(text)
    (RESULTS / f"feed_api-{dt.datetime.now(dt.UTC):%Y-%m-%d}.json").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
