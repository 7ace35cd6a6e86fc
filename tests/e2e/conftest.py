"""A real network for end-to-end tests: every service its own process, mTLS on loopback."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from betrokken.cluster import Cluster, betrokken_command
from betrokken.config.devnet import DevNetwork, init_network
from betrokken.config.load import load_network
from betrokken.config.schema import Network
from betrokken.crypto.bsn import Bsn
from betrokken.demo import GGZ, ORGS, GroundTruth, synthetic_population, write_export

PER_NODE = 40


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Running:
    net: DevNetwork
    network: Network
    cluster: Cluster
    truth: GroundTruth
    named: dict[str, Bsn]
    typed: set[str] = field(default_factory=set)  # every BSN string given to any command

    def run(self, *args: str) -> Result:
        done = subprocess.run(
            betrokken_command(*args), capture_output=True, text=True, check=False, timeout=120
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def query(self, org: str, bsn: str, purpose: str, case: str = "CASE-1", *extra: str) -> Result:
        self.typed.add(bsn)
        return self.run(
            "query",
            "--config",
            str(self.net.node_configs[org]),
            "--bsn",
            bsn,
            "--purpose",
            purpose,
            "--case",
            case,
            "--user",
            "tester",
            "--json",
            *extra,
        )

    def all_bsns(self) -> set[str]:
        people = {b.digits for regs in self.truth.registrations.values() for b in regs}
        return people | {b.digits for b in self.named.values()} | self.typed


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    base = tmp_path_factory.mktemp("e2e")
    net = init_network(base / "network", ORGS, name="e2e")
    # One organisation declines a purpose outright, to test 'declined'.
    with net.network_file.open("a") as handle:
        handle.write(
            '\n[[policies]]\norganisation = "gemeente-haarlem"\npurpose = "zsm-context"\n'
            'level = "none"\n'
        )
    truth, named = synthetic_population(random.Random(7), ORGS, PER_NODE)
    # Some people registered only at the GGZ, for the defer and domain tests.
    cluster = Cluster(net)
    cluster.start()
    state = Running(net, load_network(net.network_file), cluster, truth, named)
    exports = base / "case-system-exports"  # outside the network folder, like a partner's system
    exports.mkdir()
    try:
        for org in ORGS:
            export = exports / f"{org}.csv"
            write_export(export, truth.registrations[org])
            result = state.run(
                "node", "import", "--config", str(net.node_configs[org]), str(export), "--quiet"
            )
            expected = len(truth.registrations[org])
            assert result.code == 2, result.stdout + result.stderr
            assert f"{expected} added, 0 updated, 0 unchanged, 1 rejected" in result.stdout
        shutil.rmtree(exports)
        yield state
    finally:
        cluster.stop()


@pytest.fixture
def ggz_only(running: Running) -> Bsn:
    """Someone registered at the GGZ and nowhere else."""
    for bsn in running.truth.registrations[GGZ]:
        if running.truth.where(bsn) == {GGZ}:
            return bsn
    raise AssertionError("population has no GGZ-only person")
