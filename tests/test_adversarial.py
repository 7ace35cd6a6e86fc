"""Everything a peer controls, sent wrong over real mTLS gRPC: a clear error, no crash.

The services run in-process here (real servers on loopback); end-to-end tests run them as
processes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from betrokken.config.devnet import DevNetwork
from betrokken.config.load import load_coordinator, load_keyservice, load_node
from betrokken.config.schema import Network, TlsFiles
from betrokken.coordinator.fanout import GrpcNodeLink, NodeLink
from betrokken.coordinator.servicer import CoordinatorServicer
from betrokken.coordinator.store import AuditStore
from betrokken.crypto import oprf
from betrokken.crypto.bsn import parse_bsn
from betrokken.crypto.note import NoteKey
from betrokken.errors import QuotaExceeded, VerificationError
from betrokken.identity.rpc import channel, make_server
from betrokken.keyservice.client import Pseudonymiser
from betrokken.keyservice.keyfile import read_key
from betrokken.keyservice.servicer import KeyServiceServicer
from betrokken.keyservice.store import QuotaStore
from betrokken.node.servicer import NodeServicer
from betrokken.node.store import NodeStore
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Services:
    network: Network
    keyservice: str
    node: str
    coordinator: str
    org_tls: TlsFiles  # zvh-test
    coordinator_tls: TlsFiles
    keypair: oprf.KeyPair


@pytest.fixture(scope="module")
def services(devnet: DevNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    tmp = tmp_path_factory.mktemp("adversarial")
    ks = load_keyservice(devnet.keyservice_config)
    network = ks.network
    keypair = read_key(ks.resolve(ks.component.oprf_key), network.keyservice.public_key)
    servers = []

    ks_address = f"127.0.0.1:{_free_port()}"
    server = make_server(ks_address, ks.tls)
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(network, keypair, QuotaStore(f"sqlite:///{tmp / 'ks.db'}")), server
    )
    servers.append(server)

    node_cfg = load_node(devnet.node_configs["politie-test"])
    node_address = f"127.0.0.1:{_free_port()}"
    server = make_server(node_address, node_cfg.tls)
    org = network.organisation("politie-test")
    assert org is not None
    pb_grpc.add_NodeServicer_to_server(
        NodeServicer(network, org, NodeStore(f"sqlite:///{tmp / 'node.db'}")), server
    )
    servers.append(server)

    coord_cfg = load_coordinator(devnet.coordinator_config)
    coord_address = f"127.0.0.1:{_free_port()}"
    server = make_server(coord_address, coord_cfg.tls)
    links: dict[str, NodeLink] = {"politie-test": GrpcNodeLink(node_address, coord_cfg.tls)}
    pb_grpc.add_CoordinatorServicer_to_server(
        CoordinatorServicer(
            network, AuditStore(f"sqlite:///{tmp / 'c.db'}", LOG_KEY, LOG_KEY.name), links
        ),
        server,
    )
    servers.append(server)
    for s in servers:
        s.start()
    org_tls = load_node(devnet.node_configs["zvh-test"]).tls
    try:
        yield Services(
            network, ks_address, node_address, coord_address, org_tls, coord_cfg.tls, keypair
        )
    finally:
        for s in servers:
            s.stop(0)


def _call(
    address: str, tls: TlsFiles, stub_type: type, method: str, request: object
) -> grpc.RpcError:
    with channel(address, tls) as ch, pytest.raises(grpc.RpcError) as info:
        getattr(stub_type(ch), method)(request, timeout=10)
    return info.value  # type: ignore[return-value]


LOG_KEY = NoteKey.generate("betrokken/test-network/coordinator")
GOOD_ELEMENT = oprf.blind(b"999993653")[1]


# --- key service -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("elements", "words"),
    [
        ([b""], "size"),
        ([b"\x01" * 31], "size"),
        ([GOOD_ELEMENT, b"\x01" * 33], "1"),
        ([b"\x00" * 32], "identity"),
        ([b"\xff" * 32], "blinded element 0"),
        ([], "1 to"),
    ],
)
def test_keyservice_rejects_bad_elements(
    services: Services, elements: list[bytes], words: str
) -> None:
    request = pb.EvaluateRequest(
        key_id=services.network.keyservice.key_id, blinded_elements=elements
    )
    error = _call(
        services.keyservice, services.org_tls, pb_grpc.KeyServiceStub, "Evaluate", request
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (error.details() or "")


def test_keyservice_rejects_a_wrong_key_id_and_keeps_serving(services: Services) -> None:
    request = pb.EvaluateRequest(key_id="k1-other", blinded_elements=[GOOD_ELEMENT])
    error = _call(
        services.keyservice, services.org_tls, pb_grpc.KeyServiceStub, "Evaluate", request
    )
    assert error.code() == grpc.StatusCode.DATA_LOSS
    network = services.network.model_copy(
        update={
            "keyservice": services.network.keyservice.model_copy(
                update={"address": services.keyservice}
            )
        }
    )
    with Pseudonymiser(network, services.org_tls) as client:
        [pseudonym] = client.pseudonymise([parse_bsn("999993653")])
    assert pseudonym.value == oprf.evaluate(services.keypair.secret, b"999993653")


def test_keyservice_refuses_the_coordinator(services: Services) -> None:
    request = pb.EvaluateRequest(
        key_id=services.network.keyservice.key_id, blinded_elements=[GOOD_ELEMENT]
    )
    error = _call(
        services.keyservice, services.coordinator_tls, pb_grpc.KeyServiceStub, "Evaluate", request
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_quota_exhaustion_is_resource_exhausted(devnet: DevNetwork, tmp_path: Path) -> None:
    ks = load_keyservice(devnet.keyservice_config)
    small = ks.network.model_copy(
        update={"keyservice": ks.network.keyservice.model_copy(update={"default_daily_quota": 3})}
    )
    keypair = read_key(ks.resolve(ks.component.oprf_key), small.keyservice.public_key)
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, ks.tls)
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(small, keypair, QuotaStore(f"sqlite:///{tmp_path / 'q.db'}")), server
    )
    server.start()
    try:
        network = small.model_copy(
            update={"keyservice": small.keyservice.model_copy(update={"address": address})}
        )
        tls = load_node(devnet.node_configs["zvh-test"]).tls
        with Pseudonymiser(network, tls) as client:
            client.pseudonymise([parse_bsn("999993653")] * 3)
            assert client.quota_remaining == 0
            with pytest.raises(QuotaExceeded) as info:
                client.pseudonymise([parse_bsn("999993653")])
        assert "quota of 3" in info.value.message
        assert info.value.exit_code == 4
    finally:
        server.stop(0)


def test_client_detects_a_key_service_with_another_key(devnet: DevNetwork, tmp_path: Path) -> None:
    """A key service evaluating with a key other than the pinned one is caught by the proof."""
    ks = load_keyservice(devnet.keyservice_config)
    impostor = oprf.generate_key_pair()
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, ks.tls)
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(ks.network, impostor, QuotaStore(f"sqlite:///{tmp_path / 'i.db'}")),
        server,
    )
    server.start()
    try:
        network = ks.network.model_copy(
            update={"keyservice": ks.network.keyservice.model_copy(update={"address": address})}
        )
        tls = load_node(devnet.node_configs["zvh-test"]).tls
        with Pseudonymiser(network, tls) as client, pytest.raises(VerificationError):
            client.pseudonymise([parse_bsn("999993653")])
    finally:
        server.stop(0)


# --- node ----------------------------------------------------------------------------------------
def _lookup(services: Services, **changes: object) -> pb.LookupRequest:
    values: dict[str, object] = dict(
        requester_organisation="zvh-test",
        context=pb.QueryContext(purpose="zvh-triage", user="u", role="regisseur"),
        items=[
            pb.LookupItem(
                pseudonym=pb.Pseudonym(
                    value=b"\x05" * 64, key_id=services.network.keyservice.key_id
                ),
                case_reference="C",
            )
        ],
        answer_id="a-1",
    )
    values.update(changes)
    return pb.LookupRequest(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        (
            {
                "items": [
                    pb.LookupItem(
                        pseudonym=pb.Pseudonym(value=b"\x05" * 10, key_id="x"), case_reference="C"
                    )
                ]
            },
            "INVALID_ARGUMENT",
            "64 bytes",
        ),
        ({"items": []}, "INVALID_ARGUMENT", "1 to"),
        ({"answer_id": ""}, "INVALID_ARGUMENT", "answer_id"),
        ({"requester_organisation": ""}, "INVALID_ARGUMENT", "requester_organisation"),
        ({"context": pb.QueryContext(purpose="fishing", user="u")}, "PERMISSION_DENIED", "fishing"),
        (
            {"context": pb.QueryContext(purpose="zsm-context", user="u")},
            "PERMISSION_DENIED",
            "may not ask",
        ),
        (
            {
                "items": [
                    pb.LookupItem(
                        pseudonym=pb.Pseudonym(value=b"\x05" * 64, key_id="k-old"),
                        case_reference="C",
                    )
                ]
            },
            "DATA_LOSS",
            "k-old",
        ),
    ],
)
def test_node_rejects_malformed_lookups(
    services: Services, changes: dict[str, object], code: str, words: str
) -> None:
    error = _call(
        services.node,
        services.coordinator_tls,
        pb_grpc.NodeStub,
        "Lookup",
        _lookup(services, **changes),
    )
    assert error.code() == getattr(grpc.StatusCode, code)
    assert words in (error.details() or "")


def test_node_answers_the_coordinator(services: Services) -> None:
    with channel(services.node, services.coordinator_tls) as ch:
        response = pb_grpc.NodeStub(ch).Lookup(_lookup(services), timeout=10)
    assert [r.outcome for r in response.results] == [pb.NOT_INVOLVED]


def test_node_refuses_an_organisation(services: Services) -> None:
    error = _call(services.node, services.org_tls, pb_grpc.NodeStub, "Lookup", _lookup(services))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# --- coordinator ---------------------------------------------------------------------------------
def _query(
    services: Services,
    items: list[pb.QueryItem] | None = None,
    purpose: str = "zvh-triage",
    user: str = "u",
) -> pb.QueryRequest:
    default = [
        pb.QueryItem(
            pseudonym=pb.Pseudonym(value=b"\x05" * 64, key_id=services.network.keyservice.key_id),
            case_reference="C",
        )
    ]
    return pb.QueryRequest(
        context=pb.QueryContext(purpose=purpose, user=user, role="regisseur"),
        items=default if items is None else items,
    )


@pytest.mark.parametrize(
    ("kwargs", "code", "words"),
    [
        ({"items": []}, "INVALID_ARGUMENT", "1 to"),
        ({"user": ""}, "INVALID_ARGUMENT", "user"),
        ({"purpose": "fishing"}, "PERMISSION_DENIED", "not defined"),
        (
            {
                "items": [
                    pb.QueryItem(
                        pseudonym=pb.Pseudonym(value=b"\x05" * 64, key_id="k1-x"), case_reference=""
                    )
                ]
            },
            "INVALID_ARGUMENT",
            "case reference",
        ),
        (
            {
                "items": [
                    pb.QueryItem(
                        pseudonym=pb.Pseudonym(value=b"\x05" * 3, key_id="k1-x"), case_reference="C"
                    )
                ]
            },
            "INVALID_ARGUMENT",
            "64 bytes",
        ),
        (
            {
                "items": [
                    pb.QueryItem(
                        pseudonym=pb.Pseudonym(value=b"\x05" * 64, key_id="k1-x"),
                        case_reference="C",
                    )
                ]
                * 101
            },
            "INVALID_ARGUMENT",
            "1 to 100",
        ),
    ],
)
def test_coordinator_rejects_malformed_queries(
    services: Services, kwargs: dict[str, object], code: str, words: str
) -> None:
    error = _call(
        services.coordinator,
        services.org_tls,
        pb_grpc.CoordinatorStub,
        "Query",
        _query(services, **kwargs),
    )  # type: ignore[arg-type]
    assert error.code() == getattr(grpc.StatusCode, code)
    assert words in (error.details() or "")


def test_coordinator_answers_after_all_that(services: Services) -> None:
    with channel(services.coordinator, services.org_tls) as ch:
        response = pb_grpc.CoordinatorStub(ch).Query(_query(services), timeout=10)
    assert response.complete
    assert [a.organisation_id for a in response.items[0].answers] == ["politie-test"]


def test_a_port_in_use_is_a_clear_error(services: Services, devnet: DevNetwork) -> None:
    from betrokken.errors import Unavailable

    tls = load_node(devnet.node_configs["politie-test"]).tls
    with pytest.raises(Unavailable) as info:
        make_server(services.node, tls)
    assert "cannot listen" in info.value.message and info.value.exit_code == 7
