"""Where a question's time goes: every process of a bench network under cProfile.

``python -m bench.hotspots [--nodes 10] [--per-node 2000] [--questions 100]`` starts the key
service, the coordinator and the nodes each under ``python -m cProfile`` (stopped with SIGTERM,
which every service handles by stopping cleanly, so the profile is written), asks the questions
from this process under cProfile too, and prints the top functions of each by their own time
and by cumulative time. docs/performance.md quotes what it found.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.net import build
from bench.run import _requester, ask_times
from betrokken.app.cluster import Cluster


class ProfiledCluster(Cluster):
    profiles: Path

    def _spawn(self, name: str, command: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        # command is [python, "-m", "betrokken", ...]: every thread profiled (bench/profiled.py)
        script = str(Path(__file__).with_name("profiled.py"))
        out = str(self.profiles / f"{name}.prof")
        return super()._spawn(name, [command[0], script, out, *command[3:]])


def report(path: Path, title: str, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs()
    out.write(f"\n===== {title}: by own time =====\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"\n===== {title}: by cumulative time =====\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--per-node", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--cpu", action="store_true", help="time the services' threads by their CPU time"
    )
    args = parser.parse_args()
    if args.cpu:
        os.environ["BETROKKEN_PROFILE_CPU"] = "1"  # read by bench/profiled.py in each service
    work = Path(tempfile.mkdtemp(prefix="betrokken-profile-"))
    profiles = work / "profiles"
    profiles.mkdir()
    bn = build(work, args.nodes, args.per_node)
    cluster = ProfiledCluster(bn.net)
    cluster.profiles = profiles
    try:
        cluster.start()
        requester = _requester(bn)
        ask_times(requester, bn, 5)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        times = ask_times(requester, bn, args.questions)
        profiler.disable()
        wall = time.perf_counter() - start
        requester.close()
        profiler.dump_stats(str(profiles / "requester.prof"))
    finally:
        cluster.stop()
    times.sort()
    print(
        f"{args.questions} questions to {args.nodes} nodes: {wall:.2f} s, "
        f"p50 {times[len(times) // 2] * 1000:.1f} ms"
    )
    for name in ("requester", "keyservice", "coordinator", "node-org-01"):
        path = profiles / f"{name}.prof"
        if path.exists():
            print(report(path, name, args.top))
        else:
            print(f"no profile for {name}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
