"""One line of an audit log: the NEN 7513 elements, serialised canonically and versioned.

The canonical form is JSON with keys sorted, no insignificant white space, UTF-8, and only
strings, integers, lists and objects as values (so it is also RFC 8785 canonical). Its SHA-256
leaf hash (RFC 9162: ``SHA-256(0x00 || canonical)``) is what the Merkle tree commits to.
No field ever holds a BSN: subjects are pseudonyms (hex) with their key id and fingerprint.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from betrokken.errors import MalformedMessage

VERSION = 1


class Event(StrEnum):
    SEARCH = "search"  # a question was asked (recorded before anyone is asked)
    OUTCOME = "outcome"  # what the organisations answered, and completeness
    REFUSAL = "refusal"  # a question or call was refused (purpose, role, certificate, quota, ...)
    LOG_ACCESS = "log-access"  # somebody read this log (NEN 7513: access to the log itself)
    DISCLOSURE = "disclosure"  # a node disclosed a hit (node trail)
    REGISTRATION = "registration-change"  # added, updated, withdrawn, expired (node trail)
    OWN_QUERY = "own-query"  # a question this organisation's users sent (node trail)
    PRUNE = "prune"  # records past the retention term were emptied
    ALARM = "alarm"  # a node refused a question that failed its checks, or its witness found a fork
    LOGIN = "login"  # somebody logged in to the organisation's portal (user, role, method)
    LOGOUT = "logout"  # ... logged out (or the session expired and was ended)
    LOGIN_FAILED = "login-failed"  # a failed or refused portal login (reason; never the password)
    ROLE_CHANGE = "role-change"  # a portal account was added, changed, reset or disabled
    KEY_USE = "key-use"  # the key service evaluated under every key for a DPO's access request
    NOTICE = (
        "notice"  # the found partner's contact point acknowledged a notice of a hit (node trail)
    )
    FOLLOW_UP = "follow-up"  # the asker recorded what it did after a hit (node trail)
    # A defer partner's professional decided, or the term passed (node trail, docs/adr/0037).
    DECISION = "decision"
    DELIVERY = "delivery"  # the coordinator kept a sealed late message for an asker (its log)
    LATE_ANSWER = "late-answer"  # the asker received and checked a late answer (node trail)


@dataclass(frozen=True)
class Subject:
    """The person a record is about, as a pseudonym (never the BSN)."""

    pseudonym: str  # hex of the 64-byte OPRF output
    key_id: str
    fingerprint: str
    case: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "pseudonym": self.pseudonym,
            "key_id": self.key_id,
            "fingerprint": self.fingerprint,
            "case": self.case,
        }


@dataclass(frozen=True)
class AuditEntry:
    """One record. Empty strings mean 'not applicable' (NEN 7513 fields are all present)."""

    event: Event
    at: dt.datetime  # UTC
    answer_id: str = ""  # also the W3C trace id that followed the query to the nodes
    organisation: str = ""  # the requesting organisation (from its certificate)
    user: str = ""
    acted_for: str = ""
    role: str = ""
    access_point: str = ""  # peer address or host the request came from
    purpose: str = ""
    legal_basis: str = ""
    subjects: tuple[Subject, ...] = ()
    # per subject fingerprint: organisation id -> outcome
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)
    completeness: str = ""  # "complete" | "partial" | ""
    reason: str = ""  # for refusals: the error class; for others a short description
    details: dict[str, str] = field(default_factory=dict)  # e.g. the filter a log reader used
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.version,
            "event": self.event.value,
            "at": format_time(self.at),
            "answer_id": self.answer_id,
            "organisation": self.organisation,
            "user": self.user,
            "acted_for": self.acted_for,
            "role": self.role,
            "access_point": self.access_point,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "subjects": [s.to_json() for s in self.subjects],
            "outcomes": {k: dict(v) for k, v in self.outcomes.items()},
            "completeness": self.completeness,
            "reason": self.reason,
            "details": dict(self.details),
        }

    def canonical(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditEntry:
        try:
            if data["v"] != VERSION:
                raise MalformedMessage(f"audit record version {data['v']} is not supported")
            return cls(
                version=data["v"],
                event=Event(data["event"]),
                at=parse_time(data["at"]),
                answer_id=data["answer_id"],
                organisation=data["organisation"],
                user=data["user"],
                acted_for=data["acted_for"],
                role=data["role"],
                access_point=data["access_point"],
                purpose=data["purpose"],
                legal_basis=data["legal_basis"],
                subjects=tuple(Subject(**s) for s in data["subjects"]),
                outcomes={k: dict(v) for k, v in data["outcomes"].items()},
                completeness=data["completeness"],
                reason=data["reason"],
                details=dict(data["details"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(
                f"audit record does not follow version {VERSION}: {exc}"
            ) from None

    @classmethod
    def from_canonical(cls, data: bytes) -> AuditEntry:
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedMessage(f"audit record is not canonical JSON: {exc}") from None
        entry = cls.from_json(parsed)
        if entry.canonical() != data:
            raise MalformedMessage("audit record is not in canonical form")
        return entry


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def format_time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The form format_time writes, read without strptime (which cost a node about 50 µs per
# question's record); anything else still goes through strptime, as before.
_CANONICAL_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z"
)


def parse_time(text: str) -> dt.datetime:
    found = _CANONICAL_TIME.fullmatch(text)
    if found is None:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    year, month, day, hour, minute, second, micro = map(int, found.groups())
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=dt.UTC)
