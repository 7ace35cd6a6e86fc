"""A real network for end-to-end tests: every service its own process, mTLS on loopback.

One network for the tests of this folder (``running``, session-scoped; the portal's tests have
their own, made the same way: :func:`start_running`): the key service, the coordinator and five
nodes, started at once, filled from case-system exports. The commands a test gives it
(``running.run``, ``running.query``) run in this process against those servers
(:func:`tests.cli.invoke`): what is tested is what the command does over the real network, not
the interpreter starting. ``running.run_process`` starts the command as its own process where that
is the point."""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, update

from betrokken.app.cluster import Cluster
from betrokken.app.demo import (
    GGZ,
    ORGS,
    POLITIE,
    ZVH,
    GroundTruth,
    synthetic_population,
    write_export,
)
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.clock import utcnow
from betrokken.config.load import load_network, load_node
from betrokken.config.schema import Network
from betrokken.crypto.bsn import Bsn
from betrokken.node.deferrals import DeferredQuestionRow
from betrokken.node.server import open_store
from betrokken.node.servicer import NodeServicer
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.cli import Done, invoke, run_process
from tests.conftest import WORKER, network_ports
from tests.harness import NetKeys

PER_NODE = 40
Result = Done  # what a command gave: exit code, standard output and error (tests/cli.py)


@dataclass
class Running:
    net: DevNetwork
    network: Network
    cluster: Cluster
    truth: GroundTruth
    named: dict[str, Bsn]
    typed: set[str] = field(default_factory=set)  # every BSN string given to any command

    @property
    def keys(self) -> NetKeys:
        return NetKeys(self.net)

    def run(self, *args: str, stdin: str | None = None) -> Done:
        """``betrokken ARGS`` against this network, in this process."""
        return invoke(*args, stdin=stdin)

    def run_process(self, *args: str, stdin: str | None = None) -> Done:
        """``betrokken ARGS`` as its own process (where the process boundary is the point)."""
        return run_process(*args, stdin=stdin)

    def query(self, org: str, bsn: str, purpose: str, case: str = "", *extra: str) -> Done:
        """Ask as the CLI's user "tester", under ``case`` (default: a case of the person's own:
        one case reference holds at most a household's persons a day)."""
        self.typed.add(bsn)
        case = case or f"CASE-{bsn[-5:]}"
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

    def start_node(self, org: str) -> None:
        """Start ``org``'s node again and wait until the coordinator reaches it.

        A stopped node's connection at the coordinator backs off before it tries again, so for a
        moment after the node is back a question still finds it unreachable (an incomplete
        answer, never a "no"). The sign that it is reached: a question that asks it is answered
        completely."""
        self.cluster.start_node(org)
        self.wait_until_reached(org)

    def wait_until_reached(self, org: str) -> None:
        """Ask (for a person known nowhere) until no node that the question asks is unreachable
        (whatever the node answers, even a wrong answer a test planted, it was reached)."""
        asker, purpose = (ZVH, "zvh-triage") if org != ZVH else (POLITIE, "zsm-context")
        deadline = time.monotonic() + 60
        while True:
            probe = self.query(asker, self.named["nowhere"].digits, purpose, "HARNESS-REACHED")
            persons = probe.json.get("persons", []) if probe.stdout.startswith("{") else []
            outcomes = [o["outcome"] for p in persons for o in p["organisations"]]
            if outcomes and "unreachable" not in outcomes:
                return
            assert time.monotonic() < deadline, f"{org} not reached again:\n{probe.output}"
            time.sleep(0.2)

    def wait_until_answered(self) -> None:
        """Ask until a question is answered completely: the sign that the network is ready (the
        coordinator has reached every node, each node has witnessed its log)."""
        deadline = time.monotonic() + 60
        while True:
            probe = self.query(ZVH, self.named["nowhere"].digits, "zvh-triage", "HARNESS-READY")
            if probe.code == 0:
                return
            assert time.monotonic() < deadline, f"the network never answered:\n{probe.output}"
            time.sleep(0.2)

    def end_the_term(self, org: str, *answer_ids: str) -> None:
        """The term of these deferred questions at ``org`` ends now: the test's clock, not the
        network's 8 hours (zsm-context's term for the GGZ's professionals).

        It waits until the node's trail writer has kept each question (a moment after the
        answer), then moves their deadline to now; the node's own loop then delivers their late
        answers on its next round, exactly as when a real term ends."""
        store = open_store(load_node(self.net.node_configs[org]))
        wanted = DeferredQuestionRow.answer_id.in_(answer_ids)
        try:
            deadline = time.monotonic() + 60
            while True:
                with store.engine.connect() as conn:
                    kept = conn.execute(select(DeferredQuestionRow.answer_id).where(wanted))
                    if {row[0] for row in kept} >= set(answer_ids):
                        break
                assert time.monotonic() < deadline, f"{org} never kept {answer_ids}"
                time.sleep(0.1)
            with store.engine.begin() as conn:
                conn.execute(update(DeferredQuestionRow).where(wanted).values(deadline=utcnow()))
        finally:
            store.engine.dispose()

    def all_bsns(self) -> set[str]:
        people = {b.digits for regs in self.truth.registrations.values() for b in regs}
        return people | {b.digits for b in self.named.values()} | self.typed


def made_once_per_run(tmp_path_factory: pytest.TempPathFactory, which: str) -> None:
    """Fail when another worker of this run already made the network ``which``.

    The tests on one network read what earlier ones left (the P1 scans run last and look for
    every BSN typed), so they run on one worker, in order: tests/conftest.py puts them in one
    group and ``--dist loadgroup`` (pytest's options) keeps a group on one worker. The workers
    share the run's temporary folder; the first to make a network leaves its name there."""
    if not WORKER:
        return  # one process runs every test
    mark = tmp_path_factory.getbasetemp().parent / f"network-{which}"
    try:
        fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AssertionError(
            f"worker {mark.read_text() or '?'} already runs this run's {which} network: run the "
            "workers with --dist loadgroup (pytest's options in pyproject.toml) so that its "
            "tests stay on one worker"
        ) from None
    with os.fdopen(fd, "w") as out:
        out.write(WORKER)


def start_running(tmp_path_factory: pytest.TempPathFactory, which: str) -> Iterator[Running]:
    """A network of :data:`ORGS`, running and filled, until the generator is closed.

    Two are made in a run, each once: this folder's (``which="e2e"``) and the portal tests'
    (tests/portal/conftest.py, ``which="portal"``), so that the two workers of `make test` each
    drive one (docs/adr/0031-two-test-workers.md)."""
    made_once_per_run(tmp_path_factory, which)
    base = tmp_path_factory.mktemp(which)
    net = init_network(
        base / "network",
        ORGS,
        name="e2e",
        base_port=network_ports(len(ORGS)),
        service_users=("tester", "regisseur", "v.isser", "miss.onbekend"),
    )
    # One organisation declines a purpose outright, to test 'declined'.
    policy = 'organisation = "gemeente-haarlem"\npurpose = "zsm-context"\nlevel = '
    text = net.network_file.read_text()
    assert policy + '"organisation"' in text
    text = text.replace(policy + '"organisation"', policy + '"none"')
    net.network_file.write_text(text)
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
        state.wait_until_answered()
        yield state
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The network of the tests in this folder, made once in a run."""
    yield from start_running(tmp_path_factory, "e2e")


@pytest.fixture
def ggz_only(running: Running) -> Bsn:
    """Someone registered at the GGZ and nowhere else."""
    for bsn in running.truth.registrations[GGZ]:
        if running.truth.where(bsn) == {GGZ}:
            return bsn
    raise AssertionError("population has no GGZ-only person")


class RecordingNode(NodeServicer):
    """A node that keeps every request it receives (the 'ten-line patch' of a curious admin)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[pb.LookupRequest] = []

    def Lookup(self, request: pb.LookupRequest, context: Any) -> pb.LookupResponse:
        kept = pb.LookupRequest()
        kept.CopyFrom(request)
        self.received.append(kept)
        return super().Lookup(request, context)


@contextmanager
def replaced_node(
    running: Running, org_id: str, tls_of: str | None = None, network: Network | None = None
) -> Iterator[RecordingNode]:
    """Run ``org_id``'s node in this process (real gRPC, mutual TLS, its own database and keys),
    recording what it receives; with ``tls_of`` it presents that organisation's certificate;
    with ``network`` it reads that network file instead of the one on disk (a setting only this
    node has, such as another organisation's case pattern the asker's copy lacks)."""
    from betrokken.config.load import load_node
    from betrokken.identity.keyfiles import read_envelope_key
    from betrokken.identity.rpc import make_server
    from betrokken.node.server import TrailWriter, open_store, open_witness

    loaded = load_node(running.net.node_configs[org_id])
    network = network or loaded.network
    org = network.organisation(org_id)
    assert org is not None and org.node_address
    running.cluster.stop_node(org_id)
    store = open_store(loaded)
    key = read_envelope_key(loaded.resolve(loaded.component.envelope_key or ""), org.envelope_key)
    servicer = RecordingNode(network, org, store, key, open_witness(store))
    tls = load_node(running.net.node_configs[tls_of]).tls if tls_of else loaded.tls
    server = make_server(org.node_address, tls)
    pb_grpc.add_NodeServicer_to_server(servicer, server)
    writer = TrailWriter(store, network, org_id)
    stop = threading.Event()
    thread = threading.Thread(target=writer.loop, args=(0.2, stop), daemon=True)
    server.start()
    thread.start()
    try:
        if tls_of is None:  # an impostor is never reached: that is the test
            running.wait_until_reached(org_id)  # the coordinator's connection backs off
            servicer.received.clear()  # what the test sends, nothing of the wait
        yield servicer
    finally:
        server.stop(0).wait()
        stop.set()
        thread.join()
        writer.drain()
        store.engine.dispose()
        running.start_node(org_id)
