"""Certificates and key files as files on disk: fingerprints, a key that belongs to its
certificate, who may read a key file, expiry, and what went wrong in a TLS handshake.

The TLS diagnosis uses Python's ``ssl`` module for the *message* only: gRPC's own error for a
failed handshake says little ("cannot be reached"); a second handshake made here tells a foreign
CA from an expired certificate from a refused one. Trust is never decided here (docs/adr/0016).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from betrokken.errors import CertificateRefused, ConfigError

if TYPE_CHECKING:  # pydantic only where a file is validated (docs/adr/0045)
    from betrokken.config.schema import TlsFiles

log = logging.getLogger("betrokken.security")
EXPIRY_WARNING_DAYS = 30
# The HTTP/2 client connection preface followed by an empty SETTINGS frame (RFC 9113, 3.4).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


# --- fingerprints --------------------------------------------------------------------------------
def fingerprint_der(der: bytes) -> str:
    """The certificate's SHA-256 fingerprint: 64 lower-case hex digits (what the network file
    lists; ``openssl x509 -noout -fingerprint -sha256`` prints the same with colons)."""
    return hashlib.sha256(der).hexdigest()


def fingerprint_pem(pem: bytes) -> str:
    return fingerprint_der(
        x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    )


def fingerprint_file(path: str | Path) -> str:
    return fingerprint_pem(Path(path).read_bytes())


def short(fingerprint: str) -> str:
    return fingerprint[:16]


# --- key files -----------------------------------------------------------------------------------
def check_private_file(path: Path, what: str) -> None:
    """Refuse a private key or secret that every user of the machine can read; warn when its
    group can (a deliberate ``0640 root:betrokken`` set-up is common; docs/adr/0016)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # the reader reports a missing file in its own words
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigError(
            f"{path}: this {what} can be read by every user of the machine (mode {mode:04o})",
            hint=f"restrict it and start again: chmod 600 {path}",
        )
    if mode & (stat.S_IRGRP | stat.S_IWGRP):
        log.warning(
            "%s %s can be read by its group (mode %04o); restrict it unless that is deliberate: "
            "chmod 600 %s",
            what,
            path,
            mode,
            path,
        )


# --- our own certificate -------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnCertificate:
    certificate: x509.Certificate
    fingerprint: str

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


def load_own(tls: TlsFiles, now: dt.datetime | None = None) -> OwnCertificate:
    """Our certificate, checked: readable, its private key belongs to it, the key file is not
    readable by everyone, and it is valid now. Problems are :class:`CertificateRefused` (exit 6)
    saying which file to fix."""
    now = now or dt.datetime.now(dt.UTC)
    check_private_file(Path(tls.private_key), "TLS private key")
    try:
        pem = Path(tls.certificate).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except OSError as exc:
        raise ConfigError(
            f"{tls.certificate}: cannot read the certificate ({exc.strerror})"
        ) from None
    except ValueError:
        raise ConfigError(f"{tls.certificate}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(Path(tls.private_key).read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"{tls.private_key}: cannot read the key ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise ConfigError(
            f"{tls.private_key}: not an unencrypted PEM private key",
            hint="betrokken reads the key without a passphrase; protect it with file permissions",
        ) from None
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != cert.public_key().public_bytes(*public):
        raise CertificateRefused(
            f"the private key {tls.private_key} does not belong to the certificate "
            f"{tls.certificate}",
            hint="point tls.private_key at the key the certificate was issued for (a renewed "
            "certificate comes with its own key)",
        )
    if now > cert.not_valid_after_utc:
        raise CertificateRefused(
            f"our certificate {tls.certificate} expired on {cert.not_valid_after_utc:%Y-%m-%d} "
            "(UTC); every peer refuses it",
            hint="install a renewed certificate and its key (a running server picks them up "
            "without a restart)",
        )
    if now < cert.not_valid_before_utc:
        raise CertificateRefused(
            f"our certificate {tls.certificate} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            hint="check this machine's clock (NTP) or wait until then",
        )
    return OwnCertificate(cert, fingerprint_der(cert.public_bytes(serialization.Encoding.DER)))


def expiry_warning(
    tls: TlsFiles, days: int = EXPIRY_WARNING_DAYS, now: dt.datetime | None = None
) -> str | None:
    """A warning when our certificate expires within ``days`` (None when it does not)."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = x509.load_pem_x509_certificate(Path(tls.certificate).read_bytes())
    except (OSError, ValueError):
        return f"the certificate {tls.certificate} cannot be read"
    left = cert.not_valid_after_utc - now
    if left.total_seconds() <= 0:
        return f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}; peers refuse it"
    if left <= dt.timedelta(days=days):
        return (
            f"the certificate expires on {cert.not_valid_after_utc:%Y-%m-%d} "
            f"(in {left.days} day(s)); renew it now"
        )
    return None


# --- what a failed handshake was -----------------------------------------------------------------
@dataclass(frozen=True)
class Handshake:
    """What a diagnosing handshake found (for messages only)."""

    problem: str  # "" when the handshake and the server's first bytes were fine
    server_fingerprint: str = ""
    ours_refused: bool = False  # the server refused our certificate (rather than we its)
    server_identity: str = ""  # the identity URI the server's certificate carries
    silent: bool = False  # it took the connection but never answered the handshake (hangs)


SILENT = (
    "de server neemt de verbinding aan maar antwoordt niet: het proces hangt of is overbelast / "
    "the server takes the connection but does not answer: its process hangs or is overloaded"
)


_VERIFY_REASONS = {
    10: "the server's certificate has expired",
    9: "the server's certificate is not valid yet (check the clocks)",
    18: "the server presents a self-signed certificate, not one of the network CA",
    19: "the server's certificate is not issued by this network's CA (another CA)",
    20: "the server's certificate is not issued by this network's CA (another CA)",
    21: "the server's certificate is not issued by this network's CA (another CA)",
    2: "the server's certificate is not issued by this network's CA (another CA)",
    62: "the server's certificate does not carry the name this network gives it",
}
_ALERTS = {
    "UNKNOWN_CA": "the server does not accept our certificate: it is not issued by the CA it "
    "trusts (another network's CA, or an old CA bundle there)",
    "CERTIFICATE_EXPIRED": "the server refuses our certificate: it has expired",
    "BAD_CERTIFICATE": "the server refuses our certificate",
    "CERTIFICATE_UNKNOWN": "the server refuses our certificate",
    "CERTIFICATE_REQUIRED": "the server requires a client certificate",
    "DECRYPT_ERROR": "our certificate and private key do not belong together",
    "HANDSHAKE_FAILURE": "the TLS handshake failed (no common protocol or certificate type)",
}


def diagnose(
    address: str, tls: TlsFiles, server_name: str | None = None, timeout: float = 2.0
) -> Handshake:
    """Make one TLS handshake as gRPC would (our certificate, the network CA and — when given —
    the server's name) and say what went wrong. For messages only: it never grants trust."""
    host, _, port = address.rpartition(":")
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = server_name is not None
        context.load_verify_locations(tls.ca)
        context.load_cert_chain(tls.certificate, tls.private_key)
        context.set_alpn_protocols(["h2"])
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            return Handshake("our certificate and private key do not belong together", "", True)
        return Handshake(f"our TLS files cannot be used ({exc.reason or exc})", "", True)
    except OSError as exc:
        return Handshake(f"our TLS files cannot be read ({exc.strerror})", "", True)
    try:
        raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except (OSError, ValueError) as exc:
        return Handshake(f"no connection ({getattr(exc, 'strerror', None) or exc})")
    try:
        with raw, context.wrap_socket(raw, server_hostname=server_name) as conn:
            der = conn.getpeercert(binary_form=True) or b""
            printed = fingerprint_der(der) if der else ""
            conn.settimeout(timeout)
            identity = _identity_of(der)
            try:
                # A server that accepted us answers HTTP/2's preface with its settings; one that
                # refused our certificate sends an alert (TLS 1.3) or just closes the connection.
                conn.sendall(_H2_PREFACE)
                first = conn.recv(1)
            except ssl.SSLError as exc:
                return _alert(exc, printed)
            except (TimeoutError, OSError):
                first = b"?"
            if not first:
                return Handshake(
                    "the server closed the connection after the handshake: it refuses our "
                    "certificate (not issued by the CA it trusts, or expired)",
                    printed,
                    ours_refused=True,
                    server_identity=identity,
                )
            return Handshake("", printed, server_identity=identity)
    except ssl.SSLCertVerificationError as exc:
        reason = _VERIFY_REASONS.get(
            exc.verify_code, f"the server's certificate is refused ({exc.verify_message})"
        )
        return Handshake(reason)
    except ssl.SSLError as exc:
        return _alert(exc, "")
    except TimeoutError:  # the port takes the connection, then the process says nothing
        return Handshake(SILENT, silent=True)
    except (OSError, ValueError) as exc:
        return Handshake(f"no connection ({getattr(exc, 'strerror', None) or exc})")


def _identity_of(der: bytes) -> str:
    from betrokken.identity.names import identity_from_certificate

    try:
        return identity_from_certificate(x509.load_der_x509_certificate(der)).uri
    except Exception as exc:  # for a message only: whatever the certificate holds
        return f"(not a betrokken identity: {exc})"


def _alert(exc: ssl.SSLError, printed: str) -> Handshake:
    reason = str(exc.reason or exc).upper()
    for key, text in _ALERTS.items():
        if key in reason:
            return Handshake(text, printed, ours_refused=True)
    return Handshake(f"the TLS handshake failed ({exc.reason or exc})", printed)
