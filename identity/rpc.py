"""gRPC plumbing shared by every service: mutual TLS, peer identity, errors on the wire.

This is the one place where :mod:`betrokken.errors` meets ``grpc.StatusCode``: servicers raise
``BetrokkenError``; :func:`servicer_method` turns it into a status with the error's class name in
the trailing metadata; :func:`error_from_rpc` turns it back into the same class on the client.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from concurrent import futures
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import grpc

from betrokken.config.schema import Network, TlsFiles
from betrokken.errors import (
    AuthenticationError,
    BetrokkenError,
    InternalError,
    Unavailable,
    WrongRole,
    error_class,
)
from betrokken.identity.names import Identity, Role, identity_from_pem

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
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(_read(tls.private_key), _read(tls.certificate))],
        root_certificates=_read(tls.ca),
        require_client_auth=True,
    )


def channel(address: str, tls: TlsFiles) -> grpc.Channel:
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
        ],
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
    context.set_trailing_metadata(
        (
            (ERROR_KEY, type(error).__name__),
            (HINT_KEY, _ascii(error.hint or "")),
        )
    )
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


def error_from_rpc(exc: grpc.RpcError, service: str, address: str) -> BetrokkenError:
    """Rebuild the server's BetrokkenError from a failed call, or describe the transport failure."""
    call: Any = exc
    code = call.code() if hasattr(call, "code") else None
    details = call.details() if hasattr(call, "details") else str(exc)
    metadata = dict(call.trailing_metadata() or ()) if hasattr(call, "trailing_metadata") else {}
    name = metadata.get(ERROR_KEY)
    if name:
        return error_class(str(name))(str(details), hint=str(metadata.get(HINT_KEY) or "") or None)
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(
            f"the {service} at {address} cannot be reached ({details})",
            hint=f"check that the {service} runs and that its certificate and ours share the "
            "network CA",
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable(f"the {service} at {address} did not answer in time")
    return InternalError(f"the {service} at {address} failed: {code} {details}")
