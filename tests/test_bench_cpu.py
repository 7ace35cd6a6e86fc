"""The bench's CPU accounting, its goals and its report (bench/cpu.py, run.py, report.py).

The arithmetic is checked on synthetic /proc readings and a synthetic results file, so a wrong
subtraction, a wrong per-node figure or a goal computed against the wrong floor fails here rather
than in a 25-minute run whose figures nobody can check by hand.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bench import cpu, report
from bench.net import _quiet_witness, _without_asker_node
from bench.run import cpu_goals
from bench.stats import figure


def _stat(pid: int, name: str, utime: int, stime: int) -> str:
    # the fields of /proc/<pid>/stat: pid (comm) state ppid pgrp ... utime (14) stime (15) ...
    rest = ["S", "1", "1", "1", "0", "-1", "4194560", "10", "0", "0", "0"]
    return f"{pid} ({name}) " + " ".join([*rest, str(utime), str(stime), "0", "0", "20"]) + "\n"


def test_utime_and_stime_are_read_after_a_command_name_with_spaces_and_parentheses() -> None:
    assert cpu.stat_ticks(_stat(42, "python -m (odd) name", 1234, 56)) == 1290


def test_the_cpu_of_this_process_from_proc_agrees_with_os_times() -> None:
    sum(i * i for i in range(200_000))  # some CPU of our own
    times = os.times()
    own = cpu.cpu_seconds(os.getpid())
    assert abs(own - (times.user + times.system)) <= 0.05


def test_the_idle_rate_over_the_window_is_subtracted_before_dividing_by_the_questions() -> None:
    idle_start = cpu.Reading(100.0, {"coordinator": 10.0, "node-a": 5.0})
    idle_end = cpu.Reading(102.0, {"coordinator": 10.2, "node-a": 5.0})  # 0.1 s/s idle
    start = cpu.Reading(102.0, {"coordinator": 10.2, "node-a": 5.0})
    end = cpu.Reading(106.0, {"coordinator": 11.4, "node-a": 5.8})  # a 4 s window
    per = cpu.per_question(idle_start, idle_end, start, end, questions=20)
    # coordinator: 1.2 s used, 0.4 s of it idle work -> 0.8 s / 20 = 40 ms; node: 0.8 s / 20
    assert per["coordinator"] == pytest.approx(40.0)
    assert per["node-a"] == pytest.approx(40.0)


def test_a_window_without_questions_or_without_length_is_refused() -> None:
    a = cpu.Reading(1.0, {"x": 0.0})
    b = cpu.Reading(2.0, {"x": 0.0})
    with pytest.raises(ValueError):
        cpu.per_question(a, b, a, b, questions=0)
    with pytest.raises(ValueError):
        cpu.per_question(a, a, a, b, questions=3)


def test_each_node_is_the_mean_over_the_nodes_and_the_total_counts_every_process() -> None:
    kinds = cpu.by_kind(
        {"requester": 10.0, "keyservice": 4.0, "coordinator": 6.0, "node-a": 2.0, "node-b": 4.0}
    )
    assert kinds["node"] == 3.0
    assert kinds["node_max"] == 4.0
    assert kinds["nodes_total"] == 6.0
    assert kinds["total"] == 26.0
    assert kinds["requester"] == 10.0


def test_the_protocol_needs_a_quorum_plus_one_cosignatures_and_a_commit_per_party() -> None:
    counts = cpu.protocol_counts(nodes=10, quorum=6)
    assert counts["cosign"] == 7
    # the coordinator twice, each node once, each cosigning witness once, the requester once,
    # less the append already in the question floor
    assert counts["durable_commit"] == 2 + 10 + 7 + 1 - 1
    assert counts["verify_cosignature"] == 11 * 6 + 7
    assert counts["inclusion_proof"] == counts["verify_inclusion"] == 11
    assert counts["consistency_proof"] == 1
    # never more cosignatures than there are witnesses
    assert cpu.protocol_counts(nodes=2, quorum=2)["cosign"] == 2


def test_the_protocol_floor_adds_each_primitive_count_times_its_cost() -> None:
    counts = {"sign": 2, "durable_commit": 3}
    units = {"sign": 50.0, "durable_commit": 150.0, "api_open_checkpoint": 999.0}
    assert cpu.protocol_extra_ms(counts, units) == pytest.approx(0.55)


def test_the_cpu_per_added_node_is_a_slope_over_cpu_per_run_not_over_wall() -> None:
    totals = {2: [20.0, 22.0, 21.0], 5: [29.0, 31.0, 30.0], 10: [44.0, 46.0, 45.0]}
    added = cpu.added_per_node(totals)
    assert added is not None
    assert added["median"] == pytest.approx(3.0)
    assert added["runs"] == 3
    assert cpu.added_per_node({5: [1.0]}) is None


def _results(total10: float = 40.0, floor10: float = 20.0) -> dict[str, Any]:
    def cpu_at(total: float, floor: float, node: float, coordinator: float) -> dict[str, Any]:
        return {
            "requester": figure([8.0]),
            "keyservice": figure([3.0]),
            "coordinator": figure([coordinator]),
            "node": figure([node]),
            "node_max": figure([node]),
            "total": figure([total]),
            "floor": figure([floor]),
            "protocol_floor": figure([floor * 1.25]),
            "total_floor_ratio": round(total / floor, 3),
            "total_protocol_floor_ratio": round(total / (floor * 1.25), 3),
            "witness_quorum": 3,
            "load1": figure([4.0]),
            "protocol_counts": {"sign": 2},
        }

    return {
        "at": "2026-01-01T00:00:00+00:00",
        "quick": True,
        "seconds": 100,
        "machine": {
            "nproc": 2,
            "cpu": "test",
            "python": "3.11",
            "loadavg_at_start": [1.0, 1.0, 1.0],
            "loadavg_at_end": [2.0, 2.0, 2.0],
            "loadavg_through_run": figure([1.0, 2.0]),
        },
        "sizes": {"registrations_per_node": 1000, "import_rows": 10},
        "crypto": {},
        "cpu": {
            "5": cpu_at(24.0, 12.0, 1.2, 2.5),
            "10": cpu_at(total10, floor10, 2.0, 4.0),
            "per_added_node_ms": figure([3.2]),
            "units_us": {"sign": figure([40.0]), "api_open_checkpoint": figure([140.0])},
        },
        "query": {
            "5": {"p50_ms": figure([30.0]), "qps": figure([70.0])},
            "10": {"p50_ms": figure([35.0]), "qps": None},
        },
        "fanout": {},
        "log": {"p50_ms": {}, "witness_consistency_ms": {}},
        "cli": {"query_cpu_ms": figure([400.0]), "help_cpu_ms": figure([100.0])},
        "import": {},
        "batch": {},
        "coordinator": {"rss_mb": {"registrations=1000,log=1000": 90.0}, "difference": 0.0},
        "postgres": {},
        "goals": [],
    }


def test_the_cpu_goals_compare_with_the_floors_and_with_what_two_cores_can_give() -> None:
    goals = {g["what"]: g for g in cpu_goals(_results())}
    assert goals["cpu total / floor at N=10"]["measured"] == 2.0
    assert goals["cpu total / floor at N=10"]["met"] is True
    assert goals["cpu total / protocol floor at N=10"]["measured"] == 1.6
    assert goals["cpu total / protocol floor at N=10"]["met"] is False
    assert goals["cpu.10.node ms (each node)"]["met"] is False
    assert goals["cpu.5.node ms (each node)"]["met"] is True
    assert goals["cpu.10.coordinator ms"]["met"] is False
    assert goals["cpu.per_added_node_ms"]["met"] is False
    wall = goals["query.p50_ms at N=10 against 1.3 x (cpu total / 2 cores) + 5 ms"]
    assert wall["goal"] == pytest.approx(1.3 * 40.0 / 2 + 5)  # 31 ms against a p50 of 35
    assert wall["met"] is False
    qps = goals["query.qps at N=5, 8 askers, against 0.8 x (2 cores / cpu total)"]
    assert qps["goal"] == pytest.approx(0.8 * 2000 / 24.0, abs=0.05)  # 66.7 q/s against 70
    assert qps["met"] is True
    assert goals["cli.query_cpu_ms"]["met"] is False
    assert goals["cli.help_cpu_ms"]["met"] is True


def test_a_goal_whose_figures_were_not_measured_says_so_rather_than_passing() -> None:
    results = _results()
    del results["cpu"]["10"]
    goals = {g["what"]: g for g in cpu_goals(results)}
    assert goals["cpu.10.coordinator ms"]["met"] is None
    assert goals["query.p50_ms at N=10 against 1.3 x (cpu total / 2 cores) + 5 ms"]["met"] is None


def test_the_report_writes_the_cpu_table_between_its_markers_and_keeps_the_prose(
    tmp_path: Path,
) -> None:
    results = tmp_path / "latest.json"
    results.write_text(json.dumps(_results()))
    doc = tmp_path / "performance.md"
    blocks = "".join(
        f"<!-- bench:{name} -->\nold\n<!-- /bench:{name} -->\n"
        for name in ("cpu", "figures", "goals", "changes", "national")
    )
    doc.write_text("# Prose kept\n" + blocks + "Closing prose.\n")
    assert report.main(doc, results) == 0
    text = doc.read_text()
    assert text.startswith("# Prose kept\n") and text.endswith("Closing prose.\n")
    assert "\nold\n" not in text
    table = text.split("<!-- bench:cpu -->")[1].split("<!-- /bench:cpu -->")[0]
    assert "| CPU ms per question | N=5 | N=10 |" in table
    assert "| **total** | 24 (24–24, 1 runs) | 40 (40–40, 1 runs) |" in table
    assert "| total / question floor | 2 | 2 |" in table
    assert "3.2 ms (3.2–3.2, 1 runs)" in table
    assert "api" not in table.split("The same signatures")[0].split("| primitive")[1]
    # run twice, the same document: the blocks are replaced, not appended to
    assert report.main(doc, results) == 0
    assert doc.read_text() == text


def test_the_bench_network_gives_the_asker_no_node_and_the_nodes_a_long_witness_interval(
    tmp_path: Path,
) -> None:
    network = tmp_path / "network.toml"
    network.write_text(
        'name = "x"\n\n[[organisations]]\nid = "zvh-bench"\nnode_address = "127.0.0.1:1"\n'
        'domain = "zvh"\n\n[[organisations]]\nid = "org-01"\nnode_address = "127.0.0.1:2"\n'
    )
    _without_asker_node(network, "zvh-bench")
    text = network.read_text()
    assert 'node_address = "127.0.0.1:1"' not in text
    assert 'node_address = "127.0.0.1:2"' in text
    node = tmp_path / "node.toml"
    node.write_text('organisation = "org-01"\n\n[tls]\nca = "ca.crt"\n')
    _quiet_witness(node)
    top = node.read_text().split("[tls]")[0]
    assert f"witness_interval_seconds = {3600.0}" in top


def test_a_bench_network_whose_port_was_taken_moves_every_address_to_a_free_range(
    tmp_path: Path,
) -> None:
    from bench.net import move_ports
    from betrokken.app.devnet import DevNetwork

    files = {}
    for name, text in {
        "network.toml": 'address = "127.0.0.1:21050"\nnode_address = "127.0.0.1:21051"\n',
        "ks.toml": 'metrics_listen = "127.0.0.1:21052"\n',
        "coord.toml": 'metrics_listen = "127.0.0.1:21053"\n',
        "node.toml": 'metrics_listen = "127.0.0.1:21054"\ndatabase = "sqlite:///node.db"\n',
        "portal.toml": 'listen = "127.0.0.1:21055"\n',
    }.items():
        files[name] = tmp_path / name
        files[name].write_text(text)
    net = DevNetwork(
        tmp_path,
        files["network.toml"],
        files["ks.toml"],
        files["coord.toml"],
        {"org-01": files["node.toml"]},
        {"org-01": files["portal.toml"]},
    )
    move_ports(net)
    texts = "".join(f.read_text() for f in files.values())
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", texts)]
    assert len(ports) == 6 and len(set(ports)) == 6
    assert not {21050, 21051, 21052, 21053, 21054, 21055} & set(ports)
    assert ports == sorted(ports)  # the order kept: the network's address first, then the nodes'
    assert 'database = "sqlite:///node.db"' in files["node.toml"].read_text()
