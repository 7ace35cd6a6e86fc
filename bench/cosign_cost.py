"""What witnessing before answering costs: question latency and CPU per process, before and after.

``python -m bench.cosign_cost --compare BEFORE AFTER [AFTER...]`` runs the same measurement in
checkouts of betrokken (each with its own ``.venv``; an old one needs this file and bench/cpu.py
copied in), alternately and on fresh networks, so all are measured in the same run on the same
machine: ``--runs`` rounds of BEFORE then each AFTER, the load average recorded at each. Each
measurement (``--measure``) builds a bench network of N nodes (bench/net.py: the asking
organisation plus N nodes, ``--per-node`` registrations each), asks ``--questions`` one-person
questions one after the other through the requester's Python API (``Requester.ask``, the path of
the CLI and the portal) after a warm-up, and reports the wall time of each and the CPU time
(utime + stime, from /proc) each process used per question: the key service, the coordinator,
the nodes, and the asking process itself. The comparison is written as JSON (``--out``) and
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cpu import cpu_seconds


def measure(
    nodes: int, per_node: int, questions: int, warm: int, postgres: bool = False, askers: int = 1
) -> dict[str, Any]:
    import random
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from bench import net
    from bench.net import ASKER, PURPOSE, build

    # Another bench on this machine may use the first ranges: start somewhere of our own.
    net._NEXT_BASE[0] = random.SystemRandom().randrange(21_000, 50_000, 500)
    from betrokken.config.load import load_node
    from betrokken.requester.client import Person, Requester

    with tempfile.TemporaryDirectory(prefix="cosign-cost-") as work:
        bn = build(Path(work), nodes, per_node, persons=200, postgres=postgres)
        try:
            bn.start()
            assert bn.cluster is not None
            pids = {name: p.pid for name, p in bn.cluster.processes.items()}
            # With several askers, each asks its share one after the other with a Requester of
            # its own, all at once: a cosigning round then covers several questions.
            requesters = [Requester.from_config(load_node(bn.asker_config)) for _ in range(askers)]
            incomplete = 0
            unanswered: dict[str, int] = {}
            counted = threading.Lock()

            def ask(turn: int, who: int = 0) -> float:
                nonlocal incomplete
                person = Person(bn.persons[turn % len(bn.persons)], f"CASE-{turn}")
                requester = requesters[who]
                start = time.perf_counter()
                result = requester.ask([person], purpose=PURPOSE, user="bench", role="regisseur")
                elapsed = time.perf_counter() - start
                with counted:
                    incomplete += 0 if result.complete else 1
                    for answer in result.persons[0].answers:
                        if not answer.answer.outcome.answered:  # which node did not, and how
                            key = f"{answer.organisation_id}: {answer.answer.outcome.value}"
                            unanswered[key] = unanswered.get(key, 0) + 1
                return elapsed

            def asked(first: int, count: int) -> list[float]:
                if askers == 1:
                    return [ask(first + k) * 1000 for k in range(count)]
                with ThreadPoolExecutor(askers) as pool:
                    parts = pool.map(
                        lambda a: [
                            ask(first + k, a) * 1000 for k in range(count) if k % askers == a
                        ],
                        range(askers),
                    )
                    return [wall for part in parts for wall in part]

            asked(0, warm)
            incomplete = 0
            unanswered.clear()
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            own_before = os.times()
            walls = asked(warm, questions)
            own_after = os.times()
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
            for requester in requesters:
                requester.close()
        finally:
            bn.remove()
    per_question = {n: (after[n] - before[n]) * 1000 / questions for n in pids}
    # The asking organisation's own node is idle (it is never asked): not a node that answers.
    node_cpu = [
        v for n, v in per_question.items() if n.startswith("node-") and n != f"node-{ASKER}"
    ]
    requester_ms = (
        (own_after.user - own_before.user + own_after.system - own_before.system) * 1000 / questions
    )
    walls.sort()
    return {
        "nodes": nodes,
        "askers": askers,
        "database": "postgresql" if postgres else "sqlite",
        "questions": questions,
        "incomplete": incomplete,
        "unanswered": unanswered,
        "wall_p50_ms": statistics.median(walls),
        "wall_p90_ms": walls[int(0.9 * (len(walls) - 1))],
        "cpu_ms_per_question": {
            "requester": requester_ms,
            "keyservice": per_question.get("keyservice", 0.0),
            "coordinator": per_question.get("coordinator", 0.0),
            "node_mean": statistics.fmean(node_cpu),
            # the asking organisation's node, never asked: what a node costs idle per question
            "node_idle": per_question.get(f"node-{ASKER}", 0.0),
            "node_max": max(node_cpu),
            "nodes_total": sum(node_cpu),
            "all_processes": requester_ms + sum(per_question.values()),
        },
    }


def compare(checkouts: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """The first checkout is the baseline; each other is measured against it, the runs taken in
    turn (baseline, then each other, ``--runs`` times), with the load average at each."""
    results: dict[str, list[dict[str, Any]]] = {str(c): [] for c in checkouts}
    for run in range(args.runs):
        for checkout in checkouts:
            python = checkout / ".venv" / "bin" / "python"
            command = [
                str(python),
                "-m",
                "bench.cosign_cost",
                "--measure",
                "--nodes",
                str(args.nodes),
                "--per-node",
                str(args.per_node),
                "--questions",
                str(args.questions),
                "--warm",
                str(args.warm),
                *(["--postgres"] if args.postgres else []),
                *(["--askers", str(args.askers)] if args.askers > 1 else []),
            ]
            for _attempt in (1, 2):  # once more when it could not start (ports taken by others)
                done = subprocess.run(
                    command, cwd=checkout, capture_output=True, text=True, check=False, timeout=1800
                )
                if done.returncode == 0:
                    break
                print(f"{checkout.name}: {done.stderr.strip()[-300:]}", file=sys.stderr)
            done.check_returncode()
            figure = json.loads(done.stdout.strip().splitlines()[-1])
            figure["load1"] = round(os.getloadavg()[0], 2)
            results[str(checkout)].append(figure)
            print(
                f"run {run + 1} {checkout.name}: p50 {figure['wall_p50_ms']:.1f} ms, "
                f"CPU {figure['cpu_ms_per_question']['all_processes']:.1f} ms/question "
                f"(load {figure['load1']})",
                file=sys.stderr,
            )

    def median(checkout: Path, *keys: str) -> float:
        values = []
        for figure in results[str(checkout)]:
            value: Any = figure
            for key in keys:
                value = value[key]
            values.append(value)
        return statistics.median(values)

    parts = ["requester", "keyservice", "coordinator", "node_mean", "nodes_total", "all_processes"]
    before, *afters = checkouts

    def versus(after: Path) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "wall_p50_ms": {
                "before": median(before, "wall_p50_ms"),
                "after": median(after, "wall_p50_ms"),
            },
            "cpu_ms_per_question": {
                part: {
                    "before": median(before, "cpu_ms_per_question", part),
                    "after": median(after, "cpu_ms_per_question", part),
                }
                for part in parts
            },
        }
        wall = summary["wall_p50_ms"]
        cpu = summary["cpu_ms_per_question"]["all_processes"]
        summary["ratio_wall_p50"] = wall["after"] / wall["before"]
        summary["ratio_cpu_all_processes"] = cpu["after"] / cpu["before"]
        summary["load1"] = {
            "before": [f["load1"] for f in results[str(before)]],
            "after": [f["load1"] for f in results[str(after)]],
        }
        return summary

    summaries = {str(after): versus(after) for after in afters}
    return {
        "machine": {"nproc": os.cpu_count(), "load_at_end": os.getloadavg()},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        | {"compare": [str(c) for c in checkouts]},
        "runs": results,
        # one checkout against the baseline: as before; several: one summary per checkout
        "summary": summaries[str(afters[0])] if len(afters) == 1 else summaries,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cosign_cost", description=__doc__)
    parser.add_argument("--measure", action="store_true", help="one measurement, JSON on stdout")
    parser.add_argument(
        "--compare", nargs="+", type=Path, metavar="CHECKOUT", help="BEFORE AFTER [AFTER...]"
    )
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--per-node", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--askers", type=int, default=1, help="ask from this many threads at once (each its own)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="the nodes on PostgreSQL (127.0.0.1:5432)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/cosign-cost.json"))
    args = parser.parse_args(argv)
    if args.measure:
        print(
            json.dumps(
                measure(
                    args.nodes, args.per_node, args.questions, args.warm, args.postgres, args.askers
                )
            )
        )
        return 0
    if not args.compare or len(args.compare) < 2:
        parser.error("give --measure or --compare BEFORE AFTER [AFTER...]")
    report = compare([c.resolve() for c in args.compare], args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
