"""The asking side of deferred questions: waiting for, collecting and checking late answers.

A ``defer`` partner answers ``pending`` (docs/adr/0037). The asking organisation keeps, per such
partner and question, the question's reply key sealed to its own envelope key (``awaited_answers``:
only its node's private key opens it), with the term's end. It collects its mailbox at the
coordinator (``Mailbox.Collect``: the portal's "Meldingen" page, and ``betrokken ask collect``),
and for each message:

* finds the awaited answer by answer id **and** sender — a message for a question this
  organisation did not ask, or from an organisation it did not wait for, is refused;
* checks the sender's signature against the trail key the network file pins for it, and opens
  the seal with the reply key: a message the coordinator forged, altered or moved to another
  question fails here and is recorded as an alarm, never shown;
* checks every answer with :func:`betrokken.rules.check_late_answer`, keeps the result
  (``late_answers``) and a ``late-answer`` record in its own trail, and deletes the reply key.

Nothing here trusts a field the coordinator handed over: the answer id and sender only select
what to check, the checks use the network file and what this organisation kept itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken import rules
from betrokken.answer import LATE_OUTCOMES, Answer, Outcome
from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.clock import utcnow
from betrokken.config.schema import DisclosureLevel, Network, Organisation, TlsFiles
from betrokken.crypto import envelope as env
from betrokken.crypto import late
from betrokken.crypto import question as q
from betrokken.errors import MalformedMessage, VerificationError
from betrokken.identity.names import COORDINATOR_URI, Identity, Role
from betrokken.identity.pins import Pins
from betrokken.identity.rpc import PeerChannel, error_from_rpc
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.requester")
AWAITED_INFO = b"betrokken-awaited/v1"


class LateBase(DeclarativeBase):
    metadata = MetaData()


class AwaitedRow(LateBase):
    __tablename__ = "awaited_answers"

    answer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # decision (a defer partner) or signal
    purpose: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(256))
    deadline: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # to this organisation's envelope key


class LateAnswerRow(LateBase):
    __tablename__ = "late_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    answers: Mapped[str] = mapped_column(Text)  # JSON: per person case and answer
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


_AWAITED: Table = AwaitedRow.__table__  # type: ignore[assignment]
_LATE: Table = LateAnswerRow.__table__  # type: ignore[assignment]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# --- kept when the question is answered -----------------------------------------------------------
def awaited_rows(
    network: Network,
    org: Organisation,
    note: str,
    reply_keys: dict[str, bytes],
    purpose_id: str,
    user: str,
    cases: Sequence[str],
    pending_from: set[str],
    watch_days: int = 0,
) -> list[dict[str, Any]]:
    """The awaited answers of one question: one per ``defer`` partner that answered ``pending``
    (kind ``decision``, until the term's end), and, when the question leaves a watch, one per
    partner that names itself (kind ``signal``, until the watch ends); each with its reply key
    and the persons' cases sealed to this organisation's own envelope key."""
    purpose = network.purpose(purpose_id)
    if purpose is None or not org.envelope_key:
        return []
    question = q.peek_question(note)
    rows = []
    for label, key in reply_keys.items():
        level = rules.level(network, label, purpose_id)
        if label in pending_from and level is DisclosureLevel.DEFER:
            kind, deadline = "decision", rules.defer_deadline(question.at, purpose)
        elif watch_days > 0 and rules.may_watch(level):
            kind, deadline = "signal", rules.watch_until(question.at, watch_days)
        else:
            continue
        secret = json.dumps({"reply_key": key.hex(), "cases": list(cases)}).encode()
        rows.append(
            {
                "answer_id": question.answer_id,
                "label": label,
                "kind": kind,
                "purpose": purpose_id,
                "user": user,
                "deadline": deadline,
                "sealed": env.seal(org.envelope_public_key, AWAITED_INFO, secret),
            }
        )
    return rows


def keeping(
    first: Callable[[Connection], None], rows: list[dict[str, Any]]
) -> Callable[[Connection], None]:
    """``first``, then the awaited rows, in the transaction that keeps the question."""

    def keep(conn: Connection) -> None:
        first(conn)
        if rows:
            conn.execute(insert(_AWAITED), rows)

    return keep


# --- collecting ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Collected:
    """What one collection did: answers kept, messages refused (forged, altered, unknown)."""

    kept: int
    refused: int
    problems: tuple[str, ...] = ()


class MailboxCollector:
    """Collects this organisation's mailbox at the coordinator and keeps what checks out."""

    def __init__(
        self,
        network: Network,
        org: Organisation,
        tls: TlsFiles,
        trail: AuditLog,
        envelope_key: env.EnvelopeKey,
        pins: Pins,
        timeout: float = 10.0,
    ) -> None:
        self.network = network
        self.org = org
        self.tls = tls
        self.trail = trail
        self.engine: Engine = trail.engine
        self.envelope_key = envelope_key
        self.timeout = timeout
        self._peer = PeerChannel(
            network.coordinator.address,
            tls,
            network.coordinator.tls_name,
            Identity(Role.COORDINATOR),
            pins,
        )

    def close(self) -> None:
        closing = self._peer.close()
        if closing is not None:
            closing.close()

    def _call(self, acknowledge: Sequence[int]) -> list[pb.MailMessage]:
        stub, replaced = self._peer.stub(pb_grpc.MailboxStub)
        if replaced is not None:
            replaced.close()
        try:
            response = stub.Collect(
                pb.CollectRequest(acknowledge=list(acknowledge)), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(
                exc,
                "coordinator",
                self.network.coordinator.address,
                expected=COORDINATOR_URI,
                tls=self.tls,
                allowed=self._peer.allowed(),
            ) from None
        return list(response.messages)

    def collect(self) -> Collected:
        """Collect, check and keep every waiting message; acknowledge each one handled (kept or
        refused: a refused message is an alarm in the trail, and never comes back)."""
        kept = refused = 0
        problems: list[str] = []
        handled: list[int] = []
        for _ in range(50):  # batches of the coordinator's size; bounded
            messages = self._call(handled)
            handled = []
            if not messages:
                break
            for message in messages:
                try:
                    self._keep(message)
                    kept += 1
                except (VerificationError, MalformedMessage) as exc:
                    refused += 1
                    problems.append(exc.message)
                    self._alarm(message, exc.message)
                handled.append(message.id)
        if handled:
            self._call(handled)
        with self.engine.begin() as conn:  # a term long past: nothing will come any more
            conn.execute(
                delete(_AWAITED).where(
                    _AWAITED.c.deadline < utcnow() - dt.timedelta(days=rules.MAILBOX_DAYS)
                )
            )
        return Collected(kept, refused, tuple(problems))

    def _keep(self, message: pb.MailMessage) -> None:
        with self.engine.connect() as conn:
            awaited = (
                conn.execute(
                    select(*_AWAITED.columns).where(
                        _AWAITED.c.answer_id == message.answer_id,
                        _AWAITED.c.label == message.sender,
                    )
                )
                .mappings()
                .first()
            )
        if awaited is None:
            raise VerificationError(
                f"a late message names question {message.answer_id[:64]} and sender "
                f"{message.sender[:64]}, which this organisation does not wait for"
            )
        sender = self.network.organisation(message.sender)
        if sender is None or message.kind != awaited["kind"] or message.label != message.sender:
            raise VerificationError("a late message from an unknown sender or of another kind")
        secret = json.loads(env.open_sealed(self.envelope_key, AWAITED_INFO, awaited["sealed"]))
        plain = late.open_late(
            sender.log_key,
            bytes.fromhex(secret["reply_key"]),
            self.network.name,
            message.answer_id,
            message.sender,
            message.label,
            message.kind,
            message.sealed,
            message.signature,
        )
        content = q.ReplyContent.from_bytes(plain)
        cases: list[str] = list(secret["cases"])
        if content.answer_id != message.answer_id or content.label != message.label:
            raise MalformedMessage("a late answer is for another question")
        if len(content.items) != len(cases):
            raise MalformedMessage(f"a late answer holds {len(content.items)} answers")
        answers = [Answer.from_fields(item, LATE_OUTCOMES) for item in content.items]
        for answer in answers:
            rules.check_late_answer(answer, message.label)
        now = utcnow()
        shown = [
            {"case": case, **answer.to_json()} for case, answer in zip(cases, answers, strict=True)
        ]
        signal = message.kind == "signal"
        if signal and not any(a.outcome.involved for a in answers):
            raise MalformedMessage("a signal names nobody")
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(_LATE.c.id).where(
                    _LATE.c.answer_id == message.answer_id,
                    _LATE.c.sender == message.sender,
                    _LATE.c.kind == "decision",
                )
            ).first()
            if exists is None or signal:
                conn.execute(
                    insert(_LATE).values(
                        answer_id=message.answer_id,
                        sender=message.sender,
                        purpose=awaited["purpose"],
                        user=awaited["user"],
                        kind=message.kind,
                        received_at=now,
                        answers=json.dumps(shown, sort_keys=True),
                    )
                )
                self.trail.append(
                    [
                        AuditEntry(
                            event=Event.LATE_ANSWER,
                            at=now,
                            answer_id=message.answer_id,
                            organisation=self.org.id,
                            user=awaited["user"],
                            purpose=awaited["purpose"],
                            reason=message.kind,
                            details={
                                "from": message.sender,
                                "outcomes": ",".join(a.outcome.value for a in answers),
                            },
                        )
                    ],
                    conn,
                )
            if not signal:  # a watch stays until its end: another person may be registered
                conn.execute(
                    delete(_AWAITED).where(
                        _AWAITED.c.answer_id == message.answer_id,
                        _AWAITED.c.label == message.sender,
                    )
                )

    def _alarm(self, message: pb.MailMessage, why: str) -> None:
        log.warning("refused a late message for %s: %s", message.answer_id[:64], why)
        with self.engine.begin() as conn:
            self.trail.append(
                [
                    AuditEntry(
                        event=Event.ALARM,
                        at=utcnow(),
                        organisation=self.org.id,
                        answer_id=message.answer_id[:64],
                        reason="late-message-refused",
                        details={"message": why[:300], "from": message.sender[:64]},
                    )
                ],
                conn,
            )


# --- what the portal shows -----------------------------------------------------------------------
@dataclass(frozen=True)
class LateAnswer:
    id: int
    answer_id: str
    sender: str
    purpose: str
    user: str
    received_at: dt.datetime
    answers: tuple[tuple[str, Answer], ...]  # (case, answer) per person
    read: bool
    kind: str = "decision"

    @property
    def signal(self) -> bool:
        return self.kind == "signal"


@dataclass(frozen=True)
class Awaited:
    answer_id: str
    sender: str
    purpose: str
    user: str
    deadline: dt.datetime


def _answer(data: dict[str, Any]) -> tuple[str, Answer]:
    outcome = Outcome(data.get("outcome", ""))
    return str(data.get("case", "")), Answer(
        outcome,
        organisation_id=str(data.get("organisation_id", "")),
        organisation_name=str(data.get("organisation_name", "")),
        domain=str(data.get("domain", "")),
        contact=str(data.get("contact", "")),
        since=str(data.get("since", "")),
    )


def list_late(
    engine: Engine, user: str | None = None, answer_id: str | None = None
) -> list[LateAnswer]:
    """The late answers kept, newest first (of ``user``'s questions only, or of one question,
    when given)."""
    statement = select(*_LATE.columns).order_by(_LATE.c.received_at.desc())
    if user is not None:
        statement = statement.where(_LATE.c.user == user)
    if answer_id is not None:
        statement = statement.where(_LATE.c.answer_id == answer_id)
    with engine.connect() as conn:
        rows = conn.execute(statement).mappings().all()
    return [
        LateAnswer(
            id=row["id"],
            answer_id=row["answer_id"],
            sender=row["sender"],
            purpose=row["purpose"],
            user=row["user"],
            received_at=_utc(row["received_at"]),
            answers=tuple(_answer(item) for item in json.loads(row["answers"])),
            read=row["read_at"] is not None,
            kind=row["kind"],
        )
        for row in rows
    ]


def list_awaited(engine: Engine, user: str | None = None) -> list[Awaited]:
    """The defer partners' decisions still awaited (their term not yet ended, or not yet
    collected); watches are not listed, they may never signal."""
    statement = (
        select(
            _AWAITED.c.answer_id,
            _AWAITED.c.label,
            _AWAITED.c.purpose,
            _AWAITED.c.user,
            _AWAITED.c.deadline,
        )
        .where(_AWAITED.c.kind == "decision")
        .order_by(_AWAITED.c.deadline)
    )
    if user is not None:
        statement = statement.where(_AWAITED.c.user == user)
    with engine.connect() as conn:
        rows = conn.execute(statement).mappings().all()
    return [
        Awaited(r["answer_id"], r["label"], r["purpose"], r["user"], _utc(r["deadline"]))
        for r in rows
    ]


def for_question(engine: Engine, answer_id: str) -> tuple[list[LateAnswer], list[Awaited]]:
    """The late answers kept for one question, and its defer partners still awaited (the FG's
    access-request letter waits for them, docs/adr/0039)."""
    with engine.connect() as conn:
        waiting = (
            conn.execute(
                select(_AWAITED.c.label, _AWAITED.c.purpose, _AWAITED.c.user, _AWAITED.c.deadline)
                .where(_AWAITED.c.answer_id == answer_id, _AWAITED.c.kind == "decision")
                .order_by(_AWAITED.c.deadline)
            )
            .mappings()
            .all()
        )
    kept = list_late(engine, answer_id=answer_id)
    awaited = [
        Awaited(answer_id, r["label"], r["purpose"], r["user"], _utc(r["deadline"]))
        for r in waiting
    ]
    return kept, awaited


def mark_read(engine: Engine, user: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(_LATE)
            .where(_LATE.c.user == user, _LATE.c.read_at.is_(None))
            .values(read_at=utcnow())
        )


def collector_from_config(loaded: Any) -> MailboxCollector:
    """The collector of the organisation whose node.toml ``loaded`` is (its trail, its envelope
    key to open the kept reply keys, its certificate to call the coordinator)."""
    from betrokken.audit.trail import open_trail
    from betrokken.errors import ConfigError
    from betrokken.identity.keyfiles import read_envelope_key
    from betrokken.identity.pins import reloading

    network: Network = loaded.network
    org = network.organisation(loaded.component.organisation)
    assert org is not None  # load_node checked it
    if not loaded.component.envelope_key:
        raise ConfigError(
            f"{loaded.path}: collecting late answers needs 'envelope_key' (the node's private "
            "HPKE key, which opens the reply keys kept for them)",
            hint='add envelope_key = "envelope.key" (written by `betrokken network init`)',
        )
    key = read_envelope_key(loaded.resolve(loaded.component.envelope_key), org.envelope_key)
    trail, _ = open_trail(loaded)
    return MailboxCollector(network, org, loaded.tls, trail, key, reloading(loaded))
