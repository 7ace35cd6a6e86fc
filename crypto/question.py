"""The wire forms of one question: the signed statement, the envelopes and the replies. Pure.

A **question** is a C2SP signed note by the requesting organisation's question key. Its body is a
first line ``betrokken-question/v1`` and one line of canonical JSON binding the network, the answer
id (chosen by the requester), the requester, the purpose, the role, the time, a fresh nonce, the
number of persons, the SHA-256 of each sealed envelope (per node) and one **tag** per person. The
coordinator verifies and records it; every node that receives an envelope verifies it again; the
coordinator cannot make one, because it does not hold the key.

A **tag** is ``SHA-256("betrokken-tag/v1" || 0x00 || pseudonym || answer id)`` with the person's
pseudonym under the *requester's* key: it lets a DPO who can compute that pseudonym (through the key
service) find the record again for an access request, while to anybody else it is a random value
that differs in every question.

An **envelope** (sealed to one node, see :mod:`.envelope`) holds the person's pseudonyms under that
node's key, the case references, the user, and the key to seal the reply with. A **reply** holds one
answer per person. Both are padded to a size that depends only on the number of persons.

Errors: a peer's malformed data raises :class:`MalformedMessage`; a signature that does not verify
raises :class:`VerificationError` (see :func:`open_question`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from betrokken.crypto import envelope as env
from betrokken.crypto.note import NoteKey, open_note, sign_note
from betrokken.errors import MalformedMessage

QUESTION_HEADER = "betrokken-question/v1"
VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_TEXT_BYTES = 128  # case reference, user, acted-for, role: at most this many UTF-8 bytes
MAX_PERSONS = 10_000

# Padded sizes: an envelope and a reply depend only on the number of persons.
ENVELOPE_HEADER = 640
ENVELOPE_ITEM = 384
REPLY_HEADER = 256
REPLY_ITEM = 768
REPLY_FIELD_BYTES = {"organisation_id": 64, "name": 128, "domain": 64, "contact": 256, "since": 10}


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        raise MalformedMessage(f"'{str(text)[:40]}' is not a time in the question format") from None


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage(f"{what} is not JSON") from None
    if not isinstance(parsed, dict):
        raise MalformedMessage(f"{what} is not a JSON object")
    if parsed.get("v") != VERSION:
        raise MalformedMessage(f"{what} has version {str(parsed.get('v'))[:10]}, not {VERSION}")
    return parsed


def _str(
    data: Mapping[str, Any], key: str, what: str, pattern: re.Pattern[str] | None = None
) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise MalformedMessage(f"{what}: '{key}' is missing or not text")
    if pattern is not None and not pattern.fullmatch(value):
        raise MalformedMessage(f"{what}: '{key}' has the wrong form")
    return value


def check_text(value: str, what: str, *, required: bool = True) -> str:
    """Free text in a question: printable, at most MAX_TEXT_BYTES bytes (else MalformedMessage)."""
    if required and not value.strip():
        raise MalformedMessage(f"{what} is missing")
    if not value.isprintable():
        raise MalformedMessage(f"{what} contains control characters")
    if len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        raise MalformedMessage(f"{what} is longer than {MAX_TEXT_BYTES} bytes")
    return value


def tag(pseudonym: bytes, answer_id: str) -> str:
    """The per-record tag of one person (see the module docstring)."""
    return hashlib.sha256(b"betrokken-tag/v1\x00" + pseudonym + answer_id.encode()).hexdigest()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the signed statement ------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    network: str
    answer_id: str
    requester: str
    purpose: str
    role: str
    at: dt.datetime
    nonce: str
    persons: int
    envelopes: Mapping[str, str]  # node organisation id -> SHA-256 (hex) of its sealed envelope
    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        what = "the question"
        if not _UUID.fullmatch(self.answer_id):
            raise MalformedMessage(f"{what}: the answer id is not a UUID")
        for name in ("requester", "purpose"):
            if not _ID.fullmatch(getattr(self, name)):
                raise MalformedMessage(f"{what}: '{name}' is not an identifier")
        check_text(self.role, "the role", required=False)
        check_text(self.network, "the network name")
        if not _NONCE.fullmatch(self.nonce):
            raise MalformedMessage(f"{what}: the nonce is not 16 bytes of hex")
        if not 1 <= self.persons <= MAX_PERSONS:
            raise MalformedMessage(f"{what}: {self.persons} persons")
        if len(self.tags) != self.persons or not all(_HEX64.fullmatch(t) for t in self.tags):
            raise MalformedMessage(f"{what}: one tag (64 hex) per person is required")
        for node, hashed in self.envelopes.items():
            if not _ID.fullmatch(node) or not _HEX64.fullmatch(hashed):
                raise MalformedMessage(f"{what}: envelope list is malformed")

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "network": self.network,
            "answer_id": self.answer_id,
            "requester": self.requester,
            "purpose": self.purpose,
            "role": self.role,
            "at": format_time(self.at),
            "nonce": self.nonce,
            "persons": self.persons,
            "envelopes": dict(sorted(self.envelopes.items())),
            "tags": list(self.tags),
        }

    def body(self) -> bytes:
        return f"{QUESTION_HEADER}\n".encode() + canonical(self.to_json()) + b"\n"

    @classmethod
    def from_body(cls, body: str) -> Question:
        header, _, rest = body.partition("\n")
        if header != QUESTION_HEADER or not rest.endswith("\n") or "\n" in rest[:-1]:
            raise MalformedMessage(f"a question starts with '{QUESTION_HEADER}' and one JSON line")
        data = _json(rest[:-1].encode("utf-8"), "the question")
        envelopes = data.get("envelopes")
        tags = data.get("tags")
        persons = data.get("persons")
        if not isinstance(envelopes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in envelopes.items()
        ):
            raise MalformedMessage("the question: 'envelopes' is malformed")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise MalformedMessage("the question: 'tags' is malformed")
        if not isinstance(persons, int) or isinstance(persons, bool):
            raise MalformedMessage("the question: 'persons' is not a number")
        what = "the question"
        question = cls(
            network=_str(data, "network", what),
            answer_id=_str(data, "answer_id", what),
            requester=_str(data, "requester", what),
            purpose=_str(data, "purpose", what),
            role=_str(data, "role", what),
            at=parse_time(_str(data, "at", what)),
            nonce=_str(data, "nonce", what),
            persons=persons,
            envelopes=dict(envelopes),
            tags=tuple(tags),
        )
        if question.body().decode("utf-8") != body:
            raise MalformedMessage("the question is not in canonical form")
        return question


def sign_question(question: Question, key: NoteKey) -> str:
    """The signed note of a question (what travels and what the coordinator records)."""
    return sign_note(question.body(), key)


def peek_question(note: str) -> Question:
    """The question in a signed note, NOT verified: only to find out whose key to verify with."""
    separator = note.rfind("\n\n")
    if separator < 0:
        raise MalformedMessage("a signed question has an empty line before its signature")
    try:
        return Question.from_body(note[: separator + 1])
    except MalformedMessage as exc:
        raise MalformedMessage(exc.message) from None


def open_question(note: str, verifier: str) -> Question:
    """Verify the signature by ``verifier`` (VerificationError) and parse the question."""
    return Question.from_body(open_note(note, verifier))


def question_key_name(network: str, organisation: str) -> str:
    return f"betrokken/{network}/{organisation}/questions"


# --- envelopes -----------------------------------------------------------------------------------
def envelope_info(network: str, answer_id: str, node: str) -> bytes:
    """HPKE ``info``: binds an envelope to one network, one question and one node."""
    return f"betrokken-envelope/v1\x00{network}\x00{answer_id}\x00{node}".encode()


def reply_aad(network: str, answer_id: str, label: str) -> bytes:
    """Associated data of a reply: its network, question and label (node id or ``domain:x``)."""
    return f"betrokken-reply/v1\x00{network}\x00{answer_id}\x00{label}".encode()


def envelope_size(persons: int) -> int:
    return env.sealed_size(ENVELOPE_HEADER + ENVELOPE_ITEM * persons)


def reply_size(persons: int) -> int:
    return env.reply_size(REPLY_HEADER + REPLY_ITEM * persons)


@dataclass(frozen=True)
class LookupItem:
    pseudonym: bytes = field(repr=False)
    key_id: str
    case: str


@dataclass(frozen=True)
class EnvelopeContent:
    """What one node learns of a question: its own pseudonyms, the cases, the user, a reply key."""

    answer_id: str
    node: str
    reply_key: bytes = field(repr=False)
    user: str
    acted_for: str
    items: tuple[LookupItem, ...]

    def to_bytes(self) -> bytes:
        data = {
            "v": VERSION,
            "answer_id": self.answer_id,
            "node": self.node,
            "reply_key": self.reply_key.hex(),
            "user": self.user,
            "acted_for": self.acted_for,
            "items": [
                {"pseudonym": i.pseudonym.hex(), "key_id": i.key_id, "case": i.case}
                for i in self.items
            ],
        }
        return env.pad(canonical(data), ENVELOPE_HEADER + ENVELOPE_ITEM * len(self.items))

    @classmethod
    def from_bytes(cls, data: bytes) -> EnvelopeContent:
        what = "the envelope"
        parsed = _json(env.unpad(data), what)
        items = parsed.get("items")
        if not isinstance(items, list) or not items:
            raise MalformedMessage(f"{what} holds no persons")
        if len(data) != ENVELOPE_HEADER + ENVELOPE_ITEM * len(items):
            raise MalformedMessage(f"{what} is not padded to its size")
        reply_key = bytes.fromhex(_str(parsed, "reply_key", what, _HEX64))
        lookups = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise MalformedMessage(f"{what}: person {index + 1} is malformed")
            lookups.append(
                LookupItem(
                    pseudonym=bytes.fromhex(_str(item, "pseudonym", what, _HEX128)),
                    key_id=_str(item, "key_id", what),
                    case=check_text(_str(item, "case", what), f"person {index + 1}'s case"),
                )
            )
        return cls(
            answer_id=_str(parsed, "answer_id", what, _UUID),
            node=_str(parsed, "node", what, _ID),
            reply_key=reply_key,
            user=check_text(_str(parsed, "user", what), "the user"),
            acted_for=check_text(_str(parsed, "acted_for", what), "acted for", required=False),
            items=tuple(lookups),
        )


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


@dataclass(frozen=True)
class ReplyContent:
    """A node's answers, one per person, as plain fields (the rules give them meaning)."""

    answer_id: str
    label: str
    items: tuple[Mapping[str, str], ...]

    def to_bytes(self) -> bytes:
        items = []
        for answer in self.items:
            item = {"outcome": answer["outcome"]}
            for key, limit in REPLY_FIELD_BYTES.items():
                if answer.get(key):
                    item[key] = clip(answer[key], limit)
            items.append(item)
        data = {"v": VERSION, "answer_id": self.answer_id, "label": self.label, "items": items}
        return env.pad(canonical(data), REPLY_HEADER + REPLY_ITEM * len(self.items))

    @classmethod
    def from_bytes(cls, data: bytes) -> ReplyContent:
        what = "the reply"
        parsed = _json(env.unpad(data), what)
        items = parsed.get("items")
        if not isinstance(items, list) or not items:
            raise MalformedMessage(f"{what} holds no answers")
        if len(data) != REPLY_HEADER + REPLY_ITEM * len(items):
            raise MalformedMessage(f"{what} is not padded to its size")
        answers: list[dict[str, str]] = []
        for item in items:
            allowed = {"outcome", *REPLY_FIELD_BYTES}
            if (
                not isinstance(item, dict)
                or not set(item) <= allowed
                or not all(isinstance(v, str) for v in item.values())
            ):
                raise MalformedMessage(f"{what}: an answer is malformed")
            answers.append(dict(item))
        return cls(
            answer_id=_str(parsed, "answer_id", what, _UUID),
            label=_str(parsed, "label", what),
            items=tuple(answers),
        )


def envelope_hashes(envelopes: Mapping[str, bytes]) -> dict[str, str]:
    return {node: digest(sealed) for node, sealed in envelopes.items()}


def tags_for(pseudonyms: Sequence[bytes], answer_id: str) -> tuple[str, ...]:
    return tuple(tag(p, answer_id) for p in pseudonyms)
