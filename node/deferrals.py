"""Defer decided by a professional: the node's requests, decisions and late answers (ADR 0037).

A ``defer`` node answers every question ``pending`` at once, hit or miss (docs/adr/0024,
section 5). The trail writer then keeps, from the answered question's outbox entry:

* a **deferred question** for every question, hit or miss: the answer id, the asker, the purpose,
  the number of persons, the reply key and the term's end. No page shows it; it is the timer.
* a **request** per person known here: who asked (organisation, role, on whose behalf), the purpose,
  the case, and this node's own reference of the registration and its pseudonym (to read the
  registration as it is at the term's end). Its professionals (the portal roles the network file's
  policy names in ``decided_by``) see it and decide: share (``delen``) or not (``niet-delen``),
  each with a coded ground. Every decision is a ``decision`` record in the trail.

At the term's end (never earlier: the moment a late answer leaves must not tell a hit from a miss)
the node seals one late answer per question under the reply key, signs it with its trail key and
delivers it to the coordinator's mailbox for the asker. Per person it says the organisation and its
contact point where a professional decided to share and the registration is still active, and
``no-disclosure`` otherwise — the same for a miss, a refusal and a term that passed undecided. The
rows are then deleted; the trail keeps the decision and, for a disclosure, a ``disclosure`` record.
The node never holds a BSN: the request holds the node's own pseudonym, as its trail does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    RowMapping,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken import rules
from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import Network, Organisation
from betrokken.crypto import late
from betrokken.crypto import question as q
from betrokken.crypto.note import NoteKey
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import BadInput, MalformedMessage, VerificationError
from betrokken.node import outbox
from betrokken.node.store import NodeStore

log = logging.getLogger("betrokken.node")


class DeferralBase(DeclarativeBase):
    metadata = MetaData()


class DeferredQuestionRow(DeferralBase):
    """One deferred question, hit or miss: the timer of its late answer."""

    __tablename__ = "deferred_questions"
    __table_args__ = (Index("ix_deferred_questions_deadline", "deadline"),)

    answer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    requester: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128))
    persons: Mapped[int] = mapped_column(Integer)
    reply_key: Mapped[bytes] = mapped_column(LargeBinary)
    deadline: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class DeferralRequestRow(DeferralBase):
    """One person of a deferred question who is known here: what a professional decides about."""

    __tablename__ = "deferral_requests"
    __table_args__ = (Index("ix_deferral_requests_answer_id", "answer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(String(64))
    person: Mapped[int] = mapped_column(Integer)
    asked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    requester: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(256))
    on_behalf_of: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    case_reference: Mapped[str] = mapped_column(String(256))
    reference: Mapped[str] = mapped_column(String(256))
    pseudonym: Mapped[str] = mapped_column(String(128))  # hex, this node's own
    key_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ground: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WatchRow(DeferralBase):
    """A person a question asked about and this node did not know, with the watch the question
    left (docs/adr/0037): the lookup hash (a one-way hash this node cannot compute without the
    key service) and the sealed item, which opens only with the person's pseudonym. Deleted when
    it signals or its term ends."""

    __tablename__ = "watches"
    __table_args__ = (
        Index("ix_watches_lookup_key", "lookup_key"),
        Index("ix_watches_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lookup_key: Mapped[bytes] = mapped_column(LargeBinary)
    answer_id: Mapped[str] = mapped_column(String(64))
    person: Mapped[int] = mapped_column(Integer)
    persons: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    requester: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


_WATCHES: Table = WatchRow.__table__  # type: ignore[assignment]
_QUESTIONS: Table = DeferredQuestionRow.__table__  # type: ignore[assignment]
_REQUESTS: Table = DeferralRequestRow.__table__  # type: ignore[assignment]


def _utc(moment: dt.datetime) -> dt.datetime:  # SQLite returns naive UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# --- kept by the trail writer ---------------------------------------------------------------------
def keep(conn: Connection, entries: Sequence[bytes]) -> None:
    """The deferred questions and requests of a batch of outbox entries, in the writer's
    transaction (nothing for a question to a node that does not defer)."""
    questions: list[dict[str, object]] = []
    requests: list[dict[str, object]] = []
    watches: list[dict[str, object]] = []
    for raw in entries:
        try:
            answered = outbox.decode(raw)
        except MalformedMessage:
            continue  # outbox.records() makes the alarm
        for watch in answered.watches:
            watches.append(
                {
                    "lookup_key": bytes.fromhex(watch.lookup),
                    "answer_id": answered.answer_id,
                    "person": watch.index,
                    "persons": answered.persons,
                    "label": answered.label,
                    "key_id": watch.key_id,
                    "sealed": bytes.fromhex(watch.sealed),
                    "requester": answered.requester,
                    "purpose": answered.purpose,
                    "expires_at": q.parse_time(answered.watch_until),
                }
            )
        if not answered.deferred:
            continue
        deadline = q.parse_time(answered.deadline)
        questions.append(
            {
                "answer_id": answered.answer_id,
                "requester": answered.requester,
                "purpose": answered.purpose,
                "label": answered.label,
                "persons": answered.persons,
                "reply_key": bytes.fromhex(answered.reply_key),
                "deadline": deadline,
            }
        )
        for hit in answered.hits:
            if hit.level != "defer":
                continue
            requests.append(
                {
                    "answer_id": answered.answer_id,
                    "person": hit.index,
                    "asked_at": q.parse_time(answered.at),
                    "deadline": deadline,
                    "requester": answered.requester,
                    "role": answered.role,
                    "on_behalf_of": answered.on_behalf_of or answered.requester,
                    "purpose": answered.purpose,
                    "case_reference": hit.case,
                    "reference": hit.reference,
                    "pseudonym": hit.pseudonym,
                    "key_id": hit.key_id,
                }
            )
    if watches:
        conn.execute(insert(_WATCHES), watches)
    if questions:
        conn.execute(insert(_QUESTIONS), questions)
    if requests:
        conn.execute(insert(_REQUESTS), requests)


# --- the professional's page ---------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """A request as the deciding professional's page shows it (no pseudonym, no BSN)."""

    id: int
    answer_id: str
    person: int
    asked_at: dt.datetime
    deadline: dt.datetime
    requester: str
    role: str
    on_behalf_of: str
    purpose: str
    case: str
    reference: str
    decision: str
    ground: str
    decided_by: str
    decided_at: dt.datetime | None


def _request(row: RowMapping) -> Request:
    decided_at = row["decided_at"]
    return Request(
        id=row["id"],
        answer_id=row["answer_id"],
        person=row["person"],
        asked_at=_utc(row["asked_at"]),
        deadline=_utc(row["deadline"]),
        requester=row["requester"],
        role=row["role"],
        on_behalf_of=row["on_behalf_of"],
        purpose=row["purpose"],
        case=row["case_reference"],
        reference=row["reference"],
        decision=row["decision"] or "",
        ground=row["ground"] or "",
        decided_by=row["decided_by"] or "",
        decided_at=_utc(decided_at) if decided_at is not None else None,
    )


_SHOWN = [c for c in _REQUESTS.columns if c.name not in ("pseudonym", "key_id")]


def list_requests(engine: Engine, purposes: frozenset[str] | None = None) -> list[Request]:
    """The requests whose term has not ended, soonest deadline first (only ``purposes``, when
    given: those the viewer's role decides)."""
    statement = select(*_SHOWN).order_by(_REQUESTS.c.deadline, _REQUESTS.c.id)
    if purposes is not None:
        statement = statement.where(_REQUESTS.c.purpose.in_(sorted(purposes)))
    with engine.connect() as conn:
        return [_request(row) for row in conn.execute(statement).mappings()]


def open_count(engine: Engine, purposes: frozenset[str]) -> int:
    """How many requests still wait for a decision (the portal's menu shows it)."""
    return sum(1 for r in list_requests(engine, purposes) if not r.decision)


def decide(
    engine: Engine,
    trail: AuditLog,
    network: Network,
    organisation: str,
    request_id: int,
    user: str,
    roles: frozenset[str],
    decision: str,
    ground: str,
    now: dt.datetime,
) -> Request:
    """Record a professional's decision: the request's state and a ``decision`` record in the
    trail, in one transaction. The rules (who, until when, which grounds) are
    :func:`betrokken.rules.check_decision`. A request decided before keeps its first decision."""
    with engine.begin() as conn:
        row = (
            conn.execute(select(*_REQUESTS.columns).where(_REQUESTS.c.id == request_id))
            .mappings()
            .first()
        )
        if row is None:
            raise BadInput(
                f"there is no request {request_id}",
                hint="its term may have passed (the asker was then told); see the list",
            )
        request = _request(row)
        rules.check_decision(
            network, organisation, request.purpose, roles, decision, ground, now, request.deadline
        )
        if request.decision:
            raise BadInput(
                f"this request was decided already ({request.decision}, by {request.decided_by})",
                hint="a decision is recorded once; the asker hears it at the end of the term",
            )
        conn.execute(
            update(_REQUESTS)
            .where(_REQUESTS.c.id == request_id)
            .values(decision=decision, ground=ground, decided_by=user, decided_at=now)
        )
        trail.append(
            [
                AuditEntry(
                    event=Event.DECISION,
                    at=now,
                    organisation=organisation,
                    answer_id=request.answer_id,
                    user=user,
                    purpose=request.purpose,
                    subjects=(_subject(row),),
                    reason=f"{decision}: {ground}",
                    details={
                        "asked_by": request.requester,
                        "on_behalf_of": request.on_behalf_of,
                        "registration_reference": request.reference,
                        "deadline": q.format_time(request.deadline),
                    },
                )
            ],
            conn,
        )
    return dataclasses.replace(
        request, decision=decision, ground=ground, decided_by=user, decided_at=now
    )


def _subject(row: RowMapping) -> Subject:
    value = bytes.fromhex(row["pseudonym"])
    return Subject(
        row["pseudonym"],
        row["key_id"],
        Pseudonym(value, row["key_id"]).fingerprint,
        row["case_reference"],
    )


# --- the late answer at the term's end -----------------------------------------------------------
class MailboxLink(Protocol):
    def deliver(
        self, answer_id: str, label: str, kind: str, sealed: bytes, signature: bytes
    ) -> None: ...


def deliver_due(
    store: NodeStore,
    network: Network,
    org: Organisation,
    signer: NoteKey,
    mailbox: MailboxLink,
    now: dt.datetime,
) -> int:
    """Send the late answer of every deferred question whose term has ended; how many were sent.

    A question whose delivery fails stays, and is tried again on the next round; the rows are
    deleted, and the trail records written, only once the coordinator kept the message."""
    engine = store.engine
    with engine.connect() as conn:
        due = (
            conn.execute(select(*_QUESTIONS.columns).where(_QUESTIONS.c.deadline <= now))
            .mappings()
            .all()
        )
    sent = 0
    for question in due:
        answer_id = question["answer_id"]
        with engine.connect() as conn:
            rows = (
                conn.execute(select(*_REQUESTS.columns).where(_REQUESTS.c.answer_id == answer_id))
                .mappings()
                .all()
            )
        by_person = {row["person"]: row for row in rows}
        lookups = {q.lookup_key(bytes.fromhex(row["pseudonym"])): row["person"] for row in rows}
        found = store.lookup(list(lookups), {org.pseudonym_key_id}, now.date())
        current = {lookups[key]: hit for key, hit in found.items()}
        answers = []
        disclosed: list[int] = []
        for person in range(question["persons"]):
            row = by_person.get(person)
            decision = (row["decision"] or "") if row is not None else ""
            hit = current.get(person)
            answer = rules.late_answer(org, hit, decision)
            if answer.outcome.involved:
                disclosed.append(person)
            answers.append(answer)
        label = question["label"]
        content = q.ReplyContent(answer_id, label, tuple(a.to_fields() for a in answers))
        sealed, signature = late.seal_late(
            signer,
            bytes(question["reply_key"]),
            network.name,
            answer_id,
            org.id,
            label,
            "decision",
            content.to_bytes(),
        )
        try:
            mailbox.deliver(answer_id, label, "decision", sealed, signature)
        except Exception as exc:
            log.warning("late answer of %s not delivered yet (%s); will try again", answer_id, exc)
            continue
        records = _closing_records(question, rows, disclosed, network, now)
        with engine.begin() as conn:
            if records:
                store.trail.append(records, conn)
            conn.execute(delete(_REQUESTS).where(_REQUESTS.c.answer_id == answer_id))
            conn.execute(delete(_QUESTIONS).where(_QUESTIONS.c.answer_id == answer_id))
        if disclosed:
            log.info(
                "disclosed answer_id=%s requester=%s (decided)", answer_id, question["requester"]
            )
        sent += 1
    return sent


def _closing_records(
    question: RowMapping,
    rows: Sequence[RowMapping],
    disclosed: list[int],
    network: Network,
    now: dt.datetime,
) -> list[AuditEntry]:
    """At the term's end, per person known here: a disclosure record where it was shared, a
    ``decision`` record ``expired`` where nobody decided. A miss leaves nothing."""
    purpose = network.purpose(question["purpose"])
    basis = purpose.legal_basis if purpose else ""
    out: list[AuditEntry] = []
    for row in rows:
        common = {
            "at": now,
            "answer_id": question["answer_id"],
            "organisation": question["requester"],
            "role": row["role"],
            "purpose": row["purpose"],
            "legal_basis": basis,
            "subjects": (_subject(row),),
        }
        if row["person"] in disclosed:
            out.append(
                AuditEntry(
                    event=Event.DISCLOSURE,
                    reason="disclosed: organisation (decided)",
                    details={
                        "registration_reference": row["reference"],
                        "on_behalf_of": row["on_behalf_of"],
                        "decided_by": row["decided_by"] or "",
                        "ground": row["ground"] or "",
                    },
                    **common,  # type: ignore[arg-type]
                )
            )
        elif not row["decision"]:
            out.append(
                AuditEntry(
                    event=Event.DECISION,
                    reason="expired",
                    details={"registration_reference": row["reference"]},
                    **common,  # type: ignore[arg-type]
                )
            )
    return out


# --- signals: a person asked about earlier is registered here now -------------------------------
def signal_due(
    store: NodeStore,
    network: Network,
    org: Organisation,
    signer: NoteKey,
    mailbox: MailboxLink,
    now: dt.datetime,
) -> int:
    """Send a signal for every watch whose person is registered here now; delete watches past
    their term. How many signals were sent.

    A watch matches an active registration by its lookup hash; the node then has the person's
    pseudonym, derives the key of the sealed item, and opens it: the reply key the asker left for
    the signal, and the case. The signal is one late message of kind ``signal``: the question's
    persons, ``involved`` with this organisation's contact point for the one registered now and
    ``no-disclosure`` for the others. A disclosure record goes into the trail."""
    engine = store.engine
    with engine.begin() as conn:
        conn.execute(delete(_WATCHES).where(_WATCHES.c.expires_at <= now))
    with engine.connect() as conn:
        watches = conn.execute(select(*_WATCHES.columns)).mappings().all()
    if not watches:
        return 0
    found = store.lookup(
        [bytes(w["lookup_key"]) for w in watches], {org.pseudonym_key_id}, now.date()
    )
    sent = 0
    for watch in watches:
        hit = found.get(bytes(watch["lookup_key"]))
        if hit is None:
            continue
        item = q.LookupItem(bytes(watch["lookup_key"]), watch["key_id"], bytes(watch["sealed"]))
        try:
            opened = item.open(hit.pseudonym, watch["answer_id"], org.id, watch["person"])
        except (VerificationError, MalformedMessage):
            opened = None
        if opened is None or not opened.watch:
            with engine.begin() as conn:  # nothing a signal could be sealed under
                conn.execute(delete(_WATCHES).where(_WATCHES.c.id == watch["id"]))
            continue
        answers = [
            rules.late_answer(org, hit if index == watch["person"] else None, "delen")
            for index in range(watch["persons"])
        ]
        label = watch["label"]
        content = q.ReplyContent(watch["answer_id"], label, tuple(a.to_fields() for a in answers))
        sealed, signature = late.seal_late(
            signer,
            bytes.fromhex(opened.watch),
            network.name,
            watch["answer_id"],
            org.id,
            label,
            "signal",
            content.to_bytes(),
        )
        try:
            mailbox.deliver(watch["answer_id"], label, "signal", sealed, signature)
        except Exception as exc:
            log.warning(
                "signal of %s not delivered yet (%s); will try again", watch["answer_id"], exc
            )
            continue
        purpose = network.purpose(watch["purpose"])
        record = AuditEntry(
            event=Event.DISCLOSURE,
            at=now,
            answer_id=watch["answer_id"],
            organisation=watch["requester"],
            user=opened.user,
            acted_for=opened.acted_for,
            purpose=watch["purpose"],
            legal_basis=purpose.legal_basis if purpose else "",
            subjects=(
                Subject(
                    hit.pseudonym.hex(),
                    hit.key_id,
                    Pseudonym(hit.pseudonym, hit.key_id).fingerprint,
                    opened.case,
                ),
            ),
            reason="disclosed: organisation (signal)",
            details={"registration_reference": hit.reference or ""},
        )
        with engine.begin() as conn:
            store.trail.append([record], conn)
            conn.execute(delete(_WATCHES).where(_WATCHES.c.id == watch["id"]))
        log.info("signal sent answer_id=%s", watch["answer_id"])
        sent += 1
    return sent


def watch_count(engine: Engine) -> int:
    """How many watches this node keeps (the FG's report counts them)."""
    with engine.connect() as conn:
        return len(conn.execute(select(_WATCHES.c.id)).all())
