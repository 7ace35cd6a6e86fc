"""gRPC plumbing shared by every service: mutual TLS, peer identity, errors on the wire.

This is the one place where :mod:`betrokken.errors` meets ``grpc.StatusCode``: servicers raise
``BetrokkenError``; :func:`servicer_method` turns it into a status with the error's class name in
the trailing metadata; :func:`error_from_rpc` turns it back into the same class on the client.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import grpc

from betrokken.errors import (
    AuthenticationError,
    BetrokkenError,
    CertificateRefused,
    ConfigError,
    InternalError,
    Unavailable,
    WitnessStale,
    WrongPeer,
    WrongRole,
    error_class,
    shown,
)
from betrokken.identity.certs import Handshake, diagnose, fingerprint_pem, load_own, short
from betrokken.identity.names import (
    Identity,
    Role,
    check_validity,
    identity_from_certificate,
    identity_from_pem,
    identity_in_certificate,
)
from betrokken.identity.pins import NetworkPins, Pins, allowed_in

if TYPE_CHECKING:  # pydantic only where a file is validated (docs/adr/0045)
    from betrokken.config.schema import Network, TlsFiles

log = logging.getLogger("betrokken.security")
T = TypeVar("T")

STATUS: dict[str, grpc.StatusCode] = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "DATA_LOSS": grpc.StatusCode.DATA_LOSS,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}
ERROR_KEY = "betrokken-error"
HINT_KEY = "betrokken-hint"
WITNESSED_KEY = "betrokken-witnessed-size"
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
RELOAD_CHECK_SECONDS = 1.0
# Words in gRPC's message for a connection that failed in TLS rather than in the network.
_TLS_WORDS = ("handshake", "ssl", "tls", "certificate", "socket closed", "hostname verification")


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


class CertificateReloader:
    """Gives gRPC this server's certificate, key and CA again when their files change.

    gRPC calls :meth:`fetch` before every new connection's handshake; the files are looked at
    (modification time and size) at most once a second. A changed set that does not hold together
    (a key that does not belong to the certificate, a half-written file) is logged and the
    current one kept, so a renewal never takes a running server down. Existing connections keep
    the certificate they were made with.
    """

    def __init__(self, tls: TlsFiles, pins: Pins | None = None) -> None:
        self.tls = tls
        self.pins = pins
        self._stamp = self._files()
        self._roots = self._client_roots()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.initial = self._configuration()

    def _client_roots(self) -> tuple[str, ...] | None:
        return self.pins.client_roots() if self.pins is not None else None

    def _files(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in (self.tls.certificate, self.tls.private_key, self.tls.ca):
            try:
                info = os.stat(path)
                stamps.append((info.st_mtime_ns, info.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        own = load_own(self.tls)
        # Every possible caller's certificate listed: only those pass the handshake. Otherwise
        # the network CA, and the per-call check of the list (peer_identity) is the only one.
        roots = "".join(self._roots).encode("ascii") if self._roots else _read(self.tls.ca)
        config = grpc.ssl_server_certificate_configuration(
            [(_read(self.tls.private_key), _read(self.tls.certificate))],
            root_certificates=roots,
        )
        log.info(
            "TLS certificate %s (sha256 %s) valid until %s UTC; client certificates: %s",
            self.tls.certificate,
            own.fingerprint,
            f"{own.not_after:%Y-%m-%d %H:%M}",
            f"the {len(self._roots)} on the allow-list" if self._roots else "any of the CA's",
        )
        return config

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        roots = self._client_roots()  # the allow-list is re-read at most once a second
        now = time.monotonic()
        files_due = now - self._checked >= RELOAD_CHECK_SECONDS
        if not files_due and roots == self._roots:
            return None
        with self._lock:
            stamp = self._stamp
            if files_due:
                self._checked = now
                stamp = self._files()
            if stamp == self._stamp and roots == self._roots:
                return None
            self._stamp = stamp
            self._roots = roots
            try:
                config = self._configuration()
            except (BetrokkenError, OSError, ValueError) as exc:
                log.error(
                    "the TLS files changed but cannot be used (%s); the server keeps its "
                    "current certificate",
                    getattr(exc, "message", None) or exc,
                )
                return None
            log.info("TLS certificate reloaded without a restart")
            return config


def server_credentials(tls: TlsFiles, pins: Pins | None = None) -> grpc.ServerCredentials:
    reloader = CertificateReloader(tls, pins)
    fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], reloader.fetch)  # None: keep
    return grpc.dynamic_ssl_server_credentials(
        reloader.initial, fetch, require_client_authentication=True
    )


def channel(
    address: str, tls: TlsFiles, server_name: str, certificates: Sequence[str] | None = None
) -> grpc.Channel:
    """A mutual-TLS channel that accepts only a server whose certificate carries ``server_name``.

    ``server_name`` is the DNS name the network file gives the peer we mean to reach (a node of
    organisation X, the coordinator, the key service): a server with any other certificate of the
    same network — another organisation's, say — fails the handshake (P8). With ``certificates``
    (the peer's allow-list from the network file, PEM) those certificates are the channel's only
    trust anchors: any other certificate, even one the network CA signed, fails the handshake
    before a byte of a request is sent (docs/adr/0024, section 11). Our own certificate is checked
    first (its key, its validity), so a mistake there is named rather than reported as "cannot be
    reached".
    """
    credentials, options = _client_side(tls, server_name, certificates)
    return grpc.secure_channel(address, credentials, options=options)


def aio_channel(
    address: str, tls: TlsFiles, server_name: str, certificates: Sequence[str] | None = None
) -> grpc.aio.Channel:
    """The same channel for asyncio (the coordinator's fan-out: no thread per call); create it
    inside the event loop that will use it."""
    credentials, options = _client_side(tls, server_name, certificates)
    return grpc.aio.secure_channel(address, credentials, options=options)


def _client_side(
    tls: TlsFiles, server_name: str, certificates: Sequence[str] | None
) -> tuple[grpc.ChannelCredentials, list[tuple[str, Any]]]:
    load_own(tls)
    roots = "".join(certificates).encode("ascii") if certificates else _read(tls.ca)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=roots,
        private_key=_read(tls.private_key),
        certificate_chain=_read(tls.certificate),
    )
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.ssl_target_name_override", server_name),
        ("grpc.default_authority", server_name),
    ]
    return credentials, options


class PeerChannel:
    """A client's channel to one peer, whose trust anchors are the peer's certificates on the
    network file's allow-list; made again when that list changes (a revoked server certificate
    then fails the next call's handshake, also on a connection that was open)."""

    def __init__(
        self,
        address: str,
        tls: TlsFiles,
        server_name: str,
        peer: Identity,
        pins: Pins,
        make: Callable[..., Any] = channel,
    ) -> None:
        self.address = address
        self.tls = tls
        self.server_name = server_name
        self.peer = peer
        self.pins = pins
        self._make = make
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stubs: dict[type, Any] = {}
        self._certificates: tuple[str, ...] | None = None

    def allowed(self) -> frozenset[str]:
        """The peer's listed fingerprints (to name a refused certificate in a message)."""
        return self.pins.allowed(self.peer)

    def stub(self, kind: type[T]) -> tuple[T, Any]:
        """A stub of ``kind`` on the current channel, and a channel it replaced (to close), if
        the allow-list changed since the last call."""
        certificates = self.pins.certificates(self.peer)
        with self._lock:
            replaced = None
            if self._channel is None or certificates != self._certificates:
                replaced = self._channel
                self._channel = self._make(self.address, self.tls, self.server_name, certificates)
                self._certificates = certificates
                self._stubs = {}
                if replaced is not None:
                    log.info(
                        "the allow-list for %s changed: a new channel to %s",
                        self.peer.uri,
                        self.address,
                    )
            stub = self._stubs.get(kind)
            if stub is None:
                make: Callable[[Any], T] = kind
                stub = self._stubs[kind] = make(self._channel)
            return stub, replaced

    def close(self) -> Any:
        with self._lock:
            closing, self._channel = self._channel, None
            self._stubs = {}
        return closing


def check_own_certificate(
    tls: TlsFiles, expected: Identity, server_name: str | None, network: Network | None = None
) -> None:
    """Refuse to start when our own certificate is not the identity our configuration names, its
    key does not belong to it, it expired — or (given the ``network``) the network file's
    allow-list does not name it, so that every peer would refuse it."""
    from cryptography import x509

    own = load_own(tls)
    if network is not None:
        listed = allowed_in(network, expected)
        if listed and own.fingerprint not in listed:
            raise CertificateRefused(
                f"{tls.certificate} (sha256 {short(own.fingerprint)}...) is not on the network "
                f"file's allow-list for {expected.uri}, so every peer refuses it",
                hint="add its fingerprint to the network file (certificates = [...]) at every "
                f"partner: {own.fingerprint}",
            )
    try:
        cert = x509.load_pem_x509_certificate(_read(tls.certificate))
        identity = identity_from_certificate(cert)
    except (ValueError, AuthenticationError) as exc:
        raise ConfigError(
            f"{tls.certificate}: this certificate cannot be used ({exc})",
            hint="issue a certificate for this component (see docs/operator.md, certificates)",
        ) from None
    if identity != expected:
        raise ConfigError(
            f"{tls.certificate} is the certificate of {identity.uri}, but this configuration is "
            f"for {expected.uri}",
            hint="point 'tls.certificate' and 'tls.private_key' at this component's own files",
        )
    if server_name is not None:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = san.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        if server_name not in names:
            raise ConfigError(
                f"{tls.certificate} does not carry the name '{server_name}' that the network file "
                "gives this component, so clients would refuse it",
                hint="issue the certificate with that DNS name, or set tls_name in the network "
                "file to a name the certificate carries",
            )


def make_server(
    listen: str, tls: TlsFiles, workers: int = 16, pins: Pins | None = None
) -> grpc.Server:
    """A gRPC server on ``listen`` with mutual TLS; with ``pins`` (its network file's allow-list)
    only the listed client certificates pass the handshake when every party's list is complete."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    try:
        port = server.add_secure_port(listen, server_credentials(tls, pins))
    except RuntimeError:  # newer grpcio raises instead of returning 0
        port = 0
    if port == 0:
        raise Unavailable(
            f"cannot listen on {listen}",
            hint="is another process using that port? change the address in the network file",
        )
    return server


def peer_identity(
    context: grpc.ServicerContext, method: str, allowed: Iterable[Role], pins: Pins
) -> Identity:
    """The caller's identity from its certificate, checked against the roles allowed here and the
    network file's allow-list of certificate fingerprints (``pins``).

    Every refusal is logged with the peer address, the method and the reason (P8).
    """
    auth = context.auth_context()
    pems = cast(list[bytes], auth.get("x509_pem_cert") or [])
    try:
        if not pems:
            raise AuthenticationError("no client certificate presented")
        peer = _parsed(pems[0])
        check_validity(peer.not_before, peer.not_after)  # validity checked on every call
        if peer.identity is None:
            raise AuthenticationError(peer.problem)
        identity, printed = peer.identity, peer.fingerprint
        allowed_roles = set(allowed)
        if identity.role not in allowed_roles:
            raise WrongRole(
                f"a {identity.role} certificate may not call {method}; "
                f"allowed: {', '.join(sorted(r.value for r in allowed_roles))}"
            )
        listed = pins.allowed(identity)
        if listed and printed not in listed:
            raise CertificateRefused(
                f"the certificate of {shown(identity.uri)} (sha256 {short(printed)}...) is "
                "not on the network file's allow-list: it was revoked, or never listed",
                hint="use the organisation's current certificate; if it was just renewed, "
                "the network file must list it",
            )
    except AuthenticationError as exc:
        log.warning(
            "refused peer=%s method=%s reason=%s", context.peer(), method, shown(exc.message, 300)
        )
        raise
    return identity


@dataclass(frozen=True)
class _Peer:
    """What a peer's certificate says, read once per certificate: its identity (or why it names
    none), its validity period (checked on every call) and its fingerprint."""

    identity: Identity | None
    problem: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str


@functools.lru_cache(maxsize=1024)
def _parsed(pem: bytes) -> _Peer:
    """A peer's certificate, parsed once (a connection's certificate comes with every call; the
    cache is keyed by its bytes, so another certificate is another entry)."""
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise AuthenticationError("peer certificate could not be parsed") from None
    try:
        identity: Identity | None = identity_in_certificate(certificate)
        problem = ""
    except AuthenticationError as exc:
        identity, problem = None, exc.message
    return _Peer(
        identity,
        problem,
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
        fingerprint_pem(pem),
    )


def certificate_organisation(pem: bytes) -> str | None:
    """The organisation a peer certificate names, read through the same parsed-once cache as
    :func:`peer_identity` (for a metric's label; it checks nothing: the call was checked)."""
    try:
        identity = _parsed(pem).identity
    except AuthenticationError:
        return None
    return identity.organisation_id if identity is not None else None


def organisation_peer(
    context: grpc.ServicerContext, method: str, network: Network, pins: Pins | None = None
) -> Identity:
    """The calling organisation, which must be listed in the network file."""
    identity = peer_identity(context, method, [Role.ORGANISATION], pins or NetworkPins(network))
    if identity.organisation_id is None or network.organisation(identity.organisation_id) is None:
        log.warning(
            "refused peer=%s method=%s reason=unknown organisation %s",
            context.peer(),
            method,
            shown(identity.organisation_id or ""),
        )
        raise AuthenticationError(
            f"organisation '{shown(identity.organisation_id or '')}' is not part of network "
            f"'{network.name}'"
        )
    return identity


def claimed_identity(context: grpc.ServicerContext) -> str:
    """Who the caller's certificate says it is, without any check (for counting refusals)."""
    pems = cast(list[bytes], context.auth_context().get("x509_pem_cert") or [])
    if not pems:
        return "(no certificate)"
    try:
        identity = identity_from_pem(pems[0])
    except AuthenticationError:
        return "(unreadable certificate)"
    return identity.organisation_id or identity.uri


def abort(context: grpc.ServicerContext, error: BetrokkenError) -> NoReturn:
    metadata = [(ERROR_KEY, type(error).__name__), (HINT_KEY, _ascii(error.hint or ""))]
    if isinstance(error, WitnessStale):
        metadata.append((WITNESSED_KEY, str(error.witnessed_size)))
    context.set_trailing_metadata(tuple(metadata))
    context.abort(STATUS.get(error.status, grpc.StatusCode.INTERNAL), _ascii(error.message))
    raise AssertionError("unreachable")  # context.abort raises


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


F = TypeVar("F", bound=Callable[..., Any])


def _store_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a database failure (SQLAlchemy's). A process that never imported
    SQLAlchemy (``betrokken query``, docs/adr/0044) cannot have raised one, so it is not
    imported here."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def servicer_method(fn: F) -> F:
    """Map BetrokkenError to a gRPC status; log and hide anything unexpected.

    A database failure is UNAVAILABLE ("this service cannot answer now", never a "no"): the
    driver's message was logged at ERROR where it happened (:mod:`betrokken.db`), and the caller
    learns only that the service's store is unavailable.
    """

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except BetrokkenError as exc:
            abort(context, exc)
        except Exception as exc:
            if not _store_failure(exc):
                logging.getLogger("betrokken").exception("unexpected error in %s", fn.__name__)
                abort(context, InternalError("unexpected error; see the service log"))
            from betrokken.db import driver_message

            logging.getLogger("betrokken.store").error(
                "%s refused: the database failed (%s)", fn.__name__, driver_message(exc)
            )
            abort(
                context,
                Unavailable(
                    "the service's database is unavailable; nothing was answered",
                    hint="its operator sees why in the service log; it recovers by itself",
                ),
            )

    return wrapper  # type: ignore[return-value]


def _hanging(service: str, address: str, found: Handshake) -> Unavailable:
    """A server whose port takes the connection while its process says nothing: it hangs."""
    return Unavailable(
        f"the {service} at {address}: {found.problem}",
        hint="kijk of dat proces nog werkt (zijn log, `status`) en herstart het zo nodig; stel "
        f"de vraag daarna opnieuw / check the {service}'s process and log, restart it if "
        "needed, then ask again",
    )


def error_from_rpc(
    exc: grpc.RpcError,
    service: str,
    address: str,
    *,
    expected: str = "",
    tls: TlsFiles | None = None,
    allowed: frozenset[str] = frozenset(),
) -> BetrokkenError:
    """Rebuild the server's BetrokkenError from a failed call, or describe the transport failure.

    ``expected`` (the identity we meant to reach) and ``tls`` let a refused server certificate be
    reported as :class:`WrongPeer`, naming both identities; ``allowed`` (the fingerprints the
    network file lists for that server) lets one the handshake refused for not being listed be
    named as such. The diagnosis is for the message only: it never grants trust.
    """
    call: Any = exc
    code = call.code() if hasattr(call, "code") else None
    details = call.details() if hasattr(call, "details") else str(exc)
    metadata = dict(call.trailing_metadata() or ()) if hasattr(call, "trailing_metadata") else {}
    name = metadata.get(ERROR_KEY)
    if name:
        cls = error_class(str(name))
        hint = str(metadata.get(HINT_KEY) or "") or None
        if cls is WitnessStale:
            try:
                size = int(str(metadata.get(WITNESSED_KEY, "")))
            except ValueError:
                return InternalError(f"the {service} sent a malformed witness state")
            return WitnessStale(str(details), witnessed_size=size, hint=hint)
        return cls(str(details), hint=hint)
    lowered = str(details).lower()
    if (
        code == grpc.StatusCode.UNAVAILABLE
        and tls is not None
        and any(word in lowered for word in _TLS_WORDS)
    ):
        found = diagnose(address, tls)
        if found.silent:  # no certificate problem: nobody there answers
            return _hanging(service, address, found)
        if found.server_identity and expected and found.server_identity != expected:
            return WrongPeer(
                f"the server at {address} is not the {service} we meant to reach: we expected "
                f"{expected}, it presents {shown(found.server_identity, 200)}",
                hint="check the address in the network file; if it is right, tell the network's "
                "administrators: a server with another party's certificate answers there",
            )
        if allowed and found.server_fingerprint and found.server_fingerprint not in allowed:
            log.warning(
                "refused server=%s fingerprint=%s reason=not on the allow-list",
                address,
                found.server_fingerprint,
            )
            return CertificateRefused(
                f"the server at {address} presents a certificate that the network file does not "
                f"list for the {service} (sha256 {short(found.server_fingerprint)}...): it was "
                "revoked, or it is not the server we mean to reach; the TLS handshake refused it, "
                "so nothing was sent",
                hint="tell the network's administrators; if the certificate was renewed, the "
                "network file must list the new certificate",
            )
        if found.problem and not found.problem.startswith("no connection"):
            return CertificateRefused(
                f"the {service} at {address}: {found.problem}",
                hint="our certificate is refused: renew it, or check tls.ca and the network's CA"
                if found.ours_refused
                else "check that the address is the network's and that tls.ca holds the network "
                "CA; otherwise tell the network's administrators",
            )
        if found.server_identity and expected and found.server_identity != expected:
            return WrongPeer(
                f"the server at {address} is not the {service} we meant to reach: we expected "
                f"{expected}, it presents {shown(found.server_identity, 200)}",
                hint="check the address in the network file; if it is right, tell the network's "
                "administrators: a server with another party's certificate answers there",
            )
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(
            f"the {service} at {address} cannot be reached ({details})",
            hint=f"check that the {service} runs and that its certificate and ours share the "
            "network CA",
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if tls is not None and (found := diagnose(address, tls)).silent:
            return _hanging(service, address, found)
        return Unavailable(f"the {service} at {address} did not answer in time")
    return InternalError(f"the {service} at {address} failed: {code} {details}")
