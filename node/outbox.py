"""What an answered question leaves for the node's trail writer: one fixed-size entry, hit or miss.

A lookup must not take longer for a hit than for a miss, or the coordinator learns from the time
who is known where (docs/adr/0024, "nothing from timing"). So the lookup path writes the same one
row in one transaction whatever it found: the replay mark together with an **outbox entry** of a
size that depends only on the number of persons (:func:`encode`). For a hit the entry holds what
the disclosure records need (who asked, for whom, the case and the user opened with the person's
pseudonym); for a miss nothing but padding. The padding is random, so a database that compresses
large values (PostgreSQL's TOAST) stores both alike.

A background writer (started by the node server, run once at start-up too) turns the entries into
trail records within a second (:func:`records`, :meth:`NodeStore.drain_outbox`), emptying each in
the same transaction: nothing is disclosed without a durable row first (the entry), and every
disclosure gets its trail record. The entry is the one place later steps of a hit or a miss go:
a notice for the found partner, a deferral request or a timer, a watch (ADR 0024, sections 5-7) —
each a new field here and a new branch in :func:`records`, written by the same writer.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.crypto.question import clip, parse_time
from betrokken.errors import MalformedMessage, escape_text

VERSION = 1
# Padded sizes: JSON of the longest fields a question allows (text of at most 128 bytes, which
# JSON may escape to twice that), with room to spare.
OUTBOX_HEADER = 1280  # with a deferred question's reply key, label and deadline
OUTBOX_ITEM = 1536
_LENGTH = 4


def size(persons: int) -> int:
    return OUTBOX_HEADER + OUTBOX_ITEM * persons


@dataclass(frozen=True)
class Disclosed:
    """One hit: the person (this node's own pseudonym), what was disclosed, and what the sealed
    part of the question said (case, user, acted-for), opened with the pseudonym."""

    index: int  # the person's place in the question
    pseudonym: str  # hex
    key_id: str
    case: str
    user: str
    acted_for: str
    level: str  # the disclosure level used
    reference: str  # the node's own reference of the registration
    advice: str = ""


@dataclass(frozen=True)
class Watch:
    """A person not found, of a question that leaves a watch (docs/adr/0037): the lookup hash and
    the sealed item as received. The node cannot open it; once it registers the person, it can."""

    index: int
    lookup: str  # hex
    key_id: str
    sealed: str  # hex


@dataclass(frozen=True)
class Answered:
    """What an answered question leaves; ``hits`` empty (and nothing else kept) for a miss."""

    answer_id: str = ""
    at: str = ""
    requester: str = ""
    on_behalf_of: str = ""
    role: str = ""
    purpose: str = ""
    kind: str = ""
    access_point: str = ""
    hits: tuple[Disclosed, ...] = ()
    # Persons found whose sealed part did not open with their pseudonym: a requester that sealed
    # something else than it looked up. Recorded as an alarm; the answer itself is unchanged.
    unreadable: tuple[int, ...] = field(default_factory=tuple)
    # A deferred question (level defer, docs/adr/0037), hit or miss: the reply key, the label and
    # the term's end, for the late answer; and how many persons it asked about.
    reply_key: str = ""  # hex; empty unless deferred
    label: str = ""
    deadline: str = ""
    persons: int = 0
    watches: tuple[Watch, ...] = ()
    watch_until: str = ""
    # Persons found whose case reference (opened on the hit) does not match the asking
    # organisation's pattern (docs/adr/0041): refused, nothing disclosed; an alarm in the trail.
    refused: tuple[Disclosed, ...] = ()

    @property
    def disclosed(self) -> bool:
        return bool(self.hits or self.unreadable or self.refused)

    @property
    def deferred(self) -> bool:
        return bool(self.reply_key)


def _text(value: str, limit: int = 128) -> str:
    """Printable text of at most ``limit`` bytes (a reference comes from a case system)."""
    if value.isprintable():  # the usual case, in one call (the same text either way)
        return clip(value, limit)
    return clip("".join(c if c.isprintable() else "?" for c in value), limit)


def _item(hit: Disclosed) -> dict[str, object]:
    return {
        "index": hit.index,
        "pseudonym": hit.pseudonym,
        "key_id": _text(hit.key_id),
        "case": _text(hit.case),
        "user": _text(hit.user),
        "acted_for": _text(hit.acted_for),
        "level": hit.level,
        "reference": _text(hit.reference),
        "advice": _text(hit.advice),
    }


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_MISS = _json({"v": VERSION})  # a miss: nothing of the question is kept


def encode(answered: Answered, persons: int, decoys: Sequence[Disclosed] = ()) -> bytes:
    """The entry, padded with random bytes to the size for ``persons`` persons.

    ``decoys`` stand for the persons that were not found: they are serialised like a hit and
    thrown away, so that writing the entry costs the same whatever was found; only what was
    disclosed is kept.
    """
    document = {
        "v": VERSION,
        "answer_id": answered.answer_id,
        "at": answered.at,
        "requester": answered.requester,
        "on_behalf_of": answered.on_behalf_of,
        "role": _text(answered.role),
        "purpose": answered.purpose,
        "kind": answered.kind,
        "access_point": _text(answered.access_point),
        "hits": [_item(hit) for hit in answered.hits],
        "unreadable": list(answered.unreadable),
    }
    if answered.refused:
        document["refused"] = [_item(hit) for hit in answered.refused]
    if answered.watches:
        document.update(
            label=answered.label,
            persons=answered.persons,
            watch_until=answered.watch_until,
            watches=[
                {
                    "index": w.index,
                    "lookup": w.lookup,
                    "key_id": _text(w.key_id),
                    "sealed": w.sealed,
                }
                for w in answered.watches
            ],
        )
    if answered.deferred:
        document.update(
            reply_key=answered.reply_key,
            label=answered.label,
            deadline=answered.deadline,
            persons=answered.persons,
        )
    body = _json(document)
    _json([_item(decoy) for decoy in decoys])  # the same work for a person not found
    if not answered.disclosed and not answered.deferred and not answered.watches:
        body = _MISS
    total = size(persons)
    if _LENGTH + len(body) > total:  # cannot happen with the limits a question has
        raise ValueError(f"an outbox entry of {len(body)} bytes does not fit in {total}")
    return (
        len(body).to_bytes(_LENGTH, "big") + body + secrets.token_bytes(total - _LENGTH - len(body))
    )


def decode(entry: bytes) -> Answered:
    length = int.from_bytes(entry[:_LENGTH], "big")
    try:
        data = json.loads(entry[_LENGTH : _LENGTH + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage("an outbox entry is not JSON") from None
    if not isinstance(data, dict) or data.pop("v", None) != VERSION:
        raise MalformedMessage("an outbox entry has another version")
    try:
        hits = tuple(Disclosed(**hit) for hit in data.pop("hits", []))
        unreadable = tuple(int(i) for i in data.pop("unreadable", []))
        watches = tuple(Watch(**w) for w in data.pop("watches", []))
        refused = tuple(Disclosed(**hit) for hit in data.pop("refused", []))
        return Answered(**data, hits=hits, unreadable=unreadable, watches=watches, refused=refused)
    except TypeError:
        raise MalformedMessage("an outbox entry has unknown fields") from None


# The levels whose hit tells the found partner's contact point (docs/adr/0024, section 7): the
# asker learns of the partner (by name or by field), so the partner learns of the asker.
NOTICE_LEVELS = frozenset({"organisation", "domain"})


@dataclass(frozen=True)
class Notice:
    """What the found partner's contact point reads about one hit: who asked (organisation, role,
    on whose behalf), the purpose, the case, when, the asker's contact point and this node's own
    reference of the registration. Nothing of the asker's other answers (the node never has them),
    nor the asking user (the disclosure record in the trail has that, for the DPO)."""

    answer_id: str
    person: int  # the person's place in the question
    asked_at: dt.datetime
    requester: str
    role: str
    on_behalf_of: str
    purpose: str
    case: str
    reference: str
    level: str
    asker_contact: str
    aanmelder_basis: str = ""  # the aanmelder's basis as the network file states it


Aanmelder = Callable[[str, str, str], Mapping[str, str]]


def _no_aanmelder(purpose: str, requester: str, on_behalf_of: str) -> Mapping[str, str]:
    return {}


def notices(
    entries: Sequence[bytes],
    contact_of: Callable[[str], str],
    aanmelder: Aanmelder = _no_aanmelder,
) -> list[Notice]:
    """The notices of a batch of outbox entries: one per hit at a level that names or points to
    this partner; nothing for a miss. ``contact_of`` gives an organisation's contact point (the
    network file's); ``aanmelder`` what a record says of the question's aanmelder
    (:func:`betrokken.rules.recorded_aanmelder`: its basis)."""
    out: list[Notice] = []
    for raw in entries:
        try:
            answered = decode(raw)
        except MalformedMessage:
            continue  # records() makes the alarm
        for hit in answered.hits:
            if hit.level not in NOTICE_LEVELS:
                continue
            out.append(
                Notice(
                    answer_id=answered.answer_id,
                    person=hit.index,
                    asked_at=parse_time(answered.at),
                    requester=answered.requester,
                    role=answered.role,
                    on_behalf_of=answered.on_behalf_of or answered.requester,
                    purpose=answered.purpose,
                    case=hit.case,
                    reference=hit.reference,
                    level=hit.level,
                    asker_contact=contact_of(answered.requester),
                    aanmelder_basis=aanmelder(
                        answered.purpose, answered.requester, answered.on_behalf_of
                    ).get("aanmelder_basis", ""),
                )
            )
    return out


def records(
    entries: Sequence[bytes],
    organisation: str,
    legal_basis: Callable[[str], str],
    aanmelder: Aanmelder = _no_aanmelder,
) -> list[AuditEntry]:
    """The trail records of a batch of outbox entries: a disclosure record per hit (what the
    node's DPO and an access request at the node read), with the aanmelder's basis when the
    question was asked for one (``aanmelder``); an alarm for an unreadable sealed part and for a
    case reference refused; nothing for a miss."""
    out: list[AuditEntry] = []
    for raw in entries:
        try:
            answered = decode(raw)
        except MalformedMessage as exc:  # never written so by this node: say so, go on
            out.append(
                AuditEntry(
                    event=Event.ALARM,
                    at=dt.datetime.now(dt.UTC),
                    organisation=organisation,
                    reason="outbox-unreadable",
                    details={"message": f"an answered question's outbox entry: {exc.message}"},
                )
            )
            continue
        if not answered.disclosed:
            continue
        at = parse_time(answered.at)
        behalf = dict(aanmelder(answered.purpose, answered.requester, answered.on_behalf_of))
        for hit in answered.hits:
            value = bytes.fromhex(hit.pseudonym)
            if hit.level == "defer":  # nothing disclosed yet: a professional decides
                out.append(_awaiting(answered, hit, at, legal_basis(answered.purpose), behalf))
                continue
            details = {
                "registration_reference": hit.reference,
                "on_behalf_of": answered.on_behalf_of,
                "kind": answered.kind,
                **behalf,
            }
            if hit.advice:
                details["advice"] = hit.advice
            out.append(
                AuditEntry(
                    event=Event.DISCLOSURE,
                    at=at,
                    answer_id=answered.answer_id,
                    organisation=answered.requester,
                    user=hit.user,
                    acted_for=hit.acted_for,
                    role=answered.role,
                    access_point=answered.access_point,
                    purpose=answered.purpose,
                    legal_basis=legal_basis(answered.purpose),
                    subjects=(
                        Subject(
                            hit.pseudonym,
                            hit.key_id,
                            Pseudonym(value, hit.key_id).fingerprint,
                            hit.case,
                        ),
                    ),
                    reason=f"disclosed: {hit.level}",
                    details=details,
                )
            )
        for hit in answered.refused:
            out.append(_case_refused(answered, hit, at, organisation, behalf))
        if answered.unreadable:
            out.append(
                AuditEntry(
                    event=Event.ALARM,
                    at=at,
                    organisation=organisation,
                    answer_id=answered.answer_id,
                    reason="sealed-unreadable",
                    details={
                        "message": escape_text(
                            f"{answered.requester} asked about {len(answered.unreadable)} "
                            "person(s) known here whose case and user did not open with their "
                            "pseudonym; answered as usual, disclosed without a case"
                        ),
                        "persons": ",".join(str(i + 1) for i in answered.unreadable),
                    },
                )
            )
    return out


def _subject(hit: Disclosed) -> Subject:
    value = bytes.fromhex(hit.pseudonym)
    return Subject(hit.pseudonym, hit.key_id, Pseudonym(value, hit.key_id).fingerprint, hit.case)


def _case_refused(
    answered: Answered,
    hit: Disclosed,
    at: dt.datetime,
    organisation: str,
    behalf: Mapping[str, str],
) -> AuditEntry:
    """The alarm of a person known here asked about under a case reference that does not match
    the asking organisation's pattern: who asked, as whom, for whom, and the person (so an
    access request finds it); nothing was disclosed."""
    return AuditEntry(
        event=Event.ALARM,
        at=at,
        organisation=organisation,
        answer_id=answered.answer_id,
        user=hit.user,
        acted_for=hit.acted_for,
        role=answered.role,
        access_point=answered.access_point,
        purpose=answered.purpose,
        subjects=(_subject(hit),),
        reason="case-refused",
        details={
            "message": escape_text(
                f"{answered.requester} asked about person {hit.index + 1}, known here, under a "
                "case reference that does not match its organisation's pattern in the network "
                "file; refused, nothing disclosed"
            ),
            "requester": answered.requester,
            "registration_reference": hit.reference,
            "on_behalf_of": answered.on_behalf_of,
            **behalf,
        },
    )


def _awaiting(
    answered: Answered,
    hit: Disclosed,
    at: dt.datetime,
    basis: str,
    behalf: Mapping[str, str] | None = None,
) -> AuditEntry:
    """The trail record of a deferred question about a person known here: asked, and waiting
    for a professional's decision until the term ends (nothing was disclosed)."""
    return AuditEntry(
        event=Event.DECISION,
        at=at,
        answer_id=answered.answer_id,
        organisation=answered.requester,
        user=hit.user,
        acted_for=hit.acted_for,
        role=answered.role,
        access_point=answered.access_point,
        purpose=answered.purpose,
        legal_basis=basis,
        subjects=(
            Subject(
                hit.pseudonym,
                hit.key_id,
                Pseudonym(bytes.fromhex(hit.pseudonym), hit.key_id).fingerprint,
                hit.case,
            ),
        ),
        reason="pending",
        details={
            "registration_reference": hit.reference,
            "on_behalf_of": answered.on_behalf_of,
            "deadline": answered.deadline,
            **(behalf or {}),
        },
    )
