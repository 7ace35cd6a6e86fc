"""What the configuration's rules are, without pydantic: the one copy of every check the models in
:mod:`betrokken.config.schema` run beyond their fields' types and bounds, and of the look-ups the
components use.

The pydantic models call these functions (a field's ``AfterValidator``, a model's
``model_validator``, a look-up method); so does the light reader of :mod:`betrokken.config.light`,
which vouches for the usual file on ``betrokken query``'s path without importing pydantic
(docs/adr/0045). A check written here is therefore the same check on both paths; a check added to
the models anywhere else is one the light reader does not know, and it then leaves the file to
pydantic (the generated :mod:`betrokken.config.shape` names every check a model runs).
"""

from __future__ import annotations

import functools
import hashlib
import re
from enum import StrEnum
from typing import Any

from betrokken.crypto import envelope
from betrokken.crypto.pseudonym import key_id_for

IDENTIFIER = r"^[a-z0-9][a-z0-9-]{0,62}$"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class DisclosureLevel(StrEnum):
    """What an organisation discloses on a hit, per purpose (see docs/dpo.md)."""

    ORGANISATION = "organisation"  # name, domain, contact point, since
    DOMAIN = "domain"  # "a care partner is involved"; contact via the regisseur's desk
    NONE = "none"  # declined: nothing is looked up, nothing disclosed
    DEFER = "defer"  # a professional decides per case; identical answer for hit and miss


def is_identifier(value: str) -> bool:
    return re.fullmatch(IDENTIFIER, value) is not None


def default_server_name(org_id: str) -> str:
    """The DNS name a node's certificate carries when the network file sets no tls_name."""
    return f"{org_id}.org.betrokken.internal"


def is_loopback_host(host: str) -> bool:
    return host in LOOPBACK_HOSTS or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None


# --- checks of one field (a model's AfterValidator) ----------------------------------------------
def loopback(value: str) -> str:
    host = value.rsplit(":", 1)[0]
    if not is_loopback_host(host):
        raise ValueError(
            f"metrics are served without TLS, so only on a loopback address (127.0.0.1:PORT), "
            f"not {host[:64]}; let a Prometheus agent on this host scrape it"
        )
    return value


def normalise_fingerprint(value: str) -> str:
    """A certificate's SHA-256 fingerprint as 64 lower-case hex digits; ``AB:CD:...`` (as
    ``openssl x509 -noout -fingerprint -sha256`` prints it) and ``sha256:...`` are accepted."""
    text = value.strip().lower().removeprefix("sha256:").removeprefix("sha256 fingerprint=")
    text = text.replace(":", "")
    if not _FINGERPRINT.fullmatch(text):
        raise ValueError(
            "a certificate fingerprint is the certificate's SHA-256: 64 hex digits "
            "(openssl x509 -noout -fingerprint -sha256 -in FILE)"
        )
    return text


def normalise_certificate(value: str) -> str:
    """An allow-list entry: the certificate itself (PEM, kept in its canonical form) or, for
    networks written before certificates were listed, only its SHA-256 fingerprint."""
    if PEM_BEGIN not in value:
        return normalise_fingerprint(value)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    text = value.strip()
    if text.count(PEM_BEGIN) != 1 or not text.startswith(PEM_BEGIN):
        raise ValueError("an allow-list entry holds one PEM certificate, nothing else")
    try:
        certificate = x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("an allow-list entry is not a readable PEM certificate") from None
    return certificate.public_bytes(Encoding.PEM).decode("ascii")


@functools.lru_cache(maxsize=4096)
def entry_fingerprint(entry: str) -> str:
    """The SHA-256 fingerprint an allow-list entry stands for."""
    if not entry.startswith(PEM_BEGIN):
        return entry
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(entry.encode("ascii")).public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def entry_certificate(entry: str) -> str | None:
    """The PEM certificate of an allow-list entry (None for a bare fingerprint)."""
    return entry if entry.startswith(PEM_BEGIN) else None


def _utf8_at_most(limit: int, what: str, value: str) -> str:
    if len(value.encode("utf-8")) > limit:
        raise ValueError(f"{what} is longer than {limit} bytes")
    return value


def organisation_name(value: str) -> str:
    return _utf8_at_most(128, "the name", value)


def organisation_domain(value: str) -> str:
    return _utf8_at_most(64, "the domain", value)


def organisation_contact(value: str) -> str:
    return _utf8_at_most(256, "the contact point", value)


def case_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"case_pattern is not a regular expression ({exc})") from None
    return _utf8_at_most(256, "the case pattern", value)


def envelope_key(value: str) -> str:
    if value:
        import base64
        import binascii

        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("envelope_key is not base64") from None
        if len(raw) != envelope.PUBLIC_KEY_SIZE:
            raise ValueError(
                f"envelope_key holds {len(raw)} bytes; an MLKEM768-X25519 public key has "
                f"{envelope.PUBLIC_KEY_SIZE}"
            )
    return value


def advice_label(value: str) -> str:
    return _utf8_at_most(128, "the advice label", value)


def known_suite(value: str) -> str:
    if value != "ristretto255-SHA512":
        raise ValueError("only the suite 'ristretto255-SHA512' is supported")
    return value


def distinct_feeds(feeds: list[Any]) -> list[Any]:
    for what, values in (
        ("name", [f.name for f in feeds]),
        ("token_sha256", [f.token_sha256 for f in feeds if f.token_sha256]),
        ("client_cert_cn", [f.client_cert_cn for f in feeds if f.client_cert_cn]),
        ("drop_folder", [str(f.drop_folder) for f in feeds if f.drop_folder is not None]),
    ):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            shown_twice = ", ".join(twice) if what == "name" else f"{len(twice)} value(s)"
            raise ValueError(
                f"two feeds share a {what} ({shown_twice}): each system needs its own, or "
                "its changes would be written into the trail under another system's name"
            )
    return feeds


# --- checks across a model's fields (a model's model_validator) -----------------------------------
def organisation_node_has_envelope_key(org: Any) -> None:
    if org.node_address and not org.envelope_key:
        raise ValueError(
            f"organisation '{org.id}' runs a node but has no envelope_key "
            "(its node's public HPKE key, from `betrokken network init` or `node keys`)"
        )


def office_hours_not_empty(hours: Any) -> None:
    if hours.start == hours.end:
        raise ValueError(
            f"office_hours: start and end are both {hours.start}; use start = 0, end = 24 "
            "for all day"
        )


def _no_duplicates(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what}: id '{item}' appears twice")
        seen.add(item)


def network_consistent(network: Any) -> None:
    org_ids = [o.id for o in network.organisations]
    _no_duplicates("organisations", org_ids)
    _no_duplicates("purposes", [p.id for p in network.purposes])
    known_orgs = set(org_ids)
    known_purposes = {p.id for p in network.purposes}
    for purpose in network.purposes:
        for org in purpose.allowed_organisations:
            if org not in known_orgs:
                raise ValueError(
                    f"purpose '{purpose.id}' allows unknown organisation '{org}'; "
                    f"known organisations: {', '.join(sorted(known_orgs))}"
                )
    seen: set[tuple[str, str]] = set()
    for policy in network.policies:
        if policy.organisation not in known_orgs:
            raise ValueError(f"policy names unknown organisation '{policy.organisation}'")
        if policy.purpose not in known_purposes:
            raise ValueError(f"policy names unknown purpose '{policy.purpose}'")
        key = (policy.organisation, policy.purpose)
        if key in seen:
            raise ValueError(f"two policies for organisation '{key[0]}' and purpose '{key[1]}'")
        seen.add(key)
    _no_duplicates("advice codes", [a.code for a in network.advice_codes])
    for table in ("quotas", "bulk_quotas", "access_quotas"):
        for named in getattr(network.keyservice, table):
            if named not in known_orgs:
                raise ValueError(f"keyservice.{table} names unknown organisation '{named}'")
    askers = {o for purpose in network.purposes for o in purpose.allowed_organisations}
    for organisation in network.organisations:
        if organisation.id in askers and not organisation.question_key:
            raise ValueError(
                f"organisation '{organisation.id}' may ask questions but has no question_key "
                "(the verifier of the key it signs questions with)"
            )
    _no_duplicates("pseudonym keys", [o.pseudonym_key for o in network.organisations])
    _witnesses_can_cosign(network)


def _witnesses_can_cosign(network: Any) -> None:
    named = network.coordinator.witnesses
    if named is not None:
        _no_duplicates("coordinator.witnesses", list(named))
        for org_id in named:
            org = organisation(network, org_id)
            if org is None or not org.node_address or not org.log_key:
                raise ValueError(
                    f"coordinator.witnesses names '{org_id}', which is not an organisation "
                    "with a node_address and a log_key (a witness cosigns with its node's "
                    "trail key)"
                )
    quorum = network.coordinator.witness_quorum
    if quorum is None:
        return
    count = len(witness_ids(network))
    if count >= 2 and not 1 <= quorum <= count - 1:
        raise ValueError(
            f"coordinator.witness_quorum is {quorum}, but with {count} witnesses it must be "
            f"between 1 and {count - 1}: a node never counts its own cosignature, and 0 "
            "would let the coordinator show each node a history of its own"
        )
    if count < 2 and quorum != 0:
        raise ValueError(
            f"coordinator.witness_quorum is {quorum}, but the network has {count} witness(es): "
            "there is no other witness to cosign; leave witness_quorum out"
        )


def network_access_request_purpose(network: Any) -> None:
    named = network.access_requests.purpose
    if named and purpose(network, named) is None:
        raise ValueError(
            f"access_requests.purpose names unknown purpose '{named}'; known purposes: "
            + ", ".join(p.id for p in network.purposes)
        )


# --- look-ups the components use (the models' methods) -------------------------------------------
def organisation(network: Any, org_id: str) -> Any:
    return next((o for o in network.organisations if o.id == org_id), None)


def purpose(network: Any, purpose_id: str) -> Any:
    return next((p for p in network.purposes if p.id == purpose_id), None)


def disclosure_level(network: Any, org_id: str, purpose_id: str) -> DisclosureLevel:
    for policy in network.policies:
        if policy.organisation == org_id and policy.purpose == purpose_id:
            return policy.level  # type: ignore[no-any-return]
    org = organisation(network, org_id)
    return org.default_disclosure if org else DisclosureLevel.NONE


def daily_quota(network: Any, org_id: str) -> int:
    keyservice = network.keyservice
    return keyservice.quotas.get(org_id, keyservice.default_daily_quota)  # type: ignore[no-any-return]


def daily_bulk_quota(network: Any, org_id: str) -> int:
    keyservice = network.keyservice
    return keyservice.bulk_quotas.get(org_id, keyservice.default_daily_bulk_quota)  # type: ignore[no-any-return]


def daily_access_quota(network: Any, org_id: str) -> int:
    keyservice = network.keyservice
    return keyservice.access_quotas.get(org_id, keyservice.default_daily_access_quota)  # type: ignore[no-any-return]


def office_hours_for(network: Any, purpose_id: str) -> Any:
    found = purpose(network, purpose_id)
    if found is not None and found.office_hours is not None:
        return found.office_hours
    return network.office_hours


def advice(network: Any, code: str) -> Any:
    return next((a for a in network.advice_codes if a.code == code), None)


def nodes(network: Any) -> list[Any]:
    return [o for o in network.organisations if o.node_address]


def witness_ids(network: Any) -> list[str]:
    """The organisations whose nodes cosign the coordinator's log (in the file's order)."""
    if network.coordinator.witnesses is not None:
        return list(network.coordinator.witnesses)
    return [o.id for o in network.organisations if o.node_address and o.log_key]


def witness_quorum(network: Any) -> int:
    """How many valid cosignatures of *other* witnesses a checkpoint needs before a node
    answers under it (or a requester trusts its receipt): as configured, else
    :func:`safe_witness_quorum`."""
    if network.coordinator.witness_quorum is not None:
        return network.coordinator.witness_quorum  # type: ignore[no-any-return]
    return safe_witness_quorum(network)


def safe_witness_quorum(network: Any) -> int:
    """The smallest quorum with which no two inconsistent histories can both be trusted.

    Two parties that trust two histories each saw a quorum of cosignatures besides their
    own, and an honest witness cosigns only one of them. When both parties are witnesses
    themselves, neither cosigns the other's history, so the two quorums come from the other
    N - 2 witnesses and must overlap: more than (N - 2) / 2, i.e. N // 2. When some node
    or asking organisation is not a witness, a quorum must be a majority of all N. At most
    N - 1: a witness never counts itself.
    """
    witnesses = set(witness_ids(network))
    count = len(witnesses)
    if count < 2:
        return 0
    askers = {o for p in network.purposes for o in p.allowed_organisations}
    relying = {o.id for o in nodes(network)} | askers
    quorum = count // 2 if relying <= witnesses else count // 2 + 1
    return max(1, min(quorum, count - 1))


def pseudonym_key_id(org: Any) -> str:
    """The id every pseudonym under this organisation's key carries."""
    return key_id_for(bytes.fromhex(org.pseudonym_key))


def envelope_public_key(org: Any) -> bytes:
    import base64

    return base64.b64decode(org.envelope_key)


def server_name(org: Any) -> str:
    return org.tls_name or default_server_name(org.id)  # type: ignore[no-any-return]
