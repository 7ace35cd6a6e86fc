"""Who a certificate says its holder is.

Identities are URIs in the certificate's subject alternative name:

* ``urn:betrokken:org:<organisation id>`` — a partner organisation (its node and its regisseurs),
* ``urn:betrokken:coordinator`` — the coordinator,
* ``urn:betrokken:keyservice`` — the key service.

Identity always comes from the certificate, never from a field in a request (P8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from betrokken.errors import AuthenticationError

ORG_PREFIX = "urn:betrokken:org:"
COORDINATOR_URI = "urn:betrokken:coordinator"
KEYSERVICE_URI = "urn:betrokken:keyservice"


class Role(StrEnum):
    ORGANISATION = "organisation"
    COORDINATOR = "coordinator"
    KEYSERVICE = "keyservice"


@dataclass(frozen=True)
class Identity:
    role: Role
    organisation_id: str | None = None

    @property
    def uri(self) -> str:
        if self.role is Role.ORGANISATION:
            return ORG_PREFIX + (self.organisation_id or "")
        return COORDINATOR_URI if self.role is Role.COORDINATOR else KEYSERVICE_URI

    def __str__(self) -> str:
        return self.uri


def organisation_uri(org_id: str) -> str:
    return ORG_PREFIX + org_id


def parse_identity_uri(uri: str) -> Identity:
    if uri.startswith(ORG_PREFIX) and len(uri) > len(ORG_PREFIX):
        return Identity(Role.ORGANISATION, uri[len(ORG_PREFIX) :])
    if uri == COORDINATOR_URI:
        return Identity(Role.COORDINATOR)
    if uri == KEYSERVICE_URI:
        return Identity(Role.KEYSERVICE)
    raise AuthenticationError(f"certificate identity '{uri}' is not a betrokken identity")


def identity_from_certificate(cert: x509.Certificate, now: dt.datetime | None = None) -> Identity:
    """The holder's identity; refuses expired or not-yet-valid certificates and foreign ones."""
    check_validity(cert.not_valid_before_utc, cert.not_valid_after_utc, now)
    return identity_in_certificate(cert)


def check_validity(
    not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime | None = None
) -> None:
    """Refuse a certificate outside its validity period (:class:`AuthenticationError`)."""
    now = now or dt.datetime.now(dt.UTC)
    if now > not_after:
        raise AuthenticationError(
            f"certificate expired on {not_after:%Y-%m-%d %H:%M} UTC",
            hint="renew the certificate",
        )
    if now < not_before:
        raise AuthenticationError(f"certificate not valid before {not_before:%Y-%m-%d %H:%M} UTC")


def identity_in_certificate(cert: x509.Certificate) -> Identity:
    """The one betrokken identity URI a certificate carries (its validity not checked)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise AuthenticationError("certificate has no subject alternative name") from None
    uris = [u for u in san.value.get_values_for_type(x509.UniformResourceIdentifier)]
    ours = [u for u in uris if u.startswith("urn:betrokken:")]
    if len(ours) != 1:
        raise AuthenticationError(
            f"certificate must carry exactly one betrokken identity URI, found {len(ours)}"
        )
    return parse_identity_uri(ours[0])


def identity_from_pem(pem: bytes, now: dt.datetime | None = None) -> Identity:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise AuthenticationError("peer certificate could not be parsed") from None
    return identity_from_certificate(cert, now)
