"""Refusals counted, not flooded (ADR 0017): a client refused again and again adds a
bounded number of records per minute to the coordinator's log.

The flood runs against a real coordinator servicer on a gRPC server with mutual TLS and a real
audit log; only the clock that decides where a minute ends is the test's.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from betrokken.app.devnet import DevNetwork
from betrokken.config.schema import Network
from betrokken.coordinator.ratelimit import INDIVIDUAL_PER_MINUTE, RefusalCounter
from betrokken.coordinator.servicer import CoordinatorServicer
from betrokken.coordinator.store import AuditStore
from betrokken.identity.rpc import channel, make_server
from betrokken.tally import MinuteTally
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.harness import NetKeys


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # the start of a minute

    def __call__(self) -> float:
        return self.now


def test_a_tally_records_the_first_events_of_a_minute_and_counts_the_rest() -> None:
    clock = Clock()
    tally = MinuteTally(clock, individual_per_minute=3, always_counted=frozenset({"limit"}))
    admitted = [tally.admit("zvh", "forged", "Query") for _ in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    assert tally.admit("politie", "forged") is True  # another caller has its own budget
    assert tally.admit("zvh", "limit", "GetCheckpoint") is False  # never one by one
    assert tally.due() == []  # the minute is not over
    clock.now += 60
    due = {(t.caller, t.kind): t.count for t in tally.due()}
    assert due == {("zvh", "forged"): 7, ("zvh", "limit"): 1}
    assert tally.due() == []  # handed out once
    assert tally.admit("zvh", "forged") is True  # a new minute, a new budget


@dataclass
class Served:
    address: str
    network: Network
    keys: NetKeys
    servicer: CoordinatorServicer
    clock: Clock

    def records(self) -> list[dict[str, object]]:
        return [
            json.loads(r.content)
            for r in self.servicer.store.log.records()
            if r.content is not None
        ]

    def stub(self, org: str) -> Iterator[pb_grpc.CoordinatorStub]:
        with channel(self.address, self.keys.tls(org), self.network.coordinator.tls_name) as ch:
            yield pb_grpc.CoordinatorStub(ch)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(devnet: DevNetwork, network: Network, tmp_path: Path) -> Iterator[Served]:
    keys = NetKeys(devnet)
    log_key = keys.log_key()
    store = AuditStore(f"sqlite:///{tmp_path / 'coordinator.db'}", log_key, log_key.name)
    clock = Clock()
    servicer = CoordinatorServicer(
        network, store, {}, refusals=RefusalCounter(clock), flush_every=None
    )
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, keys.tls("coordinator"))
    pb_grpc.add_CoordinatorServicer_to_server(servicer, server)
    server.start()
    try:
        yield Served(address, network, keys, servicer, clock)
    finally:
        server.stop(0).wait()
        store.engine.dispose()


def test_a_flood_of_refused_calls_adds_a_bounded_number_of_records(served: Served) -> None:
    limit = served.network.coordinator.rate_limit_per_minute
    refused: dict[grpc.StatusCode, int] = {}
    for stub in served.stub("politie-test"):
        for _ in range(limit + 100):  # the log-proof calls are rate-limited too
            try:
                stub.GetCheckpoint(pb.CheckpointRequest(), timeout=10)
            except grpc.RpcError as exc:
                refused[exc.code()] = refused.get(exc.code(), 0) + 1
        for _ in range(60):  # questions that are refused (no signed question in them)
            try:
                stub.Query(pb.QueryRequest(question=""), timeout=10)
            except grpc.RpcError as exc:
                refused[exc.code()] = refused.get(exc.code(), 0) + 1
    assert refused == {
        grpc.StatusCode.RESOURCE_EXHAUSTED: 100,
        grpc.StatusCode.INVALID_ARGUMENT: 60,
    }
    during = served.records()
    # 760 calls, 160 of them refused: within the minute only the first refusals one by one.
    assert len(during) == INDIVIDUAL_PER_MINUTE
    assert {r["reason"] for r in during} == {"BadInput"}
    served.clock.now += 60  # the minute is over: each count becomes one record
    assert served.servicer.flush_refusals() == 2
    counted = {r["reason"]: r["details"] for r in served.records()[len(during) :]}
    assert counted["RateLimited"]["count"] == "100"  # type: ignore[index]
    assert counted["RateLimited"]["methods"] == "Coordinator.GetCheckpoint"  # type: ignore[index]
    assert counted["BadInput"]["count"] == str(60 - INDIVIDUAL_PER_MINUTE)  # type: ignore[index]


def test_a_revoked_certificate_is_refused_recorded_and_its_flood_counted(
    served: Served, devnet: DevNetwork, tmp_path: Path
) -> None:
    """A second certificate for an organisation, issued by the network CA but not on the
    network file's allow-list, is what a revoked one is (its line removed)."""
    from betrokken.config.schema import TlsFiles
    from betrokken.identity.names import organisation_uri
    from betrokken.identity.pki import Issued, issue_certificate, write_issued

    ca = Issued(
        (devnet.directory / "ca" / "ca.key").read_bytes(),
        (devnet.directory / "ca" / "ca.crt").read_bytes(),
    )
    cert, key = write_issued(
        tmp_path, "revoked", issue_certificate(ca, organisation_uri("politie-test"), "politie")
    )
    tls = TlsFiles(certificate=str(cert), private_key=str(key), ca=str(ca_path(devnet)))
    codes = []
    with channel(served.address, tls, served.network.coordinator.tls_name) as ch:
        stub = pb_grpc.CoordinatorStub(ch)
        for _ in range(30):
            try:
                stub.GetCheckpoint(pb.CheckpointRequest(), timeout=10)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 30
    records = served.records()
    assert len(records) == INDIVIDUAL_PER_MINUTE
    assert all(r["reason"] == "CertificateRefused" for r in records)
    assert "allow-list" in str(records[0]["details"])
    served.clock.now += 60
    served.servicer.flush_refusals()
    last = served.records()[-1]
    assert last["reason"] == "CertificateRefused"
    assert last["details"]["count"] == str(30 - INDIVIDUAL_PER_MINUTE)  # type: ignore[index]


def ca_path(devnet: DevNetwork) -> Path:
    return devnet.directory / "ca" / "ca.crt"


def test_a_flood_counted_by_a_coordinator_killed_mid_minute_is_still_recorded(
    devnet: DevNetwork, network: Network, tmp_path: Path
) -> None:
    """The insider's friend: a client floods the coordinator with refused calls, and the
    coordinator is SIGKILLed before the minute ends. What it counted in memory would be gone;
    kept at its flush, it is recorded by the next coordinator before it serves."""
    keys = NetKeys(devnet)
    log_key = keys.log_key()
    url = f"sqlite:///{tmp_path / 'coordinator.db'}"
    clock = Clock()
    store = AuditStore(url, log_key, log_key.name)
    first = CoordinatorServicer(
        network, store, {}, refusals=RefusalCounter(clock), flush_every=None
    )
    for _ in range(INDIVIDUAL_PER_MINUTE + 25):
        first.refusals.admit("politie-test", "BadInput", "Coordinator.Query")
    for _ in range(40):
        first.refusals.admit("politie-test", "RateLimited", "Coordinator.GetCheckpoint")
    assert first.flush_refusals() == 0  # the minute runs on: nothing recorded, the counts kept
    clock.now += 30
    first.refusals.admit("politie-test", "RateLimited", "Coordinator.GetCheckpoint")
    first.flush_refusals()
    store.engine.dispose()  # killed: no final flush, its memory gone

    again = AuditStore(url, log_key, log_key.name)
    try:
        second = CoordinatorServicer(
            network, again, {}, refusals=RefusalCounter(clock), flush_every=None
        )
        records = [json.loads(r.content) for r in again.log.records() if r.content is not None]
        kept = {r["reason"]: r["details"] for r in records if "kept" in r.get("details", {})}
        assert kept["BadInput"]["count"] == "25"
        assert kept["RateLimited"]["count"] == "41"
        assert kept["RateLimited"]["methods"] == "Coordinator.GetCheckpoint"
        # Recorded once: a third start finds nothing left to record.
        assert second.record_kept_refusals() == 0
    finally:
        again.engine.dispose()


def test_a_coordinator_nobody_floods_writes_no_counts() -> None:
    """The flush runs every few seconds; while nobody is refused it must cost no write."""
    clock = Clock()
    counter = RefusalCounter(clock)
    assert counter.pending() == []
    counter.admit("zvh", "BadInput")  # recorded one by one: nothing counted
    assert counter.pending() == []
