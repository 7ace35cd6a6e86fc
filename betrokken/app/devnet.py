"""``betrokken network init``: a complete development network in one folder.

Writes the network file with example purposes and policies, a development CA, certificates for
every organisation, the coordinator and the key service, a fresh OPRF master seed (with every
organisation's derived public key pinned), a question key per organisation and an envelope key
per node, and one configuration file per component, on free loopback ports.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from betrokken.audit.keys import log_origin, write_log_key
from betrokken.config.load import load_network
from betrokken.config.schema import (
    CoordinatorSettings,
    KeyServiceSettings,
    default_server_name,
    is_identifier,
)
from betrokken.crypto.envelope import EnvelopeKey
from betrokken.crypto.note import NoteKey
from betrokken.crypto.oprf import derive_organisation_key
from betrokken.crypto.question import question_key_name
from betrokken.errors import BadInput, shown
from betrokken.identity.certs import fingerprint_pem
from betrokken.identity.keyfiles import new_seed, write_envelope_key, write_note_key, write_seed
from betrokken.identity.names import COORDINATOR_URI, KEYSERVICE_URI, organisation_uri
from betrokken.identity.pki import Issued, create_ca, issue_certificate, write_issued
from betrokken.rules import check_lawful

DOMAIN_HINTS = (
    (("zvh", "veiligheidshuis", "ketenhuis"), "zvh", "Zorg- en Veiligheidshuis"),
    (("politie", "om-", "reclassering", "halt", "raad", "dji", "zsm"), "veiligheid", ""),
    (("ggz", "verslaving", "huisarts", "veilig-thuis", "jeugdzorg", "zorg"), "zorg", ""),
    (("gemeente", "wijkteam", "buurtteam"), "gemeente", ""),
    (("woning", "wonen", "corporatie"), "wonen", ""),
)
SECRECY_HINTS = ("ggz", "huisarts", "verslaving")
LOOPBACK = ("localhost", "127.0.0.1")


def guess_domain(org_id: str) -> str:
    for words, domain, _ in DOMAIN_HINTS:
        if any(word in org_id for word in words):
            return domain
    return "overig"


def _name(org_id: str) -> str:
    special = {"ggz": "GGZ", "zvh": "Zorg- en Veiligheidshuis", "om": "OM", "nh": "Noord-Holland"}
    return " ".join(special.get(part, part.capitalize()) for part in org_id.split("-"))


def _contact(org_id: str, number: int) -> str:
    """A development contact point: desk, a (fictitious) phone number and an e-mail address."""
    return f"{_name(org_id)}, coördinatiepunt, 023 555 {number % 10_000:04d}, {org_id}@example.nl"


AANMELDER_BASIS = {
    "veiligheid": "artikel 20 Wet politiegegevens (deelname aan een samenwerkingsverband)",
    "gemeente": "artikel 5.2.1 Wmo 2015; artikel 7.4.0 Jeugdwet",
}
PROVIDING_BASIS = {
    "zvh": "artikel 6, eerste lid, onder e, AVG (taak van algemeen belang, namens de aanmelder)",
    "veiligheid": "artikel 20 Wet politiegegevens (verstrekking aan een samenwerkingsverband)",
    "gemeente": "artikel 5.2.1 Wmo 2015; artikel 7.4.0 Jeugdwet",
    "zorg": "artikel 5.2.6 Wmo 2015 (verstrekking zonder toestemming door Veilig Thuis)",
    "wonen": "artikel 6, eerste lid, onder e, AVG",
    "overig": "artikel 6, eerste lid, onder e, AVG",
}
ACCESS_REQUEST_BASIS = (
    "artikel 15 AVG: de betrokkene heeft recht op inzage; de FG van de partner beslist per "
    "verzoek of een beperking nodig is (artikel 23 AVG / artikel 41 UAVG)"
)
SECRECY_DOMAIN_BASIS = (
    "artikel 7:457 BW met artikel 9, tweede lid, onder h, AVG: alleen het domein, zonder de "
    "organisatie te noemen (conflict van plichten per geval)"
)


def _level(org_id: str, purpose: str, domains: dict[str, str], secrecy: list[str]) -> str:
    """The development network's disclosure: a secrecy-bound organisation defers to a
    professional for police questions and answers with its domain alone elsewhere, but only when
    another member of its domain answers the same way (else it defers); that member then answers
    with the domain too. Everyone else names itself."""
    zorg = [o for o, d in domains.items() if d == domains[org_id]]
    pair = any(o in secrecy for o in zorg) and len(zorg) >= 2
    if org_id in secrecy:
        if purpose == "zsm-context" or not pair:
            return "defer"
        return "domain"
    if pair and purpose != "zsm-context":
        return "domain"
    return "organisation"


def _providing_basis(org_id: str, disclosure: str, domains: dict[str, str], secret: bool) -> str:
    if disclosure == "defer":
        return (
            "artikel 7:457 BW: een professional beslist per geval (toestemming, "
            "conflict van plichten)"
        )
    if secret:
        return SECRECY_DOMAIN_BASIS
    return PROVIDING_BASIS[domains[org_id]]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Ranges of ports this process holds (an open file with an exclusive lock each): a second
# network made on the same machine while this one still starts its services (two demos) skips
# them, instead of finding them free because nothing listens there yet.
_HELD: dict[int, int] = {}


def _hold_range(start: int) -> bool:
    """Take the machine-wide lock on the range starting at ``start``; False when another live
    process holds it. The lock goes with the process (the kernel drops it when it ends)."""
    if start in _HELD:
        return True
    path = Path(tempfile.gettempdir()) / f"betrokken-ports-{start}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _HELD[start] = fd
    return True


def _release_range(start: int) -> None:
    fd = _HELD.pop(start, None)
    if fd is not None:
        os.close(fd)


def find_ports(count: int, base: int | None) -> list[int]:
    """``count`` consecutive free loopback ports from ``base`` (or the first free range that no
    other network on this machine has taken: see :func:`_hold_range`)."""
    starts = [base] if base is not None else list(range(7400, 9000, 50))
    for start in starts:
        ports = list(range(start, start + count))
        if base is None and not _hold_range(start):
            continue
        if all(port_is_free(p) for p in ports):
            return ports
        if base is None:
            _release_range(start)
    if base is not None:
        raise BadInput(
            f"ports {base}..{base + count - 1} are not all free on 127.0.0.1",
            hint="choose another --base-port",
        )
    raise BadInput("no free range of loopback ports found", hint="pass --base-port")


def _toml(header: Sequence[str], data: Mapping[str, object]) -> str:
    """``data`` as TOML (through tomli-w, never by hand), after ``header``: comment lines for the
    person who opens the file (a TOML writer keeps no comments of its own)."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header)
    return comments + "\n" + tomli_w.dumps(data, multiline_strings=True)


def _pem(issued: Issued) -> str:
    """One certificate of a ``certificates`` allow-list (docs/adr/0016; the certificate itself,
    so that clients and servers accept no other in the TLS handshake: ADR 0024, 11)."""
    return issued.cert_pem.decode("ascii").strip() + "\n"


# What the network file's writer used to say beside its fields, said once at the top.
NETWORK_HEADER = [
    "betrokken network file: the same at every partner. See docs/operator.md.",
    "",
    "certificates: the allow-list of each party; only these pass the TLS handshake; revoke one",
    "  by removing it. log_key: the key its audit log's checkpoints are signed with (C2SP vkey).",
    "keyservice: default_daily_quota and default_daily_bulk_quota are persons per organisation",
    "  per day: questions, and (separately) its own imports.",
    "organisations: pseudonym_key is its OPRF public key (from the key service's seed),",
    "  question_key its question key, envelope_key the HPKE key questions to its node are sealed",
    "  to; professional_secrecy = beroepsgeheim; acts_for_others: it has no basis of its own and",
    "  always names an aanmelder (on_behalf_of).",
    "roles: the closed list of roles a user may ask in. purposes: closed unless configured, only",
    "  allowed_roles may ask; on_behalf_of lists the partners a question may be asked for (the",
    "  aanmelder), each with its basis. access_requests: an FG's letter reads each partner's",
    "  current registration by asking under this purpose; every partner defers it to its own",
    "  FG (decided_by dpo), who agrees or restricts per request (art. 23 AVG / art. 41 UAVG).",
    "service_accounts: the only --user/--role the command line may ask as (people ask through",
    "  the portal). user_limits: persons a day, and persons one case reference may hold.",
]


@dataclass(frozen=True)
class DevNetwork:
    directory: Path
    network_file: Path
    keyservice_config: Path
    coordinator_config: Path
    node_configs: dict[str, Path]
    portal_configs: dict[str, Path]


def init_network(
    directory: Path,
    org_ids: Sequence[str],
    *,
    base_port: int | None = None,
    name: str = "dev-network",
    registration_days: int = 730,
    quota: int = 50_000,
    service_users: Sequence[str] = ("tester",),
    acts_for_others: Sequence[str] = (),
) -> DevNetwork:
    # The name is part of every log's origin and key name (signed notes allow no space or '+').
    if (
        not name
        or not name.isprintable()
        or any(c in name for c in " +\"'")
        or len(name.encode("utf-8", "replace")) > 64
    ):
        raise BadInput(
            f"the network name '{shown(name)}' must be printable text of at most 64 bytes, "
            "without spaces, quotes or '+'",
            hint="e.g. --name kennemerland or --name zvh-kennemerland",
        )
    if base_port is not None and not 1024 <= base_port <= 65535 - (2 + len(org_ids)):
        raise BadInput(
            f"--base-port {base_port} leaves no room for {2 + len(org_ids)} ports below 65536",
            hint="choose a port between 1024 and 65000",
        )
    if len(org_ids) < 2:
        raise BadInput("a network needs at least two organisations", hint="--orgs a,b,c")
    for org_id in org_ids:
        if not is_identifier(org_id):
            raise BadInput(
                f"'{shown(org_id)}' is not a valid organisation id",
                hint="use lower-case letters, digits and hyphens, e.g. politie-nh",
            )
    if len(set(org_ids)) != len(org_ids):
        raise BadInput("an organisation id appears twice in --orgs")
    if (directory / "network.toml").exists():
        raise BadInput(
            f"{directory} already holds a network",
            hint="choose an empty folder, or remove the old network first",
        )
    services = 2 + len(org_ids)
    ports = find_ports(2 * services + len(org_ids), base_port)
    ks_port, coord_port, node_ports = ports[0], ports[1], ports[2:services]
    # Each component's Prometheus endpoint (loopback only; production files leave it out).
    metrics = {name: ports[services + i] for i, name in enumerate(["keyservice", "coordinator"])}
    metrics |= {org: ports[services + 2 + i] for i, org in enumerate(org_ids)}
    # Each organisation's web portal (HTTP on loopback; production puts HTTPS in front).
    portal_ports = {org: ports[2 * services + i] for i, org in enumerate(org_ids)}

    ca = create_ca(f"betrokken development CA ({name})")
    (directory / "ca").mkdir(parents=True, exist_ok=True)
    write_issued(directory / "ca", "ca", ca)

    seed = new_seed()
    ks_dir = directory / "keyservice"
    write_seed(ks_dir / "oprf.seed", seed)
    ks_name = KeyServiceSettings.model_fields["tls_name"].default
    coord_name = CoordinatorSettings.model_fields["tls_name"].default
    ks_cert = issue_certificate(ca, KEYSERVICE_URI, "key service", hosts=(*LOOPBACK, ks_name))
    write_issued(ks_dir, "keyservice", ks_cert)
    coord_dir = directory / "coordinator"
    coord_cert = issue_certificate(
        ca, COORDINATOR_URI, "coordinator", hosts=(*LOOPBACK, coord_name)
    )
    write_issued(coord_dir, "coordinator", coord_cert)
    org_certs = {
        org: issue_certificate(
            ca, organisation_uri(org), org, hosts=(*LOOPBACK, default_server_name(org))
        )
        for org in org_ids
    }
    coord_log = NoteKey.generate(log_origin(name, "coordinator"))
    write_log_key(coord_dir / "log.key", coord_log)
    ks_log = NoteKey.generate(log_origin(name, "keyservice"))
    write_log_key(ks_dir / "log.key", ks_log)
    node_logs = {org: NoteKey.generate(log_origin(name, org)) for org in org_ids}
    question_keys = {org: NoteKey.generate(question_key_name(name, org)) for org in org_ids}
    envelope_keys = {org: EnvelopeKey.generate() for org in org_ids}

    domains = {org: guess_domain(org) for org in org_ids}
    secrecy = [o for o in org_ids if any(word in o for word in SECRECY_HINTS)]
    askers = [o for o in org_ids if domains[o] == "zvh"] or [org_ids[0]]
    police = [o for o in org_ids if "politie" in o or o.startswith("om")]
    municipal = [o for o in org_ids if domains[o] == "gemeente"]

    network: dict[str, object] = {
        "name": name,
        "desk_contact": "Zorg- en Veiligheidshuis, regiedesk, 023 000 0000",
        "keyservice": {
            "address": f"127.0.0.1:{ks_port}",
            "suite": "ristretto255-SHA512",
            "default_daily_quota": quota,
            "default_daily_bulk_quota": max(quota, 200_000),
            "max_batch": 1000,
            "log_key": ks_log.verifier(),
            "certificates": [_pem(ks_cert)],
        },
        "coordinator": {
            "address": f"127.0.0.1:{coord_port}",
            "max_batch": 100,
            "deadline_seconds": 3.0,
            "rate_limit_per_minute": 600,
            "log_key": coord_log.verifier(),
            "certificates": [_pem(coord_cert)],
        },
        "roles": [
            {"id": "regisseur", "label": "Regisseur (procesregisseur, casusregisseur)"},
            {"id": "fg", "label": "Functionaris gegevensbescherming"},
        ],
        "retention": {"registration_days": registration_days, "audit_years": 5},
        "access_requests": {"purpose": "inzageverzoek"},
    }
    organisations: list[dict[str, object]] = []
    for number, (org_id, port) in enumerate(zip(org_ids, node_ports, strict=True)):
        organisation: dict[str, object] = {
            "id": org_id,
            "name": _name(org_id),
            "domain": domains[org_id],
            "contact": _contact(org_id, 100 + 37 * number),
            "node_address": f"127.0.0.1:{port}",
        }
        if org_id in secrecy:
            organisation["professional_secrecy"] = True
        if org_id in acts_for_others:
            organisation["acts_for_others"] = True
        organisation |= {
            "log_key": node_logs[org_id].verifier(),
            "pseudonym_key": derive_organisation_key(seed, org_id).public.hex(),
            "question_key": question_keys[org_id].verifier(),
            "envelope_key": base64.b64encode(envelope_keys[org_id].public_bytes()).decode(),
            "certificates": [_pem(org_certs[org_id])],
        }
        organisations.append(organisation)
    network["organisations"] = organisations
    purposes = [
        (
            "zvh-triage",
            "Triage van een casus die bij het Zorg- en Veiligheidshuis is aangemeld: welke "
            "partners zijn al betrokken",
            "artikel 6, eerste lid, onder e, AVG: de taak van de aanmelder, namens wie het Zorg- "
            "en Veiligheidshuis vraagt",
            askers,
        ),
        (
            "zsm-context",
            "ZSM: context van een verdachte voor de beslissing over de zaak binnen de ZSM-termijn",
            "Wet politiegegevens art. 20; Wet justitiele en strafvorderlijke gegevens art. 39f",
            police,
        ),
        (
            "wijkteam-coordination",
            "Afstemming van ondersteuning door het wijkteam van de gemeente (één gezin, één plan)",
            "Wmo 2015 art. 5.2.1; Jeugdwet art. 7.4.0",
            municipal,
        ),
    ]
    # The FG's access-request question (the letter's current registrations): an asking
    # organisation's FG may ask it; each partner's policy for it is its restriction (art. 23 AVG).
    purposes.append(
        (
            "inzageverzoek",
            "Beantwoorden van een inzageverzoek van de betrokkene zelf: welke partners nu bij hem "
            "of haar betrokken zijn",
            "artikel 15, eerste lid, AVG; artikel 6, eerste lid, onder c, AVG",
            # the organisations that ask already (another asker would change the witnesses'
            # quorum), but not one that acts for others: it answers no access request of its own
            [
                a
                for a in dict.fromkeys(a for _, _, _, allowed in purposes for a in allowed)
                if a not in acts_for_others
            ],
        )
    )
    defined = [pid for pid, _, _, allowed in purposes if allowed]
    aanmelders = police + municipal
    written: list[dict[str, object]] = []
    for pid, description, basis, allowed in purposes:
        if not allowed:
            continue
        purpose: dict[str, object] = {
            "id": pid,
            "description": description,
            "legal_basis": basis,
            "allowed_organisations": list(allowed),
            # only an FG asks the access-request purpose
            "allowed_roles": ["fg"] if pid == "inzageverzoek" else ["regisseur"],
        }
        if pid == "zsm-context":  # the ZSM desk works nights and weekends
            purpose["office_hours"] = {"start": 0, "end": 24, "weekend": True}
            # a suspect is decided on within days: a defer partner decides within a shift
            purpose["defer_hours"] = 8
        if pid == "inzageverzoek":
            # each partner's FG decides within three days whether its involvement is shown
            # (the restriction step, docs/adr/0039; at most 120 hours)
            purpose["defer_hours"] = 72
        if pid == "zvh-triage":
            # a question may leave a watch for the casus's term: a partner that registers the
            # person later tells the ZVH (the VIR's core act, without a central index)
            purpose["watch_days"] = 90
            purpose["on_behalf_of"] = [
                {"organisation": a, "legal_basis": AANMELDER_BASIS[domains[a]]} for a in aanmelders
            ]
        written.append(purpose)
    network["purposes"] = written
    policies: list[dict[str, object]] = []
    for pid in defined:
        for org_id in org_ids:
            disclosure = _level(org_id, pid, domains, secrecy)
            if pid == "inzageverzoek":  # every partner's FG agrees first, or restricts
                disclosure = "defer"  # (artikel 23 AVG / artikel 41 UAVG, docs/adr/0039)
            policy: dict[str, object] = {
                "organisation": org_id,
                "purpose": pid,
                "level": disclosure,
            }
            if pid == "inzageverzoek":
                policy["providing_basis"] = ACCESS_REQUEST_BASIS
                policy["decided_by"] = ["dpo"]  # its FG decides, per request, in the portal
                policies.append(policy)
                continue
            if disclosure != "none":
                policy["providing_basis"] = _providing_basis(
                    org_id, disclosure, domains, org_id in secrecy
                )
            if disclosure == "defer":  # its regisseurs (professionals) decide in the portal
                policy["decided_by"] = ["regisseur"]
            policies.append(policy)
    network["policies"] = policies
    # The only --user/--role the command line may ask as (people ask through the portal).
    regisseurs = (a for p, _, _, allowed in purposes if p != "inzageverzoek" for a in allowed)
    network["service_accounts"] = [
        {"organisation": org_id, "user": service_user, "role": "regisseur"}
        for org_id in dict.fromkeys(regisseurs)
        for service_user in service_users
    ]
    network["user_limits"] = {"daily_persons": max(quota // 10, 200), "persons_per_case": 8}
    fingerprints = [
        f"  {whose}: {fingerprint_pem(issued.cert_pem)}"
        for whose, issued in [
            ("key service", ks_cert),
            ("coordinator", coord_cert),
            *((org, org_certs[org]) for org in org_ids),
        ]
    ]
    network_file = directory / "network.toml"
    network_file.write_text(
        _toml([*NETWORK_HEADER, "", "sha256 of the certificates:", *fingerprints], network)
    )

    def component(path: Path, settings: dict[str, object], stem: str) -> Path:
        path.write_text(
            _toml(
                ["betrokken component configuration. Paths are relative to this file."],
                {
                    "network": "../network.toml",
                    **settings,
                    "tls": {
                        "certificate": f"{stem}.crt",
                        "private_key": f"{stem}.key",
                        "ca": "../ca/ca.crt",
                    },
                },
            )
        )
        return path

    ks_config = component(
        ks_dir / "keyservice.toml",
        {
            "database": "sqlite:///keyservice.db",
            "oprf_seed": "oprf.seed",
            "log_key": "log.key",
            "metrics_listen": f"127.0.0.1:{metrics['keyservice']}",
        },
        "keyservice",
    )
    coord_config = component(
        coord_dir / "coordinator.toml",
        {
            "database": "sqlite:///coordinator.db",
            "log_key": "log.key",
            "metrics_listen": f"127.0.0.1:{metrics['coordinator']}",
        },
        "coordinator",
    )
    node_configs: dict[str, Path] = {}
    portal_configs: dict[str, Path] = {}
    for org_id in org_ids:
        node_dir = directory / "nodes" / org_id
        write_issued(node_dir, org_id, org_certs[org_id])
        write_log_key(node_dir / "log.key", node_logs[org_id])
        write_note_key(node_dir / "question.key", question_keys[org_id])
        write_envelope_key(node_dir / "envelope.key", envelope_keys[org_id])
        path = node_dir / "node.toml"
        node = {
            "network": "../../network.toml",
            "organisation": org_id,
            "database": "sqlite:///node.db",
            "log_key": "log.key",
            "question_key": "question.key",
            "envelope_key": "envelope.key",
            "metrics_listen": f"127.0.0.1:{metrics[org_id]}",
            "tls": {
                "certificate": f"{org_id}.crt",
                "private_key": f"{org_id}.key",
                "ca": "../../ca/ca.crt",
            },
        }
        header = [
            "betrokken node configuration. Paths are relative to this file.",
            "question_key: the organisation's question signing key (to ask); envelope_key: its",
            "node's HPKE key. metrics_listen: Prometheus, loopback only (docs/operator.md,",
            "'Monitoring').",
        ]
        path.write_text(_toml(header, node))
        node_configs[org_id] = path
        portal_configs[org_id] = write_portal_config(node_dir, portal_ports[org_id])
    check_lawful(load_network(network_file), str(network_file))  # what we wrote must hold
    return DevNetwork(
        directory, network_file, ks_config, coord_config, node_configs, portal_configs
    )


def write_portal_config(node_dir: Path, port: int) -> Path:
    """``portal.toml`` beside the organisation's node.toml, with a fresh session secret."""
    secret = node_dir / "portal-session.key"
    secret.touch(mode=0o600)
    secret.write_text(secrets.token_hex(32) + "\n")
    path = node_dir / "portal.toml"
    header = [
        "betrokken portal configuration (docs/portal.md); paths relative to this file",
        "listen: HTTP on loopback only; in production a reverse proxy on this host serves HTTPS,",
        "or give [tls] certificate and private_key and listen on the host's address.",
        "local accounts: betrokken portal user add --config portal.toml NAME --role ...",
        "login through the organisation's identity provider (OpenID Connect):",
        "[oidc]",
        'issuer = "https://login.example.nl/realms/zvh"',
        'client_id = "betrokken-portal"',
        'client_secret_file = "oidc-client.secret"',
        'redirect_uri = "https://betrokken.example.nl/inloggen/oidc/terug"',
    ]
    portal = {
        "node": "node.toml",
        "listen": f"127.0.0.1:{port}",
        "session_secret": "portal-session.key",
        "session_idle_minutes": 30,
        "session_max_hours": 10,
        "local_accounts": True,
        "max_failed_logins": 5,
        "lockout_minutes": 15,
    }
    path.write_text(_toml(header, portal))
    return path
