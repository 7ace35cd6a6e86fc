"""Identity comes from the certificate: URIs, validity, roles."""

from __future__ import annotations

import datetime as dt

import pytest

from betrokken.errors import AuthenticationError
from betrokken.identity.names import (
    COORDINATOR_URI,
    Role,
    identity_from_pem,
    organisation_uri,
    parse_identity_uri,
)
from betrokken.identity.pki import create_ca, issue_certificate


def test_identity_uris_round_trip() -> None:
    identity = parse_identity_uri(organisation_uri("politie-nh"))
    assert identity.role is Role.ORGANISATION and identity.organisation_id == "politie-nh"
    assert identity.uri == "urn:betrokken:org:politie-nh"
    assert parse_identity_uri(COORDINATOR_URI).role is Role.COORDINATOR
    with pytest.raises(AuthenticationError):
        parse_identity_uri("urn:other:thing")
    with pytest.raises(AuthenticationError):
        parse_identity_uri("urn:betrokken:org:")


def test_certificate_identity_and_validity() -> None:
    ca = create_ca("test CA")
    leaf = issue_certificate(ca, organisation_uri("ggz"), "ggz")
    assert identity_from_pem(leaf.cert_pem).organisation_id == "ggz"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    with pytest.raises(AuthenticationError) as info:
        identity_from_pem(leaf.cert_pem, now=later)
    assert "expired" in info.value.message
    with pytest.raises(AuthenticationError):
        identity_from_pem(b"not a certificate")
