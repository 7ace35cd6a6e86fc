"""The wire forms of one question: the signed statement, the envelopes and the replies. Pure.

A **question** (``betrokken-question/v2``) is a C2SP signed note by the requesting organisation's
question key. Its body is a first line ``betrokken-question/v2`` and one line of canonical JSON
binding the network, the answer id (chosen by the requester), the requester, the organisation it
asks for (``on_behalf_of``, the aanmelder), the purpose, the role, the kind of question
(``person``, ``list`` or ``gezin``), the time, a fresh nonce, the number of persons, the **sorted
list** of the SHA-256 of every sealed envelope (no node ids: a node learns how many envelopes
there were, not whose), how long a signal may be left (``watch_days``) and one **tag** per
person. The coordinator verifies and records it; every node that receives an envelope verifies it
again; the coordinator cannot make one, because it does not hold the key.

A **tag** is ``SHA-256("betrokken-tag/v1" || 0x00 || pseudonym || answer id)`` with the person's
pseudonym under the *requester's* key: it lets a DPO who can compute that pseudonym (through the key
service) find the record again for an access request, while to anybody else it is a random value
that differs in every question. The requester chooses it, so a **node tag** backs it up:
``SHA-256("betrokken-node-tag/v1" || 0x00 || lookup || answer id)``, computed by each node from
what it received and signed with its trail key (:func:`node_tags_body`).

An **envelope** (sealed to one node, see :mod:`.envelope`) holds the key to seal the reply with
and, per person, only ``lookup = SHA-256("betrokken-lookup/v1" || 0x00 || P)`` of the person's
pseudonym P under that node's key, its key id, and the case, the user and acted-for **sealed
under a key derived from P itself** (:func:`need_to_know_key`): a node that holds P (a hit) can
open them; a node that does not know the person cannot (need to know on a miss). A **reply**
holds one answer per person. Both are padded to a size that depends only on the number of
persons.

Errors: a peer's malformed data raises :class:`MalformedMessage`; a signature or a sealed item
that does not verify raises :class:`VerificationError` (see :func:`open_question`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from betrokken.crypto import envelope as env
from betrokken.crypto.note import NoteKey, open_note, parse_verifier, sign_note
from betrokken.errors import MalformedMessage, VerificationError

QUESTION_HEADER = "betrokken-question/v2"
VERSION = 2  # of the question, the envelope and the reply
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_TEXT_BYTES = 128  # case reference, user, acted-for, role: at most this many UTF-8 bytes
MAX_PERSONS = 10_000
MAX_ENVELOPES = 1_000
MAX_WATCH_DAYS = 3_660

# Padded sizes: an envelope and a reply depend only on the number of persons.
ENVELOPE_HEADER = 640
ENVELOPE_ITEM = 896
REPLY_HEADER = 256
REPLY_ITEM = 768
REPLY_FIELD_BYTES = {
    "organisation_id": 64,
    "name": 128,
    "domain": 64,
    "contact": 256,
    "since": 10,
    "advice": 64,
}
# What is sealed per person under the need-to-know key: fixed size, so a miss and a hit look
# alike, with room for a watch (a signal left at the node) beside case, user and acted-for.
SEALED_PLAIN = 512
SEALED_SIZE = SEALED_PLAIN + env.TAG_SIZE
LOOKUP_SIZE = 32
NEED_TO_KNOW_INFO = b"betrokken-need-to-know/v1"


class Kind(StrEnum):
    """What a question with several persons is (the lawful rules for case references use it)."""

    PERSON = "person"  # one person
    LIST = "list"  # several persons, each with a case of their own
    GEZIN = "gezin"  # a household or casus: several persons asked together under one case


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# What strptime("%Y-%m-%dT%H:%M:%S.%fZ") accepts, read without it (it costs ten times this).
_TIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})T(\d{1,2}):(\d{1,2}):(\d{1,2})\.(\d{1,6})Z")


def parse_time(text: str) -> dt.datetime:
    try:
        found = _TIME.fullmatch(text)
        if found is None:
            raise ValueError(text)
        year, month, day, hour, minute, second, fraction = found.groups()
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int(fraction.ljust(6, "0")),
            tzinfo=dt.UTC,
        )
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


def _int(data: Mapping[str, Any], key: str, what: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessage(f"{what}: '{key}' is not a number")
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


def lookup_key(pseudonym: bytes) -> bytes:
    """What a node looks a person up by: a one-way hash of its pseudonym under the node's key."""
    return hashlib.sha256(b"betrokken-lookup/v1\x00" + pseudonym).digest()


def node_tag(lookup: bytes, answer_id: str) -> str:
    """A node's tag of one person in one question, made from what the node received."""
    return hashlib.sha256(b"betrokken-node-tag/v1\x00" + lookup + answer_id.encode()).hexdigest()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kind_for(persons: int, gezin: bool = False) -> Kind:
    """The kind of a question about ``persons`` persons (a household only when said so)."""
    if persons == 1:
        return Kind.PERSON
    return Kind.GEZIN if gezin else Kind.LIST


# --- the signed statement ------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    network: str
    answer_id: str
    requester: str
    on_behalf_of: str  # the aanmelder: the organisation the question is asked for
    purpose: str
    role: str
    kind: Kind
    at: dt.datetime
    nonce: str
    persons: int
    envelopes: tuple[str, ...]  # SHA-256 (hex) of every sealed envelope, sorted; no node ids
    watch_days: int
    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        what = "the question"
        if not _UUID.fullmatch(self.answer_id):
            raise MalformedMessage(f"{what}: the answer id is not a UUID")
        for name in ("requester", "on_behalf_of", "purpose"):
            if not _ID.fullmatch(getattr(self, name)):
                raise MalformedMessage(f"{what}: '{name}' is not an identifier")
        check_text(self.role, "the role", required=False)
        check_text(self.network, "the network name")
        if not isinstance(self.kind, Kind):
            raise MalformedMessage(f"{what}: the kind is not one of person, list, gezin")
        if not _NONCE.fullmatch(self.nonce):
            raise MalformedMessage(f"{what}: the nonce is not 16 bytes of hex")
        if not 1 <= self.persons <= MAX_PERSONS:
            raise MalformedMessage(f"{what}: {self.persons} persons")
        if (self.kind is Kind.PERSON) != (self.persons == 1):
            raise MalformedMessage(
                f"{what}: a '{self.kind.value}' question about {self.persons} person(s)"
            )
        if len(self.tags) != self.persons or not all(_HEX64.fullmatch(t) for t in self.tags):
            raise MalformedMessage(f"{what}: one tag (64 hex) per person is required")
        if (
            len(self.envelopes) > MAX_ENVELOPES
            or not all(_HEX64.fullmatch(h) for h in self.envelopes)
            or list(self.envelopes) != sorted(set(self.envelopes))
        ):
            raise MalformedMessage(f"{what}: the envelope list is not sorted distinct hashes")
        if not 0 <= self.watch_days <= MAX_WATCH_DAYS:
            raise MalformedMessage(f"{what}: watch_days {self.watch_days} is out of range")

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "network": self.network,
            "answer_id": self.answer_id,
            "requester": self.requester,
            "on_behalf_of": self.on_behalf_of,
            "purpose": self.purpose,
            "role": self.role,
            "kind": self.kind.value,
            "at": format_time(self.at),
            "nonce": self.nonce,
            "persons": self.persons,
            "envelopes": list(self.envelopes),
            "watch_days": self.watch_days,
            "tags": list(self.tags),
        }

    def body(self) -> bytes:
        return f"{QUESTION_HEADER}\n".encode() + canonical(self.to_json()) + b"\n"

    @classmethod
    def from_body(cls, body: str) -> Question:
        header, _, rest = body.partition("\n")
        if header != QUESTION_HEADER or not rest.endswith("\n") or "\n" in rest[:-1]:
            raise MalformedMessage(f"a question starts with '{QUESTION_HEADER}' and one JSON line")
        what = "the question"
        data = _json(rest[:-1].encode("utf-8"), what)
        envelopes = data.get("envelopes")
        tags = data.get("tags")
        if not isinstance(envelopes, list) or not all(isinstance(h, str) for h in envelopes):
            raise MalformedMessage("the question: 'envelopes' is malformed")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise MalformedMessage("the question: 'tags' is malformed")
        try:
            kind = Kind(_str(data, "kind", what))
        except ValueError:
            raise MalformedMessage(f"{what}: the kind is not one of person, list, gezin") from None
        question = cls(
            network=_str(data, "network", what),
            answer_id=_str(data, "answer_id", what),
            requester=_str(data, "requester", what),
            on_behalf_of=_str(data, "on_behalf_of", what),
            purpose=_str(data, "purpose", what),
            role=_str(data, "role", what),
            kind=kind,
            at=parse_time(_str(data, "at", what)),
            nonce=_str(data, "nonce", what),
            persons=_int(data, "persons", what),
            envelopes=tuple(envelopes),
            watch_days=_int(data, "watch_days", what),
            tags=tuple(tags),
        )
        if question.body().decode("utf-8") != body:
            raise MalformedMessage("the question is not in canonical form")
        return question


def sign_question(question: Question, key: NoteKey) -> str:
    """The signed note of a question (what travels and what the coordinator records)."""
    return sign_note(question.body(), key)


def peek_question(note: str) -> Question:
    """The question in a signed note, NOT verified: only to find out whose key to verify with.

    Parsed once per note (the latest few remembered): the coordinator reads the same question
    for its checks, its metrics and its records. A :class:`Question` cannot be changed, so the
    callers can share it; a malformed note is not remembered and raises each time."""
    return _peeked(note)


@functools.lru_cache(maxsize=256)
def _peeked(note: str) -> Question:
    separator = note.rfind("\n\n")
    if separator < 0:
        raise MalformedMessage("a signed question has an empty line before its signature")
    try:
        return Question.from_body(note[: separator + 1])
    except MalformedMessage as exc:
        raise MalformedMessage(exc.message) from None


def verify_question(note: str, claimed: Question, verifier: str) -> Question:
    """``claimed`` — what :func:`peek_question` read from ``note`` — once the signature by
    ``verifier`` on that note verifies (VerificationError): the note is parsed once. The body
    the signature covers is the very text :func:`peek_question` parsed (all before the last
    empty line)."""
    open_note(note, verifier)
    return claimed


def open_question(note: str, verifier: str) -> Question:
    """Verify the signature by ``verifier`` (VerificationError) and parse the question."""
    return Question.from_body(open_note(note, verifier))


def question_key_name(network: str, organisation: str) -> str:
    return f"betrokken/{network}/{organisation}/questions"


# --- envelopes -----------------------------------------------------------------------------------
def envelope_info(network: str, answer_id: str, node: str) -> bytes:
    """HPKE ``info``: binds an envelope to one network, one question and one node."""
    return f"betrokken-envelope/v2\x00{network}\x00{answer_id}\x00{node}".encode()


def reply_aad(network: str, answer_id: str, label: str) -> bytes:
    """Associated data of a reply: its network, question and label (node id or ``domain:x``)."""
    return f"betrokken-reply/v2\x00{network}\x00{answer_id}\x00{label}".encode()


def envelope_size(persons: int) -> int:
    return env.sealed_size(ENVELOPE_HEADER + ENVELOPE_ITEM * persons)


def reply_size(persons: int) -> int:
    return env.reply_size(REPLY_HEADER + REPLY_ITEM * persons)


def need_to_know_key(pseudonym: bytes, answer_id: str) -> bytes:
    """``K = HKDF-SHA256(ikm = P, salt = answer id, info = "betrokken-need-to-know/v1")``: only a
    party that holds the person's pseudonym P under the node's key can derive it."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=answer_id.encode(), info=NEED_TO_KNOW_INFO
    ).derive(pseudonym)


def _sealed_aad(answer_id: str, node: str, index: int, lookup: bytes) -> bytes:
    return f"betrokken-sealed/v1\x00{answer_id}\x00{node}\x00{index}\x00".encode() + lookup


def _nonce(index: int) -> bytes:
    # K is new for every question and person; the index keeps two items of one person (the same
    # person twice in a list) from sharing a nonce under the same key.
    return index.to_bytes(12, "big")


# Fields of the sealed plaintext: (tag byte, length byte, UTF-8 value), then zero padding.
# 4: the watch (docs/adr/0037): the reply key a signal is sealed under, as 64 hex digits, present
# only when the question leaves a watch with a node that names itself.
_SEALED_FIELDS = {1: "case", 2: "user", 3: "acted_for", 4: "watch"}


@dataclass(frozen=True)
class NeedToKnow:
    """What only a node that knows the person may read: the case, the user, acted-for."""

    case: str
    user: str
    acted_for: str = ""
    watch: str = ""  # hex reply key for a later signal; empty: the question leaves no watch

    def to_bytes(self) -> bytes:
        out = bytearray()
        for number, name in _SEALED_FIELDS.items():
            value = getattr(self, name).encode("utf-8")
            if len(value) > MAX_TEXT_BYTES:
                raise ValueError(f"{name} is longer than {MAX_TEXT_BYTES} bytes")
            if value:
                out += bytes([number, len(value)]) + value
        return bytes(out) + bytes(SEALED_PLAIN - len(out))

    @classmethod
    def from_bytes(cls, data: bytes) -> NeedToKnow:
        what = "a sealed item"
        if len(data) != SEALED_PLAIN:
            raise MalformedMessage(f"{what} is not of its padded size")
        values = {name: "" for name in _SEALED_FIELDS.values()}
        position = 0
        while position < len(data) and data[position] != 0:
            if position + 2 > len(data):
                raise MalformedMessage(f"{what} is malformed")
            number, length = data[position], data[position + 1]
            name = _SEALED_FIELDS.get(number)
            end = position + 2 + length
            if name is None or end > len(data) or length > MAX_TEXT_BYTES:
                raise MalformedMessage(f"{what} holds an unknown or overlong field")
            try:
                values[name] = data[position + 2 : end].decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedMessage(f"{what} is not UTF-8") from None
            position = end
        if any(data[position:]):
            raise MalformedMessage(f"{what} is not padded with zeros")
        return cls(
            case=check_text(values["case"], "the case"),
            user=check_text(values["user"], "the user"),
            acted_for=check_text(values["acted_for"], "acted for", required=False),
            watch=_watch(values["watch"]),
        )


def _watch(value: str) -> str:
    if value and not _HEX64.fullmatch(value):
        raise MalformedMessage("a sealed item's watch is not a reply key")
    return value


@dataclass(frozen=True)
class LookupItem:
    """One person as a node receives it: a lookup hash, the key id, and what is sealed."""

    lookup: bytes
    key_id: str
    sealed: bytes = field(repr=False)

    @classmethod
    def seal(
        cls, pseudonym: bytes, key_id: str, answer_id: str, node: str, index: int, what: NeedToKnow
    ) -> LookupItem:
        lookup = lookup_key(pseudonym)
        sealed = ChaCha20Poly1305(need_to_know_key(pseudonym, answer_id)).encrypt(
            _nonce(index), what.to_bytes(), _sealed_aad(answer_id, node, index, lookup)
        )
        return cls(lookup, key_id, sealed)

    def open(self, pseudonym: bytes, answer_id: str, node: str, index: int) -> NeedToKnow:
        """The sealed part, with the person's pseudonym (a hit); VerificationError otherwise."""
        return NeedToKnow.from_bytes(
            self.open_bytes(need_to_know_key(pseudonym, answer_id), answer_id, node, index)
        )

    def open_bytes(self, key: bytes, answer_id: str, node: str, index: int) -> bytes:
        try:
            return ChaCha20Poly1305(key).decrypt(
                _nonce(index), self.sealed, _sealed_aad(answer_id, node, index, self.lookup)
            )
        except InvalidTag:
            raise VerificationError(
                "a sealed item does not open with the pseudonym it was looked up by"
            ) from None


@dataclass(frozen=True)
class EnvelopeContent:
    """What one node receives of a question: a reply key and, per person, a lookup hash, the key
    id and the sealed case, user and acted-for (readable only with the person's pseudonym)."""

    answer_id: str
    node: str
    reply_key: bytes = field(repr=False)
    items: tuple[LookupItem, ...]

    def to_bytes(self) -> bytes:
        data = {
            "v": VERSION,
            "answer_id": self.answer_id,
            "node": self.node,
            "reply_key": self.reply_key.hex(),
            "items": [
                {
                    "lookup": i.lookup.hex(),
                    "key_id": i.key_id,
                    "sealed": base64.b64encode(i.sealed).decode(),
                }
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
            try:
                sealed = base64.b64decode(_str(item, "sealed", what), validate=True)
            except binascii.Error:
                raise MalformedMessage(f"{what}: person {index + 1} is not sealed") from None
            if len(sealed) != SEALED_SIZE:
                raise MalformedMessage(f"{what}: person {index + 1}'s sealed part has a bad size")
            lookups.append(
                LookupItem(
                    lookup=bytes.fromhex(_str(item, "lookup", what, _HEX64)),
                    key_id=_str(item, "key_id", what),
                    sealed=sealed,
                )
            )
        return cls(
            answer_id=_str(parsed, "answer_id", what, _UUID),
            node=_str(parsed, "node", what, _ID),
            reply_key=reply_key,
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


def envelope_hashes(envelopes: Mapping[str, bytes]) -> tuple[str, ...]:
    """The question's envelope list: the sorted hashes, without the nodes they are for."""
    return tuple(sorted(digest(sealed) for sealed in envelopes.values()))


def tags_for(pseudonyms: Sequence[bytes], answer_id: str) -> tuple[str, ...]:
    return tuple(tag(p, answer_id) for p in pseudonyms)


# --- node tags -----------------------------------------------------------------------------------
NODE_TAGS_HEADER = b"betrokken-node-tags/v1\n"
SIGNATURE_SIZE = 64


def node_tags_body(network: str, answer_id: str, node: str, tags: Sequence[str]) -> bytes:
    """What a node signs with its trail key: its tags of one question, for one network."""
    data = {"network": network, "answer_id": answer_id, "node": node, "tags": list(tags)}
    return NODE_TAGS_HEADER + canonical(data) + b"\n"


def sign_node_tags(
    key: NoteKey, network: str, answer_id: str, node: str, tags: Sequence[str]
) -> bytes:
    return key.signer.sign(node_tags_body(network, answer_id, node, tags))


def verify_node_tags(
    verifier: str, signature: bytes, network: str, answer_id: str, node: str, tags: Sequence[str]
) -> None:
    """Check a node's signature over its tags against its pinned trail key (``log_key``)."""
    if not all(_HEX64.fullmatch(t) for t in tags):
        raise MalformedMessage("a node tag is not 64 hex digits")
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError("the node tags carry no valid signature")
    _, public = parse_verifier(verifier)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            signature, node_tags_body(network, answer_id, node, tags)
        )
    except InvalidSignature:
        raise VerificationError(
            f"the node tags of {node} are not signed by its trail key"
        ) from None


@dataclass(frozen=True)
class NodeTags:
    """One node's tags of one question, with its signature (as the answered record keeps them)."""

    tags: tuple[str, ...]
    signature: bytes = field(repr=False)


def node_tags_record(tags: Mapping[str, NodeTags]) -> str:
    """The answered nodes' signed tags in one record field: canonical JSON, node -> tags and
    base64 signature; read back by :func:`read_node_tags`."""
    return canonical(
        {
            node: {"tags": list(t.tags), "signature": base64.b64encode(t.signature).decode()}
            for node, t in sorted(tags.items())
        }
    ).decode()


def read_node_tags(text: str) -> dict[str, NodeTags]:
    """The field :func:`node_tags_record` wrote; MalformedMessage if it is not that."""
    if not text:
        return {}
    try:
        data = json.loads(text)
        return {
            str(node): NodeTags(
                tuple(str(t) for t in value["tags"]),
                base64.b64decode(value["signature"], validate=True),
            )
            for node, value in data.items()
        }
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError, binascii.Error):
        raise MalformedMessage("the node tags of an answered record are malformed") from None
