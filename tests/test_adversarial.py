"""Malformed and hostile input against the three services, in process over real mutual TLS.

Each service runs on a loopback port with the development network's certificates; the tests send
what a buggy or hostile peer would send and check the status, the message and that the service
keeps serving. The insiders' moves on a whole running network are in tests/e2e/test_insiders.py.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest

from betrokken.app.devnet import DevNetwork
from betrokken.audit.log import AuditLog
from betrokken.audit.witness import WitnessStore
from betrokken.config.schema import Network, TlsFiles
from betrokken.coordinator.fanout import GrpcNodeLink, NodeLink
from betrokken.coordinator.servicer import CoordinatorServicer
from betrokken.coordinator.store import AuditStore
from betrokken.crypto import oprf
from betrokken.crypto import question as q
from betrokken.crypto.bsn import parse_bsn
from betrokken.crypto.note import NoteKey
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import QuotaExceeded, Unavailable, VerificationError, WrongRole
from betrokken.identity.names import organisation_uri
from betrokken.identity.rpc import channel, make_server
from betrokken.keyservice.client import ACCESS_REQUEST, IMPORT, QUESTION, Pseudonymiser
from betrokken.keyservice.keys import KeyRing, new_seed
from betrokken.keyservice.servicer import KeyServiceServicer
from betrokken.keyservice.store import QuotaStore
from betrokken.node.servicer import NodeServicer
from betrokken.node.store import NodeStore
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.harness import NetKeys

ASKER = "zvh-test"
NODE = "politie-test"
PERSON = "999993653"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Services:
    keys: NetKeys
    network: Network  # the network as the in-process services see it (one node: politie-test)
    keyservice: str
    node: str
    coordinator: str
    node_trail: AuditLog

    def tls(self, who: str) -> TlsFiles:
        return self.keys.tls(who)

    def name(self, who: str) -> str:
        if who == "keyservice":
            return self.network.keyservice.tls_name
        if who == "coordinator":
            return self.network.coordinator.tls_name
        org = self.network.organisation(who)
        assert org is not None
        return org.server_name

    def client_network(self) -> Network:
        return self.network.model_copy(
            update={
                "keyservice": self.network.keyservice.model_copy(
                    update={"address": self.keyservice}
                ),
                "coordinator": self.network.coordinator.model_copy(
                    update={"address": self.coordinator}
                ),
            }
        )


def _only_node(network: Network, node: str) -> Network:
    """The network with one node: the others ask only (their node addresses removed)."""
    organisations = [
        o if o.id == node else o.model_copy(update={"node_address": None, "envelope_key": ""})
        for o in network.organisations
    ]
    return network.model_copy(update={"organisations": organisations})


@pytest.fixture(scope="module")
def services(devnet: DevNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    tmp = tmp_path_factory.mktemp("adversarial")
    keys = NetKeys(devnet)
    network = _only_node(keys.network, NODE)
    servers = []

    ks_address = f"127.0.0.1:{_free_port()}"
    server = make_server(ks_address, keys.tls("keyservice"))
    ring = KeyRing.load(keys.seed, network, "test seed")
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(network, ring, QuotaStore(f"sqlite:///{tmp / 'ks.db'}")), server
    )
    servers.append(server)

    node_address = f"127.0.0.1:{_free_port()}"
    server = make_server(node_address, keys.tls(NODE))
    org = network.organisation(NODE)
    assert org is not None
    trail_key = keys.node_log_key(NODE)
    store = NodeStore(f"sqlite:///{tmp / 'node.db'}", trail_key, trail_key.name)
    witness = WitnessStore(store.engine, store.trail, NODE)
    pb_grpc.add_NodeServicer_to_server(
        NodeServicer(network, org, store, keys.envelope_key(NODE), witness), server
    )
    servers.append(server)

    coord_address = f"127.0.0.1:{_free_port()}"
    server = make_server(coord_address, keys.tls("coordinator"))
    links: dict[str, NodeLink] = {
        NODE: GrpcNodeLink(
            node_address, keys.tls("coordinator"), org.server_name, organisation_uri(NODE)
        )
    }
    log_key = keys.log_key()
    pb_grpc.add_CoordinatorServicer_to_server(
        CoordinatorServicer(
            network, AuditStore(f"sqlite:///{tmp / 'c.db'}", log_key, log_key.name), links
        ),
        server,
    )
    servers.append(server)
    for s in servers:
        s.start()
    try:
        yield Services(keys, network, ks_address, node_address, coord_address, store.trail)
    finally:
        for s in servers:
            s.stop(0)


def _call(
    services: Services, where: str, who: str, stub_type: type, method: str, request: object
) -> grpc.RpcError:
    address = getattr(services, "node" if where == NODE else where)
    with (
        channel(address, services.tls(who), services.name(where)) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        getattr(stub_type(ch), method)(request, timeout=10)
    return info.value  # type: ignore[return-value]


GOOD_ELEMENT = oprf.blind(PERSON.encode())[1]


# --- key service -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("elements", "organisations", "use", "code", "words"),
    [
        ([b""], [ASKER], pb.QUESTION, "INVALID_ARGUMENT", "size"),
        ([b"\x01" * 31], [ASKER], pb.QUESTION, "INVALID_ARGUMENT", "size"),
        ([GOOD_ELEMENT, b"\x01" * 33], [ASKER], pb.QUESTION, "INVALID_ARGUMENT", "1"),
        ([b"\x00" * 32], [ASKER], pb.QUESTION, "INVALID_ARGUMENT", "identity"),
        ([b"\xff" * 32], [ASKER], pb.QUESTION, "INVALID_ARGUMENT", "blinded element 0"),
        ([], [ASKER], pb.QUESTION, "INVALID_ARGUMENT", "1 to"),
        ([GOOD_ELEMENT], [], pb.QUESTION, "INVALID_ARGUMENT", "at least one organisation"),
        ([GOOD_ELEMENT], ["nobody"], pb.QUESTION, "INVALID_ARGUMENT", "nobody"),
        ([GOOD_ELEMENT], [NODE, NODE], pb.QUESTION, "INVALID_ARGUMENT", "twice"),
        ([GOOD_ELEMENT], [ASKER], pb.EVALUATION_USE_UNSPECIFIED, "INVALID_ARGUMENT", "import"),
        # The bulk (import) quota only ever gives an organisation its own pseudonyms.
        ([GOOD_ELEMENT], [NODE], pb.IMPORT, "PERMISSION_DENIED", "own key"),
        # A question names a purpose its organisation may ask, and only that purpose's keys.
        ([GOOD_ELEMENT], [ASKER], pb.QUESTION, "PERMISSION_DENIED", "purpose ''"),
        ([GOOD_ELEMENT], [ASKER], (pb.QUESTION, "zsm-context"), "PERMISSION_DENIED", "may not"),
        (
            [GOOD_ELEMENT],
            [ASKER, "ggz-test"],
            (pb.QUESTION, "zvh-triage"),
            "PERMISSION_DENIED",
            "ggz",
        ),
        # Closed roles: a role the purpose does not list gets no pseudonym, whatever it signs.
        ([GOOD_ELEMENT], [ASKER], pb.QUESTION, "PERMISSION_DENIED", "role 'dpo'"),
        ([GOOD_ELEMENT], [ASKER], pb.QUESTION, "PERMISSION_DENIED", "role '<b>anyone</b>'"),
    ],
)
def test_keyservice_refuses_bad_requests(
    services: Services,
    elements: list[bytes],
    organisations: list[str],
    use: int | tuple[int, str],
    code: str,
    words: str,
) -> None:
    use, purpose = use if isinstance(use, tuple) else (use, "zvh-triage")
    if (code, words) == ("PERMISSION_DENIED", "purpose ''"):
        purpose = ""
    role = words.split("'")[1] if words.startswith("role '") else "regisseur"
    request = pb.EvaluateRequest(
        blinded_elements=elements, organisations=organisations, use=use, purpose=purpose, role=role
    )
    error = _call(services, "keyservice", ASKER, pb_grpc.KeyServiceStub, "Evaluate", request)
    assert error.code() == getattr(grpc.StatusCode, code)
    assert words in (error.details() or "")


def test_one_round_trip_gives_checked_pseudonyms_under_every_key_asked(services: Services) -> None:
    with Pseudonymiser(services.client_network(), services.tls(ASKER), ASKER) as client:
        found = client.pseudonymise_under(
            [parse_bsn(PERSON)], [ASKER, NODE], purpose="zvh-triage", role="regisseur"
        )
        assert client.quota_remaining is not None
        # The DPO's access request: every key, under its own quota.
        everyone = client.pseudonymise_under(
            [parse_bsn(PERSON)],
            [o.id for o in services.network.organisations],
            ACCESS_REQUEST,
            role="dpo",
        )
    for org, pseudonyms in found.items():
        assert pseudonyms[0] == services.keys.pseudonym(org, PERSON)
    # Each organisation's pseudonym is unrelated to the others' (P2).
    assert len({p[0].value for p in everyone.values()}) == len(services.network.organisations)


def test_keyservice_refuses_the_coordinator(services: Services) -> None:
    request = pb.EvaluateRequest(
        blinded_elements=[GOOD_ELEMENT], organisations=[ASKER], use=pb.QUESTION
    )
    error = _call(
        services, "keyservice", "coordinator", pb_grpc.KeyServiceStub, "Evaluate", request
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def _keyservice(services: Services, tmp_path: Path, **settings: object) -> tuple[Network, object]:
    network = services.network.model_copy(
        update={"keyservice": services.network.keyservice.model_copy(update=settings)}
    )
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, services.tls("keyservice"))
    ring = KeyRing.load(services.keys.seed, network, "seed")
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(network, ring, QuotaStore(f"sqlite:///{tmp_path / 'q.db'}")), server
    )
    server.start()
    client_network = network.model_copy(
        update={"keyservice": network.keyservice.model_copy(update={"address": address})}
    )
    return client_network, server


def test_the_quota_counts_persons_per_key_and_imports_and_access_requests_have_their_own(
    services: Services, tmp_path: Path
) -> None:
    network, server = _keyservice(
        services,
        tmp_path,
        default_daily_quota=3,
        default_daily_bulk_quota=5,
        default_daily_access_quota=2,
    )
    try:
        with Pseudonymiser(network, services.tls(ASKER), ASKER) as client:
            keys = [ASKER, NODE]  # the keys zvh-triage needs in this one-node network
            ask = {"purpose": "zvh-triage", "role": "regisseur"}
            client.pseudonymise_under([parse_bsn(PERSON)] * 2, keys, QUESTION, **ask)
            assert client.quota_remaining == 1  # 2 persons under each of 2 keys
            client.pseudonymise_under([parse_bsn(PERSON)], [ASKER], QUESTION, **ask)
            assert client.quota_remaining == 0  # its own key: 3 persons used
            with pytest.raises(QuotaExceeded) as info:
                client.pseudonymise_under([parse_bsn(PERSON)] * 2, [NODE], QUESTION, **ask)
            assert "question quota of 3" in info.value.message and info.value.exit_code == 4
            assert f"key of {NODE}" in info.value.message
            # A big import does not leave the organisation unable to ask, nor the other way.
            client.pseudonymise([parse_bsn(PERSON)] * 5, IMPORT)
            assert client.quota_remaining == 0
            with pytest.raises(QuotaExceeded) as info:
                client.pseudonymise([parse_bsn(PERSON)], IMPORT)
            assert "import quota of 5" in info.value.message
            # The DPO's access requests: every key, their own small quota.
            everyone = [o.id for o in network.organisations]
            client.pseudonymise_under([parse_bsn(PERSON)] * 2, everyone, ACCESS_REQUEST)
            with pytest.raises(QuotaExceeded) as info:
                client.pseudonymise_under([parse_bsn(PERSON)], everyone, ACCESS_REQUEST)
            assert "access-request quota of 2" in info.value.message
    finally:
        server.stop(0)  # type: ignore[attr-defined]


def test_client_detects_a_key_service_with_another_seed(services: Services, tmp_path: Path) -> None:
    """A key service evaluating with keys other than the pinned ones is caught by the proofs."""
    impostor_network = services.network
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, services.tls("keyservice"))
    ring = KeyRing(
        {
            o.id: oprf.derive_key_pair(new_seed(), o.id.encode())
            for o in impostor_network.organisations
        }
    )
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(impostor_network, ring, QuotaStore(f"sqlite:///{tmp_path / 'i.db'}")),
        server,
    )
    server.start()
    try:
        network = services.network.model_copy(
            update={
                "keyservice": services.network.keyservice.model_copy(update={"address": address})
            }
        )
        with (
            Pseudonymiser(network, services.tls(ASKER), ASKER) as client,
            pytest.raises(VerificationError),
        ):
            client.pseudonymise_under(
                [parse_bsn(PERSON)], [NODE], purpose="zvh-triage", role="regisseur"
            )
    finally:
        server.stop(0)


def test_a_pinned_key_that_rotates_is_the_one_checked_from_then_on(
    services: Services, tmp_path: Path
) -> None:
    """The asking side works out each pinned key once per process (its bytes, its key id). A
    network file that pins a rotated key is checked against the rotated key from the next
    batch on, and the key it replaced is refused from then on, in the same process."""
    from betrokken.crypto.pseudonym import key_id_for
    from betrokken.errors import KeyMismatch

    rotated = {
        o.id: oprf.derive_key_pair(new_seed(), o.id.encode())
        for o in services.network.organisations
    }
    rotated_network = services.network.model_copy(
        update={
            "organisations": [
                o.model_copy(update={"pseudonym_key": rotated[o.id].public.hex()})
                for o in services.network.organisations
            ]
        }
    )
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, services.tls("keyservice"))
    pb_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(
            rotated_network, KeyRing(rotated), QuotaStore(f"sqlite:///{tmp_path / 'r.db'}")
        ),
        server,
    )
    server.start()

    def ask(network: Network, at: str) -> Pseudonym:
        network = network.model_copy(
            update={"keyservice": network.keyservice.model_copy(update={"address": at})}
        )
        with Pseudonymiser(network, services.tls(ASKER), ASKER) as client:
            return client.pseudonymise_under(
                [parse_bsn(PERSON)], [NODE], purpose="zvh-triage", role="regisseur"
            )[NODE][0]

    try:
        old_address = services.client_network().keyservice.address
        assert ask(services.network, old_address) == services.keys.pseudonym(NODE, PERSON)
        assert ask(rotated_network, address) == Pseudonym(
            oprf.evaluate(rotated[NODE].secret, PERSON.encode()), key_id_for(rotated[NODE].public)
        )
        with pytest.raises(KeyMismatch):  # the old pin against the rotated key service
            ask(services.network, address)
        with pytest.raises(KeyMismatch):  # the rotated pin against the old key service
            ask(rotated_network, old_address)
    finally:
        server.stop(0)


def test_the_key_services_metric_names_the_calling_organisation_from_its_certificate(
    services: Services,
) -> None:
    """The label comes from the certificate parsed once per process (the servicer's own parse);
    a certificate naming no organisation, or none at all, is counted as another caller."""
    from betrokken.identity.rpc import certificate_organisation
    from betrokken.metrics import OTHER, _caller

    def context(*pems: bytes) -> object:
        return type("Context", (), {"auth_context": lambda self: {"x509_pem_cert": list(pems)}})()

    asker = Path(services.tls(ASKER).certificate).read_bytes()
    coordinator = Path(services.tls("coordinator").certificate).read_bytes()
    assert certificate_organisation(asker) == ASKER
    assert certificate_organisation(coordinator) is None
    assert certificate_organisation(b"not a certificate") is None
    assert _caller(context(asker)) == ASKER
    assert _caller(context(coordinator)) == _caller(context()) == OTHER
    assert _caller(context(b"not a certificate")) == OTHER


# --- node ----------------------------------------------------------------------------------------
def _alarms(services: Services) -> list[str]:
    return [
        r.entry.reason
        for r in services.node_trail.records()
        if r.entry is not None and r.entry.event.value == "alarm"
    ]


@pytest.mark.parametrize(
    ("request_", "kind"),
    [
        (pb.LookupRequest(), "malformed"),
        (pb.LookupRequest(question="not a signed note\n"), "malformed"),
        (pb.LookupRequest(question="x" * 70_000), "malformed"),
    ],
)
def test_node_refuses_a_lookup_without_a_signed_question_and_raises_an_alarm(
    services: Services, request_: pb.LookupRequest, kind: str
) -> None:
    before = len(_alarms(services))
    error = _call(services, NODE, "coordinator", pb_grpc.NodeStub, "Lookup", request_)
    assert error.code() == grpc.StatusCode.DATA_LOSS
    assert _alarms(services)[before:] == [kind]


def test_node_refuses_an_organisation_calling_it_directly(services: Services) -> None:
    prepared = services.keys.prepare(ASKER, "zvh-triage", [(PERSON, "C")])
    request = pb.LookupRequest(question=prepared.note, envelope=b"")
    error = _call(services, NODE, ASKER, pb_grpc.NodeStub, "Lookup", request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# --- coordinator ---------------------------------------------------------------------------------
def _query(services: Services, prepared: object, **changes: object) -> pb.QueryRequest:
    values: dict[str, object] = {
        "question": prepared.note,  # type: ignore[attr-defined]
        "envelopes": [
            pb.Envelope(node=n, sealed=s)
            for n, s in prepared.envelopes.items()  # type: ignore[attr-defined]
        ],
    }
    values.update(changes)
    return pb.QueryRequest(**values)  # type: ignore[arg-type]


def _prepare(services: Services, **kwargs: object):  # type: ignore[no-untyped-def]
    keys = services.keys
    org = services.network.organisation(ASKER)
    assert org is not None
    from betrokken.requester.client import prepare_question

    persons = kwargs.pop("persons", [(PERSON, "C")])
    pseudonyms = {
        o.id: [keys.pseudonym(o.id, d) for d, _ in persons]  # type: ignore[attr-defined]
        for o in services.network.organisations
    }
    return prepare_question(
        services.network,
        org,
        kwargs.pop("signer", keys.question_key(ASKER)),  # type: ignore[arg-type]
        pseudonyms,
        [c for _, c in persons],  # type: ignore[attr-defined]
        purpose=kwargs.pop("purpose", "zvh-triage"),  # type: ignore[arg-type]
        user="u",
        role="regisseur",
        **kwargs,  # type: ignore[arg-type]
    )


def test_coordinator_refuses_questions_that_fail_its_checks(services: Services) -> None:
    good = _prepare(services)
    now = dt.datetime.now(dt.UTC)
    other_key = NoteKey.generate(q.question_key_name(services.network.name, ASKER))
    cases: list[tuple[pb.QueryRequest, str, str]] = [
        (pb.QueryRequest(), "INVALID_ARGUMENT", "no signed question"),
        (_query(services, _prepare(services, signer=other_key)), "DATA_LOSS", "signature"),
        (
            _query(services, _prepare(services, at=now - dt.timedelta(hours=1))),
            "DATA_LOSS",
            # An hour, plus the seconds the cases before it take on a loaded machine.
            r"the asking side's clock is 36\d\d s behind the coordinator's",
        ),
        (_query(services, good, envelopes=[]), "INVALID_ARGUMENT", "exactly the nodes"),
        (
            _query(
                services,
                good,
                envelopes=[pb.Envelope(node=NODE, sealed=good.envelopes[NODE][:-1] + b"x")],
            ),
            "INVALID_ARGUMENT",
            "missing or altered",
        ),
        (
            _query(services, _prepare(services, persons=[(PERSON, f"C-{i}") for i in range(101)])),
            "INVALID_ARGUMENT",
            "1 to 100",
        ),
        (
            _query(services, _prepare(services, purpose="fishing-trip")),
            "PERMISSION_DENIED",
            "not defined",
        ),
    ]
    for request, code, words in cases:
        error = _call(services, "coordinator", ASKER, pb_grpc.CoordinatorStub, "Query", request)
        assert error.code() == getattr(grpc.StatusCode, code), words
        assert re.search(words, error.details() or ""), (words, error.details())


def test_coordinator_refuses_a_question_signed_for_another_organisation(
    services: Services,
) -> None:
    """The certificate says politie-test; the question says zvh-test: refused (P7, P8)."""
    request = _query(services, _prepare(services))
    error = _call(services, "coordinator", NODE, pb_grpc.CoordinatorStub, "Query", request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "signed for 'zvh-test'" in (error.details() or "")


def test_coordinator_answers_after_all_that_and_refuses_the_replay(services: Services) -> None:
    prepared = _prepare(services)
    request = _query(services, prepared)
    with channel(services.coordinator, services.tls(ASKER), services.name("coordinator")) as ch:
        response = pb_grpc.CoordinatorStub(ch).Query(request, timeout=10)
    assert [(r.label, r.status) for r in response.replies] == [(NODE, pb.ANSWERED)]
    assert len(response.replies[0].reply) == q.reply_size(1)
    error = _call(services, "coordinator", ASKER, pb_grpc.CoordinatorStub, "Query", request)
    assert error.code() == grpc.StatusCode.DATA_LOSS
    assert "replay" in (error.details() or "")


def test_a_server_with_another_organisations_certificate_is_refused_by_name(
    services: Services,
) -> None:
    """A client that means to reach ggz-test but meets politie-test's certificate (P8)."""
    ggz = services.network.organisation("ggz-test")
    assert ggz is not None
    with (
        channel(services.node, services.tls("coordinator"), ggz.server_name) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        pb_grpc.NodeStub(ch).Lookup(pb.LookupRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    from betrokken.errors import WrongPeer
    from betrokken.identity.rpc import error_from_rpc

    error = error_from_rpc(
        info.value,
        "node",
        services.node,
        expected=organisation_uri("ggz-test"),
        tls=services.tls("coordinator"),
    )
    assert isinstance(error, WrongPeer) and error.exit_code == 6
    assert organisation_uri("ggz-test") in error.message
    assert organisation_uri(NODE) in error.message  # what it presents instead


def test_a_port_in_use_is_a_clear_error(services: Services) -> None:
    with pytest.raises(Unavailable) as info:
        make_server(services.node, services.tls(NODE))
    assert "cannot listen" in info.value.message and info.value.exit_code == 7


def test_a_component_with_another_organisations_certificate_refuses_to_start(
    services: Services,
) -> None:
    from betrokken.errors import ConfigError
    from betrokken.identity.names import Identity, Role
    from betrokken.identity.rpc import check_own_certificate

    with pytest.raises(ConfigError) as info:
        check_own_certificate(services.tls(ASKER), Identity(Role.ORGANISATION, NODE), None)
    assert "certificate of urn:betrokken:org:zvh-test" in info.value.message
    assert "configuration is for urn:betrokken:org:politie-test" in info.value.message
    with pytest.raises(ConfigError) as info:
        check_own_certificate(services.tls(NODE), Identity(Role.ORGANISATION, NODE), "x.example")
    assert "'x.example'" in info.value.message
    _ = (replace, WrongRole)


@pytest.mark.e2e
def test_a_node_started_with_another_organisations_certificate_refuses_to_start(
    devnet: DevNetwork,
) -> None:
    import subprocess

    from betrokken.app.cluster import betrokken_command

    source = devnet.node_configs[NODE]
    wrong = source.parent / "wrong-identity.toml"
    zvh_dir = devnet.node_configs[ASKER].parent
    wrong.write_text(
        source.read_text()
        .replace(f'certificate = "{NODE}.crt"', f'certificate = "{zvh_dir / (ASKER + ".crt")}"')
        .replace(f'private_key = "{NODE}.key"', f'private_key = "{zvh_dir / (ASKER + ".key")}"')
    )
    try:
        done = subprocess.run(
            betrokken_command("node", "serve", "--config", wrong),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        wrong.unlink()
    # Refused before it listens: its certificate is another organisation's identity (exit 5), or
    # — checked first where the network file lists fingerprints — not on this node's list (6).
    assert done.returncode in (5, 6), done.stderr
    assert f"{ASKER}.crt" in done.stderr and f"urn:betrokken:org:{NODE}" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_coordinator_counts_every_persons_question_also_with_pseudonyms_held_before(
    services: Services, tmp_path: Path
) -> None:
    """The attacker's move: obtain pseudonyms once (the key service counts them then) and ask
    about the same persons again and again without the key service. The coordinator counts the
    persons of every question against the organisation's daily quota, so re-use is counted."""
    quotas = {ASKER: 3}
    network = services.network.model_copy(
        update={"keyservice": services.network.keyservice.model_copy(update={"quotas": quotas})}
    )
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, services.keys.tls("coordinator"))
    log_key = services.keys.log_key()
    store = AuditStore(f"sqlite:///{tmp_path / 'c.db'}", log_key, log_key.name)
    pb_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(network, store, {}), server)
    server.start()
    try:
        two = [(PERSON, "C-1"), ("999990019", "C-2")]
        with channel(address, services.tls(ASKER), network.coordinator.tls_name) as ch:
            stub = pb_grpc.CoordinatorStub(ch)
            first = stub.Query(_query(services, _prepare(services, persons=two)), timeout=10)
            assert first.receipt.record  # recorded and forwarded (its node is not reachable)
            with pytest.raises(grpc.RpcError) as again:  # the same two pseudonyms, asked again
                stub.Query(_query(services, _prepare(services, persons=two)), timeout=10)
            assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "daily quota of 3" in (again.value.details() or "")
            one = stub.Query(_query(services, _prepare(services, persons=two[:1])), timeout=10)
            assert one.receipt.record  # the quota is persons, not questions: 2 + 1 = 3
    finally:
        server.stop(0)
        store.engine.dispose()
