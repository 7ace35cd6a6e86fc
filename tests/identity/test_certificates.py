"""Certificates as operators meet them (ADR 0016): a key that is not the certificate's, a
foreign CA, an expired certificate — each named, with exit code 6; key files others can read; the
allow-list of fingerprints; certificates and the allow-list re-read without a restart.

Servers here are real gRPC servers with mutual TLS on loopback; the certificates are real ones
issued by the development CA (and by a second, foreign one).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from betrokken.app.devnet import DevNetwork, init_network
from betrokken.config.load import load_network
from betrokken.config.schema import TlsFiles
from betrokken.errors import AuthenticationError, CertificateRefused, ConfigError, Unavailable
from betrokken.identity.certs import diagnose, expiry_warning, fingerprint_file, load_own
from betrokken.identity.keyfiles import read_seed
from betrokken.identity.names import COORDINATOR_URI, Identity, Role, organisation_uri
from betrokken.identity.pins import NetworkPins, ReloadingPins, unpinned
from betrokken.identity.pki import Issued, create_ca, issue_certificate, write_issued
from betrokken.identity.rpc import (
    RELOAD_CHECK_SECONDS,
    channel,
    check_own_certificate,
    error_from_rpc,
    make_server,
)
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.harness import listed as entry

ORGS = ["zvh-cert", "politie-cert"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pki:
    net: DevNetwork
    tmp: Path

    @property
    def ca(self) -> Issued:
        return Issued(
            (self.net.directory / "ca" / "ca.key").read_bytes(),
            (self.net.directory / "ca" / "ca.crt").read_bytes(),
        )

    @property
    def ca_file(self) -> str:
        return str(self.net.directory / "ca" / "ca.crt")

    def tls(self, who: str) -> TlsFiles:
        base = (
            self.net.node_configs[who].parent
            if who in self.net.node_configs
            else self.net.directory / who
        )
        return TlsFiles(
            certificate=str(base / f"{who}.crt"),
            private_key=str(base / f"{who}.key"),
            ca=self.ca_file,
        )

    def issue(self, name: str, uri: str, ca: Issued | None = None, **kwargs: object) -> TlsFiles:
        cert, key = write_issued(
            self.tmp / name,
            name,
            issue_certificate(ca or self.ca, uri, name, **kwargs),  # type: ignore[arg-type]
        )
        return TlsFiles(certificate=str(cert), private_key=str(key), ca=self.ca_file)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(init_network(tmp_path / "net", ORGS, name="certs"), tmp_path)


class Echo(pb_grpc.CoordinatorServicer):
    def GetCheckpoint(
        self, request: pb.CheckpointRequest, context: object
    ) -> pb.CheckpointResponse:
        return pb.CheckpointResponse(checkpoint="ok")


@contextmanager
def serving(tls: TlsFiles) -> Iterator[str]:
    """A gRPC server with mutual TLS presenting ``tls`` (certificates re-read on change)."""
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, tls)
    pb_grpc.add_CoordinatorServicer_to_server(Echo(), server)
    server.start()
    try:
        yield address
    finally:
        server.stop(0).wait()


def _call(address: str, tls: TlsFiles, name: str = "coordinator.betrokken.internal") -> object:
    """One call; the BetrokkenError error_from_rpc makes of a failure, or the answer."""
    try:
        with channel(address, tls, name) as ch:
            return pb_grpc.CoordinatorStub(ch).GetCheckpoint(pb.CheckpointRequest(), timeout=5)
    except grpc.RpcError as exc:
        return error_from_rpc(exc, "coordinator", address, expected=COORDINATOR_URI, tls=tls)


# --- our own certificate -------------------------------------------------------------------------
def test_a_key_that_is_not_the_certificates_is_named_with_exit_code_6(pki: Pki) -> None:
    other = pki.issue("other", organisation_uri("zvh-cert"))
    mixed = TlsFiles(
        certificate=pki.tls("zvh-cert").certificate, private_key=other.private_key, ca=pki.ca_file
    )
    with pytest.raises(CertificateRefused, match="does not belong to the certificate") as info:
        channel("127.0.0.1:1", mixed, "x")
    assert info.value.exit_code == 6


def test_our_expired_certificate_is_named_before_any_connection(pki: Pki) -> None:
    old = pki.issue(
        "old",
        organisation_uri("zvh-cert"),
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=400),
        valid_days=30,
    )
    with pytest.raises(CertificateRefused, match="expired on") as info:
        load_own(old)
    assert info.value.exit_code == 6


def test_status_warns_thirty_days_before_expiry(pki: Pki) -> None:
    soon = pki.issue("soon", organisation_uri("zvh-cert"), valid_days=20)
    later = pki.issue("later", organisation_uri("zvh-cert"), valid_days=90)
    assert "renew it now" in (expiry_warning(soon) or "")
    assert expiry_warning(later) is None


def test_a_key_file_everyone_can_read_is_refused_and_group_readable_is_warned(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    seed = pki.net.directory / "keyservice" / "oprf.seed"
    os.chmod(seed, 0o640)
    read_seed(seed)
    assert "can be read by its group" in caplog.text
    os.chmod(seed, 0o644)
    with pytest.raises(ConfigError, match="every user of the machine") as info:
        read_seed(seed)
    assert info.value.exit_code == 5
    tls = pki.tls("zvh-cert")
    os.chmod(tls.private_key, 0o604)
    with pytest.raises(ConfigError, match="TLS private key"):
        load_own(tls)


def test_a_certificate_the_allow_list_does_not_name_does_not_start_a_server(pki: Pki) -> None:
    network = load_network(pki.net.network_file)
    other = pki.issue(
        "renewed",
        organisation_uri("zvh-cert"),
        hosts=("127.0.0.1", "zvh-cert.org.betrokken.internal"),
    )
    identity = Identity(Role.ORGANISATION, "zvh-cert")
    check_own_certificate(pki.tls("zvh-cert"), identity, None, network)  # listed: fine
    with pytest.raises(CertificateRefused, match="allow-list") as info:
        check_own_certificate(other, identity, None, network)
    assert fingerprint_file(other.certificate) in (info.value.hint or "")


# --- what a failed handshake was -----------------------------------------------------------------
def test_a_server_of_another_ca_is_named_not_unreachable(pki: Pki) -> None:
    foreign = create_ca("someone else's CA")
    impostor = pki.issue(
        "impostor",
        COORDINATOR_URI,
        ca=foreign,
        hosts=("127.0.0.1", "coordinator.betrokken.internal"),
    )
    (pki.tmp / "foreign-ca.crt").write_bytes(foreign.cert_pem)
    served_with = TlsFiles(
        certificate=impostor.certificate,
        private_key=impostor.private_key,
        ca=str(pki.tmp / "foreign-ca.crt"),
    )
    with serving(served_with) as address:
        error = _call(address, pki.tls("zvh-cert"))
    assert isinstance(error, CertificateRefused), error
    assert "another CA" in error.message and error.exit_code == 6


def test_our_certificate_of_another_ca_is_named_as_refused_by_the_server(pki: Pki) -> None:
    foreign = create_ca("someone else's CA")
    stranger = pki.issue("stranger", organisation_uri("zvh-cert"), ca=foreign)
    with serving(pki.tls("coordinator")) as address:
        error = _call(address, stranger)
    assert isinstance(error, CertificateRefused), error
    assert "refuses our certificate" in error.message


def test_an_expired_server_certificate_is_named(pki: Pki) -> None:
    old = pki.issue(
        "old-coordinator",
        COORDINATOR_URI,
        hosts=("127.0.0.1", "coordinator.betrokken.internal"),
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=400),
        valid_days=30,
    )
    address = f"127.0.0.1:{_free_port()}"  # a server that does not check its own certificate
    server = grpc.server(futures.ThreadPoolExecutor(2))
    credentials = grpc.ssl_server_credentials(
        [(Path(old.private_key).read_bytes(), Path(old.certificate).read_bytes())],
        root_certificates=Path(pki.ca_file).read_bytes(),
        require_client_auth=True,
    )
    server.add_secure_port(address, credentials)
    pb_grpc.add_CoordinatorServicer_to_server(Echo(), server)
    server.start()
    try:
        error = _call(address, pki.tls("zvh-cert"))
    finally:
        server.stop(0).wait()
    assert isinstance(error, CertificateRefused), error
    assert "expired" in error.message


# --- re-read without a restart --------------------------------------------------------------------
def _replace(target: TlsFiles, source: TlsFiles) -> None:
    """Install ``source`` in ``target``'s files, as an operator renewing a certificate does."""
    for attribute in ("private_key", "certificate"):
        staged = Path(getattr(target, attribute) + ".new")
        shutil.copy2(getattr(source, attribute), staged)
        os.replace(staged, getattr(target, attribute))


def test_a_renewed_certificate_is_served_without_a_restart(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="betrokken")
    live = pki.issue("live", COORDINATOR_URI, hosts=("127.0.0.1", "coordinator.betrokken.internal"))
    renewed = pki.issue(
        "renewed-coordinator",
        COORDINATOR_URI,
        hosts=("127.0.0.1", "coordinator.betrokken.internal"),
    )
    first = fingerprint_file(live.certificate)
    with serving(live) as address:
        assert diagnose(address, pki.tls("zvh-cert")).server_fingerprint == first
        # A half-done renewal (the new certificate with the old key) is refused; the server goes
        # on with what it has.
        shutil.copy2(renewed.certificate, live.certificate)
        time.sleep(RELOAD_CHECK_SECONDS + 0.2)
        assert diagnose(address, pki.tls("zvh-cert")).server_fingerprint == first
        assert "cannot be used" in caplog.text
        _replace(live, renewed)
        time.sleep(RELOAD_CHECK_SECONDS + 0.2)
        assert diagnose(address, pki.tls("zvh-cert")).server_fingerprint == fingerprint_file(
            renewed.certificate
        )
        assert isinstance(_call(address, pki.tls("zvh-cert")), pb.CheckpointResponse)
    assert "reloaded without a restart" in caplog.text


def test_the_allow_list_is_re_read_when_the_network_file_changes(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    network = load_network(pki.net.network_file)
    pins = ReloadingPins(pki.net.network_file, network)
    politie = Identity(Role.ORGANISATION, "politie-cert")
    listed = fingerprint_file(pki.tls("politie-cert").certificate)
    pem = Path(pki.tls("politie-cert").certificate).read_text()
    assert pins.allowed(politie) == {listed}
    assert pins.certificates(politie) == (pem,)  # the trust anchor of a channel to politie
    assert pins.client_roots() is not None and pem in pins.client_roots()  # type: ignore[operator]
    text = pki.net.network_file.read_text()
    pki.net.network_file.write_text(text.replace(entry(pem), ""))  # revoked
    time.sleep(RELOAD_CHECK_SECONDS + 0.1)
    assert pins.allowed(politie) == frozenset()  # an empty list: any certificate of the CA
    assert pins.certificates(politie) is None and pins.client_roots() is None
    pki.net.network_file.write_text("this is [not toml")
    time.sleep(RELOAD_CHECK_SECONDS + 0.1)
    assert pins.allowed(politie) == frozenset()  # the last good list stays
    assert "cannot be used" in caplog.text


def test_fingerprints_are_accepted_as_openssl_prints_them(pki: Pki) -> None:
    """A network file from before certificates were listed names fingerprints: accepted, and
    checked per call only (no trust anchor for the handshake)."""
    listed = fingerprint_file(pki.tls("politie-cert").certificate)
    colons = ":".join(listed[i : i + 2] for i in range(0, 64, 2)).upper()
    pem = Path(pki.tls("politie-cert").certificate).read_text()
    text = pki.net.network_file.read_text().replace(entry(pem), f'"{colons}",\n')
    pki.net.network_file.write_text(text)
    network = load_network(pki.net.network_file)
    organisation = network.organisation("politie-cert")
    assert organisation is not None and organisation.certificates == [listed]
    politie = Identity(Role.ORGANISATION, "politie-cert")
    assert NetworkPins(network).allowed(politie) == {listed}
    assert NetworkPins(network).certificates(politie) is None
    assert unpinned(network) == [organisation_uri("politie-cert")]
    pki.net.network_file.write_text(text.replace(colons, "sha256:nothex"))
    with pytest.raises(ConfigError, match="64 hex digits"):
        load_network(pki.net.network_file)


def test_an_authentication_error_is_exit_code_6() -> None:
    assert CertificateRefused("x").exit_code == AuthenticationError("x").exit_code == 6


def test_a_server_that_takes_the_connection_and_says_nothing_is_named_as_hanging(
    pki: Pki,
) -> None:
    """A key service that hangs (stopped, deadlocked, swapping) still has its port: the kernel
    takes the connection, and the handshake never comes. That is no certificate problem, and
    the message must not send the operator to the certificates."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        found = diagnose(address, pki.tls("zvh-cert"), timeout=0.3)
        assert found.silent and "antwoordt niet" in found.problem
        error = _call(address, pki.tls("zvh-cert"))
    assert isinstance(error, Unavailable) and not isinstance(error, AuthenticationError), error
    assert "hangs or is overloaded" in error.message and "certificate" not in error.diagnostics()
    assert error.exit_code == 7
