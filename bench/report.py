"""Write the figures of ``bench/results/latest.json`` into docs/performance.md.

``python -m bench.report`` replaces what stands between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` in docs/performance.md (cpu, figures, goals, misses, changes,
national) with tables made from the JSON, so the document quotes exactly the committed run. The
prose around them is written by hand; sections about earlier runs say so in their heading.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "bench" / "results" / "latest.json"


def fig(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return (
            f"{value['median']:g}{unit} ({value['min']:g}–{value['max']:g}, {value['runs']} runs)"
        )
    return f"{value:g}{unit}"


def count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "—"


def med(value: Any) -> float | None:
    if isinstance(value, dict):
        return float(value["median"])
    return None if value is None else float(value)


KIND_LABELS = (
    ("requester", "requester"),
    ("keyservice", "key service"),
    ("coordinator", "coordinator"),
    ("node", "each node (mean)"),
    ("node_max", "slowest node"),
    ("total", "**total**"),
    ("floor", "question floor"),
    ("protocol_floor", "protocol floor"),
)


def cpu_table(d: dict[str, Any]) -> str:
    """CPU ms per question per process kind and N, the floors, the ratios and the load."""
    c = d.get("cpu") or {}
    ns = sorted((n for n, e in c.items() if n.isdigit() and isinstance(e, dict)), key=int)
    if not ns:
        return "(not measured in this run)"
    lines = [
        "CPU ms per question (utime + stime of each process over the measured window, less its "
        "idle rate over an equal window just before; the floors in this thread's CPU time). "
        "Median (min–max, runs).",
        "",
        "| CPU ms per question | " + " | ".join(f"N={n}" for n in ns) + " |",
        "|---|" + "---|" * len(ns),
    ]
    for key, label in KIND_LABELS:
        lines.append(f"| {label} | " + " | ".join(fig(c[n].get(key)) for n in ns) + " |")
    lines.append(
        "| total / question floor | "
        + " | ".join(fig(c[n].get("total_floor_ratio")) for n in ns)
        + " |"
    )
    lines.append(
        "| total / protocol floor | "
        + " | ".join(fig(c[n].get("total_protocol_floor_ratio")) for n in ns)
        + " |"
    )
    lines.append(
        "| witness quorum | " + " | ".join(str(c[n].get("witness_quorum", "—")) for n in ns) + " |"
    )
    lines.append(
        "| load average (1 min) in the windows | "
        + " | ".join(fig(c[n].get("load1")) for n in ns)
        + " |"
    )
    lines += [
        "",
        f"CPU one more node adds to a question (least squares over N): "
        f"**{fig(c.get('per_added_node_ms'), ' ms')}**.",
    ]
    units = c.get("units_us") or {}
    counts = {n: c[n].get("protocol_counts") or {} for n in ns}
    primitives = [k for k in units if not k.startswith("api_")]
    if primitives:
        lines += [
            "",
            "The protocol floor: each primitive's CPU, measured in one thread, times how often a "
            "question needs it (bench/cpu.py, `protocol_counts`).",
            "",
            "| primitive | CPU µs | " + " | ".join(f"per question, N={n}" for n in ns) + " |",
            "|---|---|" + "---|" * len(ns),
        ]
        for name in primitives:
            lines.append(
                f"| {name.replace('_', ' ')} | {fig(units[name])} | "
                + " | ".join(str(counts[n].get(name, "—")) for n in ns)
                + " |"
            )
        api = [k for k in units if k.startswith("api_")]
        if api:
            lines += [
                "",
                "The same signatures through betrokken's note and cosignature code (parsing, "
                "base64, key ids — not part of the floor): "
                + ", ".join(f"{k[4:].replace('_', ' ')} {fig(units[k], ' µs')}" for k in api)
                + ".",
            ]
    cli = d.get("cli") or {}
    lines += [
        "",
        f"CLI in CPU: `betrokken query` {fig(cli.get('query_cpu_ms'), ' ms')}, "
        f"`betrokken --help` {fig(cli.get('help_cpu_ms'), ' ms')}, a bare `python -c pass` "
        f"{fig(cli.get('bare_python_cpu_ms'), ' ms')}.",
    ]
    return "\n".join(lines)


def not_measured(d: dict[str, Any]) -> list[str]:
    """A line naming the scenarios this run left out (a reduced run: ``--only``), if any."""
    present = {
        "crypto": bool(d.get("crypto")),
        "query": any(isinstance(e, dict) for e in d.get("query", {}).values()),
        "log": any(d.get("log", {}).get("p50_ms", {}).values()),
        "import": bool(d.get("import")),
        "changes": bool(d.get("changes")),
        "small (PostgreSQL)": bool(d.get("postgres")),
        "rss": bool((d.get("coordinator") or {}).get("rss_mb")),
    }
    missing = [name for name, there in present.items() if not there]
    if not missing:
        return []
    return [
        f"Not measured in this run: {', '.join(missing)} (their rows below are empty; the dated "
        "files in bench/results/ keep the runs that measured them).",
        "",
    ]


def figures(d: dict[str, Any]) -> str:
    m = d["machine"]
    c = d["crypto"]
    lines = [
        f"Run of {d['at']} ({'QUICK' if d['quick'] else 'full'} run, {d['seconds']:.0f} s) on "
        f"{m['nproc']} cores ({m['cpu']}), Python {m['python']}; load average "
        f"{m['loadavg_at_start'][0]:.1f} at the start and {m['loadavg_at_end'][0]:.1f} at the end, "
        f"{fig(m.get('loadavg_through_run'))} through the run "
        "(other work shared the machine). Figures: median (min–max, runs).",
        "",
        *not_measured(d),
        "| crypto floor | |",
        "|---|---|",
        f"| one ristretto255 multiplication | {fig(c.get('mult_us'), ' µs')} |",
        f"| one VOPRF evaluation (client + server) | {fig(c.get('voprf_single_us'), ' µs')} |",
        f"| per element, batched by 100 | {fig(c.get('voprf_batch_us_per_element'), ' µs')} |",
        f"| one HPKE seal + open | {fig(c.get('hpke_us'), ' µs')} |",
        "",
        "| question, N nodes, "
        f"{d['sizes']['registrations_per_node']:,} registrations each | p50 ms | p95 ms | "
        "p99 ms | floor ms | p50/floor | load | questions/s, 8 askers | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, e in d["query"].items():
        if not n.isdigit():
            continue
        if e is None:
            lines.append(
                f"| N={n} | not measured: {d['query'].get(f'{n}_why', '')} | | | | | | | |"
            )
            continue
        lines.append(
            f"| N={n} | {fig(e.get('p50_ms'))} | {fig(e.get('p95_ms'))} | {fig(e.get('p99_ms'))} | "
            f"{fig(e.get('floor_ms'))} | {fig(e.get('p50_floor_ratio'))} | "
            f"{fig(med(e.get('load1') or (d.get('cpu', {}).get(n) or {}).get('load1')))} | "
            f"{fig(e.get('qps'))} | {fig(med(e.get('qps_load1')))} |"
        )
    log = d["log"]
    cpu_added = (d.get("cpu") or {}).get("per_added_node_ms")
    lines += [
        "",
        "Fan-out: the CPU one more node adds to a question (least squares over the total CPU "
        "per N) "
        f"**{fig(d['fanout'].get('cpu_ms_per_node') or cpu_added, ' ms')}**; the slope of the wall "
        f"p50s over N, each N at its own load, {fig(d['fanout'].get('slope_ms_per_node'))} ms "
        "per node (for comparison with earlier runs only).",
        "",
        "| log records before the questions | question p50 ms | witness consistency proof ms |",
        "|---|---|---|",
    ]
    for size, value in log["p50_ms"].items():
        lines.append(
            f"| {int(size):,} | {fig(value)} | {fig(log['witness_consistency_ms'].get(size))} |"
        )
    lines += [
        "",
        f"Growth ratio (p50 at {log.get('growth_between')}): **{fig(log.get('growth_ratio'))}**; "
        f"a question writes {fig(log.get('records_per_question'))} records of "
        f"{fig(log.get('record_bytes'))} bytes of content on average.",
        "",
    ]
    cli = d["cli"]
    lines += [
        f"CLI, wall: `betrokken --help` {fig(cli.get('help_ms'), ' ms')}; a bare `python -c "
        f"pass` {fig(cli.get('bare_python_ms'), ' ms')}; `betrokken query` (one person, "
        f"N={cli.get('query_nodes')}) {fig(cli.get('query_wall_ms'), ' ms')}.",
        "",
        f"| import ({d['sizes']['import_rows']:,} rows, `betrokken node import`) | rows/s | "
        "of the floor | bytes/registration | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    imp = d["import"]
    for kind in ("sqlite", "postgres"):
        e = imp.get(kind)
        if e:
            lines.append(
                f"| {kind} | {fig(e.get('per_s'))} | {fig(e.get('floor_ratio'))} | "
                f"{fig(e.get('bytes_per_registration'))} | {fig(e.get('peak_rss_mb'))} |"
            )
    lines.append(
        f"| floor: the VOPRF of an import on one core | {fig(imp.get('floor_per_s'))} | 1 | | |"
    )
    b = d["batch"]
    lines += [
        "",
        f"Batch: {b.get('persons')} persons against {b.get('nodes')} nodes of "
        f"{count(b.get('registrations_per_node'))} registrations in one question: "
        f"{fig(b.get('per_s'))} persons/s; openmined-psi pairwise against sets of "
        f"{count(b.get('peer_registrations_per_node'))} (measured against "
        f"{b.get('peer_nodes_measured', '?')} node(s), times {b.get('nodes')}) "
        f"{fig(b.get('peer_per_s'))} "
        f"persons/s with set-up, {fig(b.get('peer_reused_per_s'))} with set-up reused "
        f"(betrokken ×{fig(b.get('vs_peer'))} and ×{fig(b.get('vs_peer_reused'))}). "
        + (f"Not measured: {b['why']}." if b.get("why") else ""),
        "",
        "Coordinator RSS after the same workload, 5 nodes: "
        + ", ".join(
            f"{k.replace(',', ', ')}: {v} MB"
            for k, v in (d["coordinator"].get("rss_mb") or {}).items()
        )
        + f" (difference {fig(d['coordinator'].get('difference'))}"
        + (f"; {d['coordinator']['measured_in']}" if d["coordinator"].get("measured_in") else "")
        + "). PostgreSQL against SQLite: "
        f"questions ×{fig(d['postgres'].get('query_ratio'))}, imports "
        f"×{fig(d['postgres'].get('import_ratio'))} (time ratios).",
    ]
    return "\n".join(lines)


KINDS = {
    "cpu": "CPU per question, against the floors of the same run",
    "wall against cpu": "Wall time against the CPU of the same run (judged on an idle moment)",
    "cli": "The command line, in CPU",
    "wall": "Earlier goals in wall time (at a load above 2 they measure the waiting)",
    "other": "Storage, memory, imports, batches",
}


def goals(d: dict[str, Any]) -> str:
    """The goals table, grouped by kind: measured, target, met or missed, the factor (measured
    over target; target over measured for an "at least" goal, so above 1 is a miss by that
    much), and what the figure was computed from (the load in its windows for a wall goal)."""
    lines = [
        "| goal | measured | target | | factor | from |",
        "|---|---|---|---|---|---|",
    ]
    rows = d["goals"]
    for kind, title in KINDS.items():
        group = [g for g in rows if g.get("kind", "other") == kind]
        if not group:
            continue
        lines.append(f"| *{title}* | | | | | |")
        for g in group:
            mark = {True: "met", False: "**missed**", None: "not measured"}[g["met"]]
            notes = [g["note"]] if g.get("note") else []
            if g.get("load1") is not None:
                notes.append(f"load {g['load1']:g}")
            lines.append(
                f"| {g['what']} | {fig(g['measured'])} | {fig(g['goal'])} | {mark} | "
                f"{fig(g['factor'])} | {'; '.join(notes)} |"
            )
    return "\n".join(lines)


def misses(d: dict[str, Any]) -> str:
    """Each missed goal of the CPU work and its factor, for the closing note: the note says,
    per goal, which measured cost is left."""
    rows = [g for g in d["goals"] if g.get("kind") in ("cpu", "wall against cpu", "cli")]
    if not rows:
        return "(not measured in this run)"
    lines = []
    for g in rows:
        if g["met"] is None:
            lines.append(f"* {g['what']}: not measured in this run.")
        elif g["met"]:
            lines.append(f"* {g['what']}: met ({fig(g['measured'])} against {fig(g['goal'])}).")
        else:
            lines.append(
                f"* {g['what']}: **missed by ×{fig(g['factor'])}** ({fig(g['measured'])} against "
                f"{fig(g['goal'])}{'; ' + g['note'] if g.get('note') else ''})."
            )
    return "\n".join(lines)


def changes(d: dict[str, Any]) -> str:
    ch = d.get("changes") or {}
    if not ch:
        return "(not measured in this run)"
    names = {
        "node_lookup": "node lookup of one pseudonym (ORM session → prebuilt Core statement)",
        "checkpoint_signature": "signing a checkpoint (key parsed each time → once)",
        "quota_count": "counting one person's quota (durable write → in memory, blocks)",
        "import_trail": "storing an imported registration (record per row → per batch)",
        "cli_help": "`betrokken --help` (all commands imported → lazily)",
    }
    lines = ["| change | before | after | speed-up |", "|---|---|---|---|"]
    for key, label in names.items():
        e = ch.get(key)
        if not e:
            continue
        before = next(v for k, v in e.items() if k.startswith("before_") and isinstance(v, dict))
        after = next(v for k, v in e.items() if k.startswith("after_") and isinstance(v, dict))
        unit = next(k for k in e if k.startswith("before_") and isinstance(e[k], dict))[7:]
        lines.append(
            f"| {label} | {fig(before)} {unit} | {fig(after)} {unit} | ×{fig(e.get('speedup'))} |"
        )
    e = ch.get("import_trail")
    if e:
        lines.append(
            f"| bytes per imported registration (SQLite) | {e['bytes_per_registration_before']} | "
            f"{e['bytes_per_registration_after']} | |"
        )
    return "\n".join(lines)


def national(d: dict[str, Any]) -> str:
    """A national deployment from the measured costs: the arithmetic shown."""
    regs = 50_000_000
    orgs = 1_000
    regions = 25
    per_org = regs // orgs
    imp = d["import"].get("sqlite") or {}
    bytes_reg = med(imp.get("bytes_per_registration"))
    per_s = med(imp.get("per_s"))
    voprf = med(d["crypto"].get("voprf_batch_us_per_element"))
    q50 = d["query"].get("50") if isinstance(d["query"].get("50"), dict) else None
    qps5 = med(d["query"]["5"]["qps"]) if isinstance(d["query"].get("5"), dict) else None
    rec_bytes = d["log"].get("record_bytes")
    rec_q = d["log"].get("records_per_question")
    lines = [
        "Assumptions: 25 regions of ~40 organisations, each organisation one node; "
        "50 million registrations (50,000 per organisation on average); every region's "
        "Zorg- en Veiligheidshuis and partners ask 2,000 questions per working day "
        "(50,000 a day nationally, 250 days a year); 10 years of log.",
        "",
    ]
    if bytes_reg:
        total = regs * bytes_reg
        lines.append(
            f"* **Node storage**: {regs:,} × {bytes_reg:g} B = {total / 1e9:.1f} GB in all; "
            f"{per_org:,} × {bytes_reg:g} B = {per_org * bytes_reg / 1e6:.0f} MB for an average "
            f"organisation, {2_000_000 * bytes_reg / 1e9:.1f} GB for one holding 2 million "
            "(a national police or municipality export). SQLite suffices for every node."
        )
    if per_s:
        lines.append(
            f"* **Import**: at {per_s:g} rows/s an average organisation's full export takes "
            f"{per_org:,} / {per_s:g} = {per_org / per_s / 60:.1f} min; all 50 million once: "
            f"{regs / per_s / 3600:,.0f} node-hours, spread over 1,000 nodes "
            f"{regs / per_s / 3600 / orgs * 60:.0f} min each."
        )
    if voprf:
        cpu = regs * voprf / 1e6 / 3600
        lines.append(
            f"* **Key service CPU for a full re-import**: {regs:,} × {voprf:g} µs (all VOPRF work, "
            f"client and server, batched) = {cpu:,.1f} core-hours; the key service's own share "
            "is about a third (one multiplication and the proof per element against three on "
            f"the client), so about {cpu / 3:,.1f} core-hours: a re-import of everything fits a "
            "night on a few cores."
        )
    per_region_day = 2_000
    if rec_bytes and rec_q:
        records = per_region_day * 250 * 10 * rec_q
        lines.append(
            "* **Coordinator log after 10 years** (one coordinator per region): "
            f"{per_region_day:,} × 250 × 10 × {rec_q:g} records = "
            f"{records / 1e6:.1f} million records of ~{rec_bytes:g} B = "
            f"{records * rec_bytes / 1e9:.1f} GB per region (before pruning "
            "at the retention term); nationally, one coordinator: "
            f"{records * regions / 1e6:,.0f} million records. "
            + (
                "The growth ratio above says a question at that size costs what it costs at "
                "1,000 records."
                if (d["log"].get("growth_ratio") or 99) <= 1.2
                else "The proofs stay cheap at that size (the witness's consistency proof "
                "above), but this run's questions did slow down as the log grew: see 'Where "
                "the goals are missed'."
            )
        )
    cpu = d.get("cpu") or {}
    cpu_ns = sorted((int(n) for n, e in cpu.items() if n.isdigit() and isinstance(e, dict)))
    added = med(cpu.get("per_added_node_ms"))
    if cpu_ns and added is not None:
        base = cpu_ns[-1] if cpu_ns[-1] <= 40 else max([n for n in cpu_ns if n <= 40] or [10])
        at_base = med(cpu[str(base)]["total"]) if str(base) in cpu else None
        if at_base is not None:
            total40 = at_base + added * (40 - base)
            lines.append(
                f"* **CPU of a question in a region of 40 nodes**: {at_base:g} ms at N={base} + "
                f"{40 - base} × {added:g} ms per added node = {total40:.0f} ms of CPU, spread "
                "over the 43 processes; on one machine of 2 cores at least "
                f"{total40 / 2:.0f} ms of wall time, on a machine per node far less."
            )
    if q50:
        load = med(q50.get("load1"))
        lines.append(
            "* **A question in a region of 50 nodes, wall**: measured p50 "
            f"{med(q50['p50_ms']):g} ms with all 53 processes on this 2-core machine"
            + (f" (load {load:g} in its windows)" if load is not None else "")
            + "; with a machine per node the CPU above is spread and the wait for cores gone."
        )
    if qps5:
        peak = per_region_day / (8 * 3600) * 5  # a working day's questions, peaks of 5x
        lines.append(
            f"* **Throughput**: {per_region_day:,} questions in an 8-hour day is "
            f"{per_region_day / 28_800:.2f}/s, peaks of 5× {peak:.2f}/s per region; measured "
            f"{qps5:g} questions/s with 8 concurrent askers at N=5 on 2 cores — one regional "
            "coordinator and key service on a small machine carry it with a wide margin; one "
            "national coordinator at 25 × that peak needs "
            f"{25 * peak:.1f}/s, {'within' if qps5 >= 25 * peak else 'beyond'} what was "
            "measured here."
        )
    return "\n".join(lines)


def main(doc: Path = DOC, results: Path = RESULTS) -> int:
    data = json.loads(results.read_text())
    if any("kind" not in g for g in data.get("goals", [])):
        # a results file from before the goals had kinds: its goals made anew from its figures
        from bench.run import goals as make_goals

        data["goals"] = make_goals(data)
    text = doc.read_text()
    for name, make in (
        ("cpu", cpu_table),
        ("figures", figures),
        ("goals", goals),
        ("misses", misses),
        ("changes", changes),
        ("national", national),
    ):
        pattern = re.compile(rf"(<!-- bench:{name} -->\n)(?:.*?\n)?(<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            print(f"docs/performance.md has no bench:{name} block", file=sys.stderr)
            return 1
        body = make(data)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    doc.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
