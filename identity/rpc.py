"""gRPC plumbing shared by every service: mutual TLS, peer identity, errors on the wire.

This is the one place where :mod:`betrokken.errors` meets ``grpc.StatusCode``: servicers raise
``BetrokkenError``; :func:`servicer_method` turns it into a status with the error's class name in
the trailing metadata; :func:`error_from_rpc` turns it back into the same class on the client.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from concurrent import futures
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import grpc

from betrokken.config.schema import Network, TlsFiles
from betrokken.errors import (
    AuthenticationError,
    BetrokkenError,
    ConfigError,
    InternalError,
    Unavailable,
    WitnessStale,
    WrongPeer,
    WrongRole,
    error_class,
)
from betrokken.identity.names import Identity, Role, identity_from_certificate, identity_from_pem

log = logging.getLogger("betrokken.security")

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


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(_read(tls.private_key), _read(tls.certificate))],
        root_certificates=_read(tls.ca),
        require_client_auth=True,
    )


def channel(address: str, tls: TlsFiles, server_name: str) -> grpc.Channel:
    """A mutual-TLS channel that accepts only a server whose certificate carries ``server_name``.

    ``server_name`` is the DNS name the network file gives the peer we mean to reach (a node of
    organisation X, the coordinator, the key service): a server with any other certificate of the
    same network — another organisation's, say — fails the handshake (P8).
    """
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca),
        private_key=_read(tls.private_key),
        certificate_chain=_read(tls.certificate),
    )
    return grpc.secure_channel(
        address,
        credentials,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.ssl_target_name_override", server_name),
            ("grpc.default_authority", server_name),
        ],
    )


def presented_identity(address: str, tls: TlsFiles, timeout: float = 3.0) -> str:
    """Who the server at ``address`` says it is (for error messages only, never for trust)."""
    host, port = address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we only read the certificate to describe it
    context.load_cert_chain(tls.certificate, tls.private_key)
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=None) as conn,
        ):
            der = conn.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return "(could not be read)"
    if not der:
        return "(no certificate)"
    from cryptography import x509

    try:
        return identity_from_certificate(x509.load_der_x509_certificate(der)).uri
    except (AuthenticationError, ValueError) as exc:
        return f"(not a betrokken identity: {exc})"


def check_own_certificate(tls: TlsFiles, expected: Identity, server_name: str | None) -> None:
    """Refuse to start when our own certificate is not the identity our configuration names."""
    from cryptography import x509

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


def make_server(listen: str, tls: TlsFiles, workers: int = 16) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    try:
        port = server.add_secure_port(listen, server_credentials(tls))
    except RuntimeError:  # newer grpcio raises instead of returning 0
        port = 0
    if port == 0:
        raise Unavailable(
            f"cannot listen on {listen}",
            hint="is another process using that port? change the address in the network file",
        )
    return server


def peer_identity(context: grpc.ServicerContext, method: str, allowed: Iterable[Role]) -> Identity:
    """The caller's identity from its certificate, checked against the roles allowed here.

    Every refusal is logged with the peer address, the method and the reason (P8).
    """
    auth = context.auth_context()
    pems = cast(list[bytes], auth.get("x509_pem_cert") or [])
    try:
        if not pems:
            raise AuthenticationError("no client certificate presented")
        identity = identity_from_pem(pems[0])
        allowed_roles = set(allowed)
        if identity.role not in allowed_roles:
            raise WrongRole(
                f"a {identity.role} certificate may not call {method}; "
                f"allowed: {', '.join(sorted(r.value for r in allowed_roles))}"
            )
    except AuthenticationError as exc:
        log.warning("refused peer=%s method=%s reason=%s", context.peer(), method, exc.message)
        raise
    return identity


def organisation_peer(context: grpc.ServicerContext, method: str, network: Network) -> Identity:
    """The calling organisation, which must be listed in the network file."""
    identity = peer_identity(context, method, [Role.ORGANISATION])
    if identity.organisation_id is None or network.organisation(identity.organisation_id) is None:
        log.warning(
            "refused peer=%s method=%s reason=unknown organisation %s",
            context.peer(),
            method,
            identity.organisation_id,
        )
        raise AuthenticationError(
            f"organisation '{identity.organisation_id}' is not part of network '{network.name}'"
        )
    return identity


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


def servicer_method(fn: F) -> F:
    """Map BetrokkenError to a gRPC status; log and hide anything unexpected."""

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except BetrokkenError as exc:
            abort(context, exc)
        except Exception:
            logging.getLogger("betrokken").exception("unexpected error in %s", fn.__name__)
            abort(context, InternalError("unexpected error; see the service log"))

    return wrapper  # type: ignore[return-value]


def error_from_rpc(
    exc: grpc.RpcError,
    service: str,
    address: str,
    *,
    expected: str = "",
    tls: TlsFiles | None = None,
) -> BetrokkenError:
    """Rebuild the server's BetrokkenError from a failed call, or describe the transport failure.

    ``expected`` (the identity we meant to reach) and ``tls`` let a refused server certificate be
    reported as :class:`WrongPeer`, naming both identities.
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
    if code == grpc.StatusCode.UNAVAILABLE and (
        "peer certificate" in lowered or "hostname verification" in lowered
    ):
        presented = presented_identity(address, tls) if tls is not None else "(unknown)"
        return WrongPeer(
            f"the server at {address} is not the {service} we meant to reach: we expected "
            f"{expected or service}, it presents {presented}",
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
        return Unavailable(f"the {service} at {address} did not answer in time")
    return InternalError(f"the {service} at {address} failed: {code} {details}")
