"""The registration API's gRPC door on loopback with TLS: the same service as the HTTP gateway,
a system known by its access token or its client certificate's common name, closed to others."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from betrokken.app.devnet import DevNetwork
from betrokken.config.load import load_node
from betrokken.config.schema import FeedSystem, Network, default_server_name
from betrokken.crypto.bsn import generate_bsn
from betrokken.identity.pki import Issued, issue_certificate
from betrokken.node.feeds_api import FeedService, Tokens, secret_sha256
from betrokken.node.feeds_grpc import PROBLEM_KEY, make_server
from betrokken.node.store import NodeStore
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.conftest import LocalPseudonymiser

SECRET = "grpc-secret"
NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
SYSTEMS = [
    FeedSystem(name="gcos", token_sha256=secret_sha256(SECRET)),
    FeedSystem(name="wijkteam", client_cert_cn="wijkteam-systeem"),
]


@pytest.fixture
def authority(devnet: DevNetwork) -> Issued:
    return Issued(
        key_pem=(devnet.directory / "ca" / "ca.key").read_bytes(),
        cert_pem=(devnet.directory / "ca" / "ca.crt").read_bytes(),
    )


@pytest.fixture
def served(
    devnet: DevNetwork, network: Network, database_url: str, local_pseudonymiser: LocalPseudonymiser
) -> Iterator[tuple[str, FeedService, Tokens, Path]]:
    loaded = load_node(devnet.node_configs["politie-test"])
    org = network.organisation("politie-test")
    assert org is not None
    store = NodeStore(database_url)
    service = FeedService(network, org, store, local_pseudonymiser, clock=lambda: NOW)
    tokens = Tokens(SYSTEMS)
    server, port = make_server("127.0.0.1:0", loaded.tls, service, tokens)
    server.start()
    yield f"127.0.0.1:{port}", service, tokens, Path(loaded.tls.ca)
    server.stop(grace=0).wait()
    store.engine.dispose()


def _stub(
    address: str, ca: Path, client: Issued | None = None
) -> tuple[grpc.Channel, pb_grpc.RegistrationsStub]:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    channel = grpc.secure_channel(
        address,
        credentials,
        options=[("grpc.ssl_target_name_override", default_server_name("politie-test"))],
    )
    return channel, pb_grpc.RegistrationsStub(channel)


def _changes(n: int, seed: int = 3) -> list[pb.FeedChange]:
    rng = random.Random(seed)
    return [pb.FeedChange(operation="register", bsn=generate_bsn(rng).digits) for _ in range(n)]


def test_a_system_with_an_access_token_registers_over_grpc_and_a_retry_changes_nothing(
    served: tuple[str, FeedService, Tokens, Path], authority: Issued
) -> None:
    address, service, tokens, ca = served
    issued = tokens.issue("gcos", SECRET)
    assert issued is not None
    channel, stub = _stub(address, ca, issue_certificate(authority, "urn:test:gcos", "gcos-host"))
    with channel:
        request = pb.FeedRequest(idempotency_key="grpc-call-1", changes=_changes(3))
        metadata = (("authorization", f"Bearer {issued.access_token}"),)
        first = stub.Apply(request, metadata=metadata)
        size = service.store.trail.size()
        again = stub.Apply(request, metadata=metadata)
    assert [r.outcome for r in first.results] == ["added"] * 3
    assert first == again
    assert service.store.trail.size() == size


def test_grpc_refuses_a_call_without_credentials_with_a_problem_document(
    served: tuple[str, FeedService, Tokens, Path], authority: Issued
) -> None:
    address, service, _tokens, ca = served
    unlisted = issue_certificate(authority, "urn:test:other", "ander-systeem")
    channel, stub = _stub(address, ca, unlisted)
    with channel, pytest.raises(grpc.RpcError) as refused:
        stub.Apply(
            pb.FeedRequest(idempotency_key="grpc-call-2", changes=_changes(1)),
            metadata=(("authorization", "Bearer not-a-token"),),
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    trailing = dict(refused.value.trailing_metadata() or ())
    problem = json.loads(trailing[PROBLEM_KEY])
    assert problem["title"] == "Dit systeem mag geen registraties aanleveren"
    assert problem["status"] == 403
    # Without a client certificate there is no connection at all.
    channel, stub = _stub(address, ca)
    with channel, pytest.raises(grpc.RpcError) as no_tls:
        stub.Apply(pb.FeedRequest(idempotency_key="grpc-call-5", changes=_changes(1)))
    assert no_tls.value.code() is grpc.StatusCode.UNAVAILABLE
    assert service.store.trail.size() == 0


def test_a_client_certificate_names_a_listed_system_and_no_other(
    served: tuple[str, FeedService, Tokens, Path], authority: Issued
) -> None:
    address, service, _tokens, ca = served
    listed = issue_certificate(authority, "urn:test:wijkteam", "wijkteam-systeem")
    channel, stub = _stub(address, ca, listed)
    with channel:
        answer = stub.Apply(pb.FeedRequest(idempotency_key="grpc-call-3", changes=_changes(1)))
    assert [r.outcome for r in answer.results] == ["added"]
    record = next(iter(service.store.trail.records())).entry
    assert record is not None and record.user == "feed:wijkteam"
    # The attacker's move: a certificate of the same CA, for a system the node does not list.
    other = issue_certificate(authority, "urn:test:other", "ander-systeem")
    channel, stub = _stub(address, ca, other)
    with channel, pytest.raises(grpc.RpcError) as refused:
        stub.Apply(pb.FeedRequest(idempotency_key="grpc-call-4", changes=_changes(1, seed=9)))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert service.store.trail.size() == 1
