"""The shape of betrokken's configuration files, validated with pydantic.

Two kinds of file:

* the **network file** (``network.toml``): one per network, the same at every partner. It names the
  organisations, the purposes (doelen) with their legal basis (grondslag) and who may ask them, the
  disclosure policies, the key service (address, pinned public key, key id), the coordinator,
  retention terms and quotas;
* a **component file** per running component (``node.toml``, ``coordinator.toml``,
  ``keyservice.toml``): which network file it belongs to, its certificate and key, its database URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from betrokken.config import plain
from betrokken.config.plain import (
    IDENTIFIER,
    LOOPBACK_HOSTS,
    PEM_BEGIN,
    DisclosureLevel,
    default_server_name,
    entry_certificate,
    entry_fingerprint,
    is_identifier,
    normalise_certificate,
    normalise_fingerprint,
)

__all__ = [
    "IDENTIFIER",
    "LOOPBACK_HOSTS",
    "PEM_BEGIN",
    "DisclosureLevel",
    "default_server_name",
    "entry_certificate",
    "entry_fingerprint",
    "is_identifier",
    "normalise_certificate",
    "normalise_fingerprint",
]

Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
Address = Annotated[str, Field(pattern=r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")]
TlsName = Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$")]
PseudonymKey = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
LoopbackAddress = Annotated[Address, AfterValidator(plain.loopback)]
HealthInterval = Annotated[float, Field(gt=0, le=3600)]


Fingerprint = Annotated[str, AfterValidator(normalise_fingerprint)]
CertificateEntry = Annotated[str, AfterValidator(normalise_certificate)]


def _fingerprints(what: str) -> list[str]:
    return Field(  # type: ignore[no-any-return]
        default_factory=list,
        description=f"the certificates (PEM) that may speak for {what}; clients and servers "
        "accept no other in the TLS handshake; revoking one is removing it; a bare SHA-256 "
        "fingerprint is still accepted but checked only after the handshake; empty: any "
        "certificate of the network CA with the right identity (development only)",
    )


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(Strict):
    id: Identifier
    name: str = Field(min_length=1)
    domain: str = Field(min_length=1, description="e.g. zorg, veiligheid, gemeente, wonen")
    contact: str = Field(min_length=1, description="contact point shown on a hit")
    node_address: Address | None = Field(
        default=None, description="host:port of the organisation's node; absent = asks only"
    )
    pseudonym_key: PseudonymKey = Field(
        description="hex ristretto255 public key of this organisation's OPRF key, derived by the "
        "key service (`betrokken keyservice derive`); pins every pseudonym made for it"
    )
    envelope_key: str = Field(
        default="",
        description="base64 HPKE public key (MLKEM768-X25519) that questions to this "
        "organisation's node are sealed to; required with node_address",
    )
    question_key: str = Field(
        default="",
        description="verifier key (C2SP vkey) of the key this organisation signs its questions "
        "with; required when a purpose allows it to ask",
    )
    tls_name: TlsName | None = Field(
        default=None,
        description="the DNS name in the node's server certificate that clients check "
        "(default: <id>.org.betrokken.internal)",
    )
    default_disclosure: DisclosureLevel = Field(
        default=DisclosureLevel.NONE,
        description="what it discloses for a purpose without a policy: closed unless configured",
    )
    professional_secrecy: bool = Field(
        default=False,
        description="bound by beroepsgeheim: only 'defer', 'none' or 'domain' (with at least two "
        "members of its domain) for any purpose",
    )
    acts_for_others: bool = Field(
        default=False,
        description="has no basis of its own (a ZVH): every question names an aanmelder from the "
        "purpose's on_behalf_of",
    )
    case_pattern: str = Field(
        default="",
        description="regular expression every case reference of its askers must match in full "
        "(empty: any reference)",
    )
    log_key: str = Field(
        default="", description="verifier key (C2SP vkey) of this node's own audit trail"
    )
    defer_message: str = Field(
        default="A professional of this organisation will decide whether information can be "
        "shared for this case.",
    )
    certificates: list[CertificateEntry] = _fingerprints(
        "this organisation (its node and its askers)"
    )

    @field_validator("name")
    @classmethod
    def _short_name(cls, value: str) -> str:
        return plain.organisation_name(value)

    @field_validator("case_pattern")
    @classmethod
    def _case_pattern(cls, value: str) -> str:
        return plain.case_pattern(value)

    @field_validator("domain")
    @classmethod
    def _short_domain(cls, value: str) -> str:
        return plain.organisation_domain(value)

    @field_validator("contact")
    @classmethod
    def _short_contact(cls, value: str) -> str:
        return plain.organisation_contact(value)

    @field_validator("envelope_key")
    @classmethod
    def _envelope_key(cls, value: str) -> str:
        return plain.envelope_key(value)

    @model_validator(mode="after")
    def _node_has_envelope_key(self) -> Self:
        plain.organisation_node_has_envelope_key(self)
        return self

    @property
    def pseudonym_key_id(self) -> str:
        """The id every pseudonym under this organisation's key carries."""
        return plain.pseudonym_key_id(self)

    @property
    def envelope_public_key(self) -> bytes:
        return plain.envelope_public_key(self)

    @property
    def server_name(self) -> str:
        return plain.server_name(self)


# --- the FG's report and the access-request letter (office hours, the letter's fixed texts) ------
class OfficeHours(Strict):
    """When questions for a purpose are expected, in Amsterdam time; the FG's report flags the
    others. ``start`` to ``end`` o'clock (a start after the end runs over midnight; 0 to 24 is
    all day); ``weekend``: Saturday and Sunday too (a ZSM desk: 0, 24, true)."""

    start: int = Field(default=7, ge=0, le=23)
    end: int = Field(default=19, ge=1, le=24)
    weekend: bool = False

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        plain.office_hours_not_empty(self)
        return self


class AccessRequestSettings(Strict):
    """What an access-request letter says that the network decides once for every partner."""

    purpose: str = Field(
        default="",
        description="the purpose an FG asks the partners' nodes under, for the letter's current "
        "registrations (each partner's policy for it is its restriction: organisation, domain, "
        "defer for a professional to decide, or none); empty: the letter reads only the FG's own "
        "node",
    )

    source: str = Field(
        default="",
        description="where the registrations come from, in words for the citizen (default: each "
        "partner's own case system)",
    )


class Role(Strict):
    """A role a user may ask in: a closed list per network."""

    id: Identifier
    label: str = Field(min_length=1, description="what a person reads (Dutch)")


class Aanmelder(Strict):
    """An organisation a question may be asked for (the partner that brought the case in)."""

    organisation: Identifier
    legal_basis: str = Field(min_length=1, description="the aanmelder's basis for this purpose")


class ServiceAccount(Strict):
    """The only user and role the command line may ask as, for one organisation."""

    organisation: Identifier
    user: str = Field(min_length=1, max_length=128)
    role: Identifier


class UserLimits(Strict):
    """Bounds per user: how many persons a day, and how many persons a list may give one case."""

    daily_persons: int = Field(default=200, ge=1, description="persons per user per day")
    persons_per_case: int = Field(
        default=8,
        ge=1,
        description="at most this many persons of a list under one case reference, and only as "
        "kind 'gezin'; a larger list gives each person a case of its own",
    )


class Purpose(Strict):
    """A doel: why a query may be asked, on which grondslag, and by whom."""

    id: Identifier
    description: str = Field(min_length=1)
    legal_basis: str = Field(min_length=1, description="the grondslag recorded with each query")
    allowed_organisations: list[Identifier] = Field(min_length=1)
    allowed_roles: list[Identifier] = Field(
        default_factory=list,
        description="the roles (ids from the network's roles) that may ask; empty: nobody "
        "(network check and init refuse it)",
    )
    on_behalf_of: list[Aanmelder] = Field(
        default_factory=list,
        description="the aanmelders a requester may ask for under this purpose, each with its "
        "own basis; empty: a requester asks only on its own basis",
    )
    watch_days: int = Field(
        default=0,
        ge=0,
        le=3660,
        description="how long a question may leave a signal at the nodes; 0: never",
    )
    office_hours: OfficeHours | None = Field(
        default=None,
        description="when this purpose is asked (the FG's report flags the rest); absent: the "
        "network's office_hours",
    )
    defer_hours: float = Field(
        default=72.0,
        gt=0,
        le=720,
        description="how long a 'defer' partner's professionals have to decide, counted from the "
        "question; then the asker is told the decision, or 'no information given'",
    )


class AdviceCode(Strict):
    """A short coded advice a registration may carry ("neem eerst contact op"), shown with its hit;
    never free text with personal data."""

    code: Identifier
    label: str = Field(min_length=1, description="what the asker reads (Dutch)")

    @field_validator("label")
    @classmethod
    def _short_label(cls, value: str) -> str:
        return plain.advice_label(value)


class DisclosurePolicy(Strict):
    """What ``organisation`` discloses when asked for ``purpose``."""

    organisation: Identifier
    purpose: Identifier
    level: DisclosureLevel
    providing_basis: str = Field(
        default="",
        description="the organisation's own basis for disclosing (verstrekkingsgrondslag); "
        "required for every level but 'none'",
    )
    decided_by: list[Identifier] = Field(
        default_factory=list,
        description="level 'defer': the portal roles of this organisation whose professionals "
        "decide (e.g. regisseur); empty: nobody, so every question passes its term undecided",
    )


class AfterTheHit(Strict):
    """What happens after a hit: the found partner's notices, the asker's follow-up (network file
    ``[after_the_hit]``; docs/adr/0024, sections 5-7)."""

    notice_days: int = Field(
        default=90,
        ge=1,
        le=3660,
        description="how long a node keeps a notice for its contact point (then it is deleted; "
        "the trail keeps the disclosure and the acknowledgement)",
    )
    follow_up_working_days: int = Field(
        default=10, ge=1, le=260, description="a hit counts as followed up in time within this"
    )
    follow_up_goal_percent: int = Field(
        default=90,
        ge=0,
        le=100,
        description="the share of hits followed up in time the network "
        "aims at (the reports show it beside the figure)",
    )


class KeyServiceSettings(Strict):
    address: Address
    suite: str = "ristretto255-SHA512"
    default_daily_quota: int = Field(
        default=20_000, ge=0, description="persons per organisation per day, for questions"
    )
    quotas: dict[str, int] = Field(default_factory=dict, description="organisation id -> per day")
    default_daily_bulk_quota: int = Field(
        default=200_000,
        ge=0,
        description="persons per organisation per day for imports (own key only)",
    )
    bulk_quotas: dict[str, int] = Field(default_factory=dict)
    default_daily_access_quota: int = Field(
        default=20,
        ge=0,
        description="persons per organisation per day for its DPO's access requests (every key)",
    )
    access_quotas: dict[str, int] = Field(default_factory=dict)
    max_batch: int = Field(default=1_000, ge=1, le=100_000)
    log_key: str = Field(default="", description="verifier key of the key service's audit log")
    tls_name: TlsName = Field(
        default="keyservice.betrokken.internal",
        description="the DNS name in the key service's certificate that clients check",
    )
    certificates: list[CertificateEntry] = _fingerprints("the key service")

    @field_validator("suite")
    @classmethod
    def _known_suite(cls, value: str) -> str:
        return plain.known_suite(value)


class CoordinatorSettings(Strict):
    address: Address
    max_batch: int = Field(default=100, ge=1, le=10_000)
    deadline_seconds: float = Field(default=3.0, gt=0, le=60)
    log_key: str = Field(
        description="verifier key (C2SP vkey) of the coordinator's audit log checkpoints; "
        "every node and requester checks checkpoints against it"
    )
    rate_limit_per_minute: int = Field(default=600, ge=1, description="questions per organisation")
    freshness_seconds: int = Field(
        default=120,
        ge=10,
        le=3600,
        description="a question older (or further in the future) than this is refused",
    )
    tls_name: TlsName = Field(
        default="coordinator.betrokken.internal",
        description="the DNS name in the coordinator's certificate that clients check",
    )
    certificates: list[CertificateEntry] = _fingerprints("the coordinator")
    witnesses: list[Identifier] | None = Field(
        default=None,
        description="the organisations whose nodes witness the log: they cosign its checkpoints "
        "before any node answers under them (default: every organisation with a node)",
    )
    witness_quorum: int | None = Field(
        default=None,
        ge=0,
        description="how many cosignatures of *other* witnesses a node needs before it answers "
        "(default: the smallest quorum with which two histories can never both be trusted: half "
        "the witnesses when every node and asker is one, else a majority)",
    )


class Retention(Strict):
    registration_days: int = Field(default=730, ge=1, description="latest end of a registration")
    audit_years: int = Field(default=5, ge=5, description="NEN 7513: at least 5 years")


class Network(Strict):
    """The network file."""

    name: str = Field(min_length=1)
    desk_contact: str = Field(
        default="the Zorg- en Veiligheidshuis desk",
        description="contact point given when only a domain is disclosed",
    )
    organisations: list[Organisation] = Field(min_length=2)
    purposes: list[Purpose] = Field(min_length=1)
    policies: list[DisclosurePolicy] = Field(default_factory=list)
    keyservice: KeyServiceSettings
    coordinator: CoordinatorSettings
    retention: Retention = Field(default_factory=Retention)
    advice_codes: list[AdviceCode] = Field(
        default_factory=list, description="the advice a registration may carry, shown with a hit"
    )
    office_hours: OfficeHours = Field(
        default_factory=OfficeHours,
        description="office hours of every purpose without its own (default 07:00-19:00, "
        "Monday to Friday)",
    )
    access_requests: AccessRequestSettings = Field(default_factory=AccessRequestSettings)
    roles: list[Role] = Field(default_factory=list, description="every role a user may ask in")
    service_accounts: list[ServiceAccount] = Field(
        default_factory=list, description="the only --user/--role the command line asks as"
    )
    user_limits: UserLimits = Field(default_factory=UserLimits)
    after_the_hit: AfterTheHit = Field(default_factory=AfterTheHit)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        plain.network_consistent(self)
        return self

    # --- look-ups used by the components (one copy, in config/plain.py) ---------------------
    def organisation(self, org_id: str) -> Organisation | None:
        return plain.organisation(self, org_id)  # type: ignore[no-any-return]

    def purpose(self, purpose_id: str) -> Purpose | None:
        return plain.purpose(self, purpose_id)  # type: ignore[no-any-return]

    def disclosure_level(self, org_id: str, purpose_id: str) -> DisclosureLevel:
        return plain.disclosure_level(self, org_id, purpose_id)

    def daily_quota(self, org_id: str) -> int:
        return plain.daily_quota(self, org_id)

    def daily_bulk_quota(self, org_id: str) -> int:
        return plain.daily_bulk_quota(self, org_id)

    def daily_access_quota(self, org_id: str) -> int:
        return plain.daily_access_quota(self, org_id)

    @model_validator(mode="after")
    def _access_request_purpose(self) -> Self:
        plain.network_access_request_purpose(self)
        return self

    def office_hours_for(self, purpose_id: str) -> OfficeHours:
        return plain.office_hours_for(self, purpose_id)  # type: ignore[no-any-return]

    def advice(self, code: str) -> AdviceCode | None:
        return plain.advice(self, code)  # type: ignore[no-any-return]

    def nodes(self) -> list[Organisation]:
        return plain.nodes(self)

    def witness_ids(self) -> list[str]:
        """The organisations whose nodes cosign the coordinator's log (in the file's order)."""
        return plain.witness_ids(self)

    def witness_quorum(self) -> int:
        """How many valid cosignatures of *other* witnesses a checkpoint needs before a node
        answers under it (or a requester trusts its receipt): as configured, else
        :meth:`safe_witness_quorum`."""
        return plain.witness_quorum(self)

    def safe_witness_quorum(self) -> int:
        """The smallest quorum with which no two inconsistent histories can both be trusted
        (config/plain.py says why)."""
        return plain.safe_witness_quorum(self)


class TlsFiles(Strict):
    certificate: str = Field(description="PEM certificate of this component")
    private_key: str = Field(description="PEM private key of this component")
    ca: str = Field(description="PEM CA bundle that signs every certificate of the network")


class ImportSettings(Strict):
    """``[import]`` in node.toml: how this organisation's case-system export is read."""

    columns: dict[str, str] = Field(
        default_factory=dict,
        description='field -> column header in the export, e.g. bsn = "BSN", since = '
        '"Startdatum"; an empty header leaves a field unread',
    )


class FeedSystem(Strict):
    """``[[feeds]]`` in node.toml: one of the organisation's case systems allowed to feed the
    node's registrations without a person in between (docs/operator.md 'Feeds',
    docs/integration.md). Closed by default: a system not listed here may not feed, has no drop
    folder and no alarm.

    The registration API (node/feeds_api.py) knows a system by its OAuth 2.0 client-credentials
    secret (``token_sha256``: the SHA-256 of the secret, hex; the secret itself is never stored)
    and/or the common name of its TLS client certificate (``client_cert_cn``); `betrokken node
    watch` imports the nightly full exports it drops into ``drop_folder``.
    """

    name: Identifier = Field(description="the system's name, written into the node's trail")
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None,
        description="SHA-256 (hex) of the system's client secret for the registration API",
    )
    client_cert_cn: str | None = Field(
        default=None,
        max_length=253,
        description="common name of the system's TLS client certificate (signed by the node's CA)",
    )
    drop_folder: Path | None = Field(
        default=None,
        description="folder (relative to this file) the system's nightly full export is dropped "
        "into; `betrokken node watch` imports each complete .csv/.xlsx file with --sync "
        "semantics for this system. Absent: no folder is watched",
    )
    quiet_after_minutes: int | None = Field(
        default=None,
        ge=1,
        description="raise an alarm when no successful feed came from this system for this long "
        "(e.g. 1560 for a nightly export: 26 hours); absent: no alarm",
    )
    hold_back_share: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="a file that would end more than this share of the registrations this "
        "system feeds is held back for a beheerder to confirm in the portal",
    )


class FeedApi(Strict):
    """``[feed_api]`` in node.toml: where the registration API listens (absent: it does not)."""

    listen: Address = Field(
        default="127.0.0.1:8470",
        description="host:port of the HTTP/JSON gateway (TLS with the node's certificate)",
    )
    grpc_listen: Address | None = Field(
        default=None, description="host:port of the gRPC registration service; absent = none"
    )
    max_changes: int = Field(
        default=1000, ge=1, le=10_000, description="the most changes one bulk call may carry"
    )


class NodeConfig(Strict):
    network: str = Field(description="path to network.toml (relative to this file)")
    organisation: Identifier
    database: str = Field(description="SQLAlchemy URL, e.g. sqlite:///node.db")
    tls: TlsFiles
    log_key: str = Field(description="file with this node's audit-trail signing key (mode 0600)")
    envelope_key: str | None = Field(
        default=None,
        description="file with the node's private HPKE key seed (mode 0600); needed to answer",
    )
    question_key: str | None = Field(
        default=None,
        description="file with the organisation's question signing key (mode 0600); needed to ask",
    )
    listen: Address | None = Field(default=None, description="default: the network's node_address")
    expiry_interval_seconds: float = Field(default=3600.0, gt=0)
    witness_interval_seconds: float = Field(default=60.0, gt=0)
    metrics_listen: LoopbackAddress | None = Field(
        default=None,
        description="loopback host:port of the Prometheus metrics endpoint; absent = no endpoint",
    )
    health_interval_seconds: HealthInterval = Field(
        default=5.0,
        description="how often the health probes run (and, for the coordinator, "
        "how often it reads its nodes' health)",
    )
    import_: ImportSettings = Field(default_factory=ImportSettings, alias="import")
    # No false "no" after a fault (docs/operator.md, 'Recovery'): the signed anchor outside the
    # database, and the share of active registrations an `import --sync` may end without --force.
    state_file: str = Field(
        default="node.state",
        description="the node's signed state file (relative to this file): what its database "
        "held, so an empty or older database is refused",
    )
    sync_guard_share: float = Field(default=0.10, ge=0.0, le=1.0)
    # The partners' case systems that feed registrations (closed unless listed) and the API.
    feeds: list[FeedSystem] = Field(default_factory=list)
    feed_api: FeedApi | None = None

    @field_validator("feeds")
    @classmethod
    def _distinct_feeds(cls, feeds: list[FeedSystem]) -> list[FeedSystem]:
        return plain.distinct_feeds(feeds)


class CoordinatorConfig(Strict):
    network: str
    database: str
    tls: TlsFiles
    log_key: str = Field(description="file with the log's checkpoint signing key (mode 0600)")
    listen: Address | None = None
    prune_interval_seconds: float = Field(default=86_400.0, gt=0)
    metrics_listen: LoopbackAddress | None = Field(
        default=None,
        description="loopback host:port of the Prometheus metrics endpoint; absent = no endpoint",
    )
    health_interval_seconds: HealthInterval = Field(
        default=5.0,
        description="how often the health probes run (and, for the coordinator, "
        "how often it reads its nodes' health)",
    )


class KeyServiceConfig(Strict):
    network: str
    database: str
    tls: TlsFiles
    oprf_seed: str = Field(
        description="file holding the hex master seed every organisation's OPRF key is derived "
        "from (mode 0600)"
    )
    log_key: str = Field(description="file with the log's checkpoint signing key (mode 0600)")
    listen: Address | None = None
    metrics_listen: LoopbackAddress | None = Field(
        default=None,
        description="loopback host:port of the Prometheus metrics endpoint; absent = no endpoint",
    )
    health_interval_seconds: HealthInterval = Field(
        default=5.0,
        description="how often the health probes run (and, for the coordinator, "
        "how often it reads its nodes' health)",
    )


class PortalTls(Strict):
    """The portal's own HTTPS certificate (a web certificate, not the network's mTLS one)."""

    certificate: str = Field(description="PEM certificate chain for the portal's host name")
    private_key: str = Field(description="PEM private key of that certificate (mode 0600)")


class OidcSettings(Strict):
    """Login through the organisation's own identity provider (OpenID Connect, code flow)."""

    issuer: str = Field(
        min_length=1,
        description="the identity provider's issuer URL; its /.well-known/openid-configuration "
        "is read at start-up",
    )
    client_id: str = Field(min_length=1)
    client_secret_file: str = Field(description="file holding the client secret (mode 0600)")
    redirect_uri: str = Field(
        description="this portal's callback URL as registered at the identity provider, "
        "ending in /inloggen/oidc/terug"
    )
    username_claim: str = Field(
        default="preferred_username", description="the claim that names the person"
    )
    roles_claim: str = Field(
        default="betrokken_roles",
        description="the claim (a list) with the person's portal roles: regisseur, dpo, beheerder",
    )
    purposes_claim: str = Field(
        default="betrokken_purposes",
        description="the claim (a list) with the purposes a regisseur may ask; absent: every "
        "purpose the network allows this organisation",
    )
    scope: str = "openid profile"
    button_label: str = Field(
        default="", description="text of the login button, e.g. 'Inloggen met Gemeente-account'"
    )


class PortalConfig(Strict):
    """``portal.toml``: one organisation's web portal, run beside its node (it uses the node's
    configuration for the organisation's keys, trail and database)."""

    node: str = Field(default="node.toml", description="path to this organisation's node.toml")
    listen: Address = Field(default="127.0.0.1:8080", description="host:port to serve on")
    tls: PortalTls | None = Field(
        default=None,
        description="HTTPS certificate; required unless listen is a loopback address (then a "
        "reverse proxy on this host terminates TLS)",
    )
    session_secret: str = Field(
        default="portal-session.key",
        description="file with the secret CSRF tokens are derived from (mode 0600; written by "
        "`betrokken network init`, or 32 random bytes hex)",
    )
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: float = Field(default=10.0, gt=0, le=24)
    local_accounts: bool = Field(
        default=True,
        description="allow accounts kept by the portal itself (argon2id password + TOTP); "
        "manage them with `betrokken portal user`",
    )
    max_failed_logins: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    collect_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="how often the portal collects late answers and signals from the "
        "coordinator's mailbox in the background (counted in the menu under Meldingen); 0: only "
        "when a user opens Meldingen",
    )
    oidc: OidcSettings | None = None
    organisation_label: str = Field(
        default="", description="name shown in the header (default: the network file's name)"
    )

    @model_validator(mode="after")
    def _tls_or_loopback(self) -> Self:
        host = self.listen.rsplit(":", 1)[0]
        if self.tls is None and not plain.is_loopback_host(host):
            raise ValueError(
                f"the portal listens on {self.listen} without [tls]: serve on 127.0.0.1 behind a "
                "reverse proxy that terminates HTTPS, or give [tls] certificate and private_key"
            )
        if not self.local_accounts and self.oidc is None:
            raise ValueError("no way to log in: set local_accounts = true or configure [oidc]")
        return self
