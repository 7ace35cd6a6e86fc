"""Every channel checks whom it reaches, inside the TLS handshake (P8; docs/adr/0024, section 11).

The attacker holds a certificate the network CA signed, with the right identity and name, that
the network file no longer lists — a revoked one — and runs a server with it where a real one
should be. Before, the coordinator's fan-out ignored the allow-list and sent it a real lookup.
Now every client's trust anchors for a peer are that peer's listed certificates, so the handshake
fails before a byte of a request is sent: the fake server's handlers never run, whichever client
calls it. Servers do the same with client certificates.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from betrokken.app.demo import POLITIE, RECLASSERING, ZVH
from betrokken.config.load import load_node
from betrokken.config.schema import Network, TlsFiles, default_server_name
from betrokken.coordinator.fanout import GrpcNodeLink, NodeFailed
from betrokken.crypto.bsn import parse_bsn
from betrokken.errors import CertificateRefused
from betrokken.identity.names import COORDINATOR_URI, KEYSERVICE_URI, organisation_uri
from betrokken.identity.pins import NetworkPins
from betrokken.identity.pki import Issued, issue_certificate, write_issued
from betrokken.identity.rpc import channel
from betrokken.keyservice.client import Pseudonymiser
from betrokken.node.witness import CoordinatorLog, PeerNode
from betrokken.requester.client import Person, Requester
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.e2e.conftest import Running
from tests.test_adversarial import _free_port

pytestmark = pytest.mark.e2e


class Counting(grpc.ServerInterceptor, grpc.GenericRpcHandler):
    """A fake server that counts every request that reaches it — any method of any service —
    before answering nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        with self.lock:
            self.calls.append(details.method)
        return continuation(details)

    def service(self, details: Any) -> Any:
        with self.lock:
            self.calls.append(f"handler {details.method}")
        return None  # UNIMPLEMENTED: what it would answer does not matter


def _revoked(running: Running, tmp: Path, uri: str, name: str, dns: str) -> TlsFiles:
    """A certificate of the network CA, with the identity and DNS name of ``uri``, that the
    network file does not list: what a revoked certificate is once it is removed."""
    folder = running.net.directory / "ca"
    ca = Issued((folder / "ca.key").read_bytes(), (folder / "ca.crt").read_bytes())
    hosts = ("localhost", "127.0.0.1", dns)
    cert, key = write_issued(tmp, name, issue_certificate(ca, uri, name, hosts=hosts))
    return TlsFiles(certificate=str(cert), private_key=str(key), ca=str(folder / "ca.crt"))


@contextmanager
def fake_server(address: str, tls: TlsFiles) -> Iterator[Counting]:
    """A server with the revoked certificate at ``address``; it accepts any client of the CA."""
    counting = Counting()
    server = grpc.server(
        futures.ThreadPoolExecutor(4),
        interceptors=[counting],
        options=[("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((counting,))
    credentials = grpc.ssl_server_credentials(
        [(Path(tls.private_key).read_bytes(), Path(tls.certificate).read_bytes())],
        root_certificates=Path(tls.ca).read_bytes(),
        require_client_auth=True,
    )
    assert server.add_secure_port(address, credentials)
    server.start()
    try:
        yield counting
    finally:
        server.stop(0).wait()


def _elsewhere(network: Network, **changes: Any) -> Network:
    """The network file as a client reads it, with a server's address moved (to the fake)."""
    updates: dict[str, Any] = {}
    for part, address in changes.items():
        updates[part] = getattr(network, part).model_copy(update={"address": address})
    return network.model_copy(update=updates)


def test_p8_a_revoked_node_certificate_receives_no_byte_of_a_lookup(
    running: Running, tmp_path: Path
) -> None:
    """politie's node replaced by a server holding politie's revoked certificate: the
    coordinator's fan-out (lookups and cosigning), its health checks and every other node's
    comparison reach it only as far as a handshake that fails."""
    politie = running.network.organisation(POLITIE)
    assert politie is not None and politie.node_address
    revoked = _revoked(
        running, tmp_path, organisation_uri(POLITIE), POLITIE, default_server_name(POLITIE)
    )
    person = running.named["several"].digits
    running.cluster.stop_node(POLITIE)
    try:
        with fake_server(politie.node_address, revoked) as fake:
            # The control: a client that trusts the CA alone does reach it.
            with (
                channel(politie.node_address, revoked, politie.server_name) as ch,
                pytest.raises(grpc.RpcError),
            ):
                pb_grpc.NodeStub(ch).Lookup(pb.LookupRequest(), timeout=5)
            assert fake.calls, "the fake server cannot be reached at all: the test proves nothing"
            fake.calls.clear()
            # The real coordinator's fan-out: a question politie looks something up for.
            answer = running.query(ZVH, person, "zvh-triage", "C-REVOKED-NODE")
            assert answer.code == 3, answer.stdout + answer.stderr  # partial, never a "no"
            outcomes = {
                o["organisation_id"]: o["outcome"]
                for o in answer.json["persons"][0]["organisations"]
            }
            assert outcomes[POLITIE] == "error", outcomes  # with why, in the coordinator's log
            assert outcomes[RECLASSERING] == "involved"
            assert fake.calls == [], "the coordinator's fan-out reached it"  # nor cosigning
            # Another node comparing its witnessed log with politie's, directly.
            other = load_node(running.net.node_configs[RECLASSERING])
            peer = PeerNode(politie, other.tls, NetworkPins(running.network))
            with pytest.raises(CertificateRefused, match="does not list") as refused:
                peer.witnessed(1)
            peer.close()
            assert refused.value.exit_code == 6
            assert fake.calls == [], "another node's comparison reached it"
            # The coordinator's link, as the coordinator builds it, called directly.
            coordinator_tls = running.keys.tls("coordinator")
            link = GrpcNodeLink(
                politie.node_address,
                coordinator_tls,
                politie.server_name,
                organisation_uri(POLITIE),
                pins=NetworkPins(running.network),
            )
            with pytest.raises(NodeFailed, match="does not list"):
                link.start(pb.LookupRequest(), 5).result(timeout=10)
            assert fake.calls == []  # not a byte: the handler never ran, nor an interceptor
    finally:
        running.start_node(POLITIE)  # and wait until the coordinator reaches it again


def test_p8_a_revoked_coordinator_or_key_service_certificate_receives_nothing(
    running: Running, tmp_path: Path
) -> None:
    """The requester (to the coordinator and to the key service) and a node's witness loop (to
    the coordinator) refuse a server with a revoked certificate in the handshake."""
    loaded = load_node(running.net.node_configs[ZVH])
    coordinator = _revoked(
        running, tmp_path / "c", COORDINATOR_URI, "coordinator", "coordinator.betrokken.internal"
    )
    keyservice = _revoked(
        running, tmp_path / "k", KEYSERVICE_URI, "keyservice", "keyservice.betrokken.internal"
    )
    fake_coordinator = f"127.0.0.1:{_free_port()}"
    fake_keys = f"127.0.0.1:{_free_port()}"
    person = Person(parse_bsn(running.named["several"].digits), "C-REVOKED-SERVERS")
    with (
        fake_server(fake_coordinator, coordinator) as to_coordinator,
        fake_server(fake_keys, keyservice) as to_keys,
    ):
        # The key service first: a question starts there.
        network = _elsewhere(loaded.network, keyservice=fake_keys)
        with (
            Pseudonymiser(network, loaded.tls, ZVH) as pseudonymiser,
            pytest.raises(CertificateRefused, match="does not list"),
        ):
            pseudonymiser.pseudonymise([person.bsn])
        moved = type(loaded)(loaded.path, loaded.component, network, loaded.tls)
        with (
            Requester.from_config(moved) as requester,
            pytest.raises(CertificateRefused, match="does not list"),
        ):
            requester.ask([person], purpose="zvh-triage", user="r", role="regisseur")
        # Then the coordinator: the real key service, a fake coordinator.
        network = _elsewhere(loaded.network, coordinator=fake_coordinator)
        moved = type(loaded)(loaded.path, loaded.component, network, loaded.tls)
        with (
            Requester.from_config(moved) as requester,
            pytest.raises(CertificateRefused, match="does not list") as refused,
        ):
            requester.ask([person], purpose="zvh-triage", user="r", role="regisseur")
        assert "nothing was sent" in refused.value.message
        source = CoordinatorLog(network, loaded.tls)
        with pytest.raises(CertificateRefused):
            source.checkpoint()
        source.close()
    assert to_coordinator.calls == [] and to_keys.calls == []


def test_p8_a_revoked_client_certificate_is_refused_in_the_servers_handshake(
    running: Running, tmp_path: Path
) -> None:
    """Every party's certificates are listed, so the servers accept no other client certificate:
    the revoked one fails the handshake at the coordinator, the key service and a node."""
    network = running.network
    revoked = _revoked(
        running, tmp_path, organisation_uri(RECLASSERING), RECLASSERING, "unused.invalid"
    )
    politie = network.organisation(POLITIE)
    assert politie is not None and politie.node_address
    for address, name, stub, method, request in (
        (
            network.coordinator.address,
            network.coordinator.tls_name,
            pb_grpc.CoordinatorStub,
            "GetCheckpoint",
            pb.CheckpointRequest(),
        ),
        (
            network.keyservice.address,
            network.keyservice.tls_name,
            pb_grpc.KeyServiceStub,
            "Describe",
            pb.DescribeRequest(),
        ),
        (
            politie.node_address,
            politie.server_name,
            pb_grpc.NodeStub,
            "GetWitnessed",
            pb.WitnessedRequest(),
        ),
    ):
        with channel(address, revoked, name) as ch, pytest.raises(grpc.RpcError) as info:
            getattr(stub(ch), method)(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, (address, info.value)
