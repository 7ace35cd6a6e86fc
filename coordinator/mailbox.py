"""The coordinator's mailbox: sealed late messages from a node to an earlier asker (docs/adr/0037).

A ``defer`` partner answers ``pending`` at once and its professionals decide later; at the end of
the term its node delivers one late answer per question here, and the asking organisation collects
it. The coordinator keeps, per message, only what routing needs: the recipient and sender
organisations, the question's answer id, the label and kind, the sealed bytes and the sender's
signature. The bytes are sealed under the question's reply key, which the coordinator never held,
and padded to a size that depends only on the number of persons: the mailbox holds no case, no
user, no outcome (P4). Each delivery is a ``delivery`` record in the coordinator's log (answer
id, sender, kind), so its DPO sees that a late answer passed, not what it said.

A delivery is refused unless the question is in the log, was answered, and the sender was one of
the nodes asked in it: nobody can fill another organisation's mailbox with messages of questions
that never reached them. Whatever the coordinator does with a message, the recipient checks it
against the sender's pinned trail key and the question's reply key (``crypto/late.py``).
"""

from __future__ import annotations

import datetime as dt
import logging

import grpc
from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken import rules
from betrokken.audit.log import RECORDS, entry_from_leaf
from betrokken.audit.record import AuditEntry, Event
from betrokken.clock import utcnow
from betrokken.config.schema import Network
from betrokken.coordinator.store import AuditStore
from betrokken.crypto.question import SIGNATURE_SIZE, reply_size
from betrokken.errors import BadInput, MalformedMessage, PolicyRefusal
from betrokken.identity.names import Role
from betrokken.identity.pins import NetworkPins, Pins
from betrokken.identity.rpc import peer_identity, servicer_method
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.coordinator")
MAX_PERSONS = 1000  # more than any question holds; bounds what one message may take
COLLECT_BATCH = 200


class MailboxBase(DeclarativeBase):
    metadata = MetaData()


class MailRow(MailboxBase):
    __tablename__ = "mailbox"
    __table_args__ = (Index("ix_mailbox_recipient", "recipient"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(64))
    answer_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    kept_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


_MAIL: Table = MailRow.__table__  # type: ignore[assignment]


def _outcome_of(store: AuditStore, answer_id: str) -> AuditEntry | None:
    """The question's answered (outcome) record in the coordinator's own log, if any."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(RECORDS.c.content).where(
                RECORDS.c.answer_id == answer_id, RECORDS.c.event == Event.OUTCOME.value
            )
        ).scalars()
        for content in rows:
            if content is None:
                continue
            try:
                return entry_from_leaf(content)[1]
            except (MalformedMessage, ValueError, UnicodeDecodeError):
                continue
    return None


class MailboxServicer(pb_grpc.MailboxServicer):
    def __init__(
        self,
        network: Network,
        store: AuditStore,
        pins: Pins | None = None,
    ) -> None:
        self.network = network
        self.store = store
        self.pins: Pins = pins or NetworkPins(network)

    @servicer_method
    def Deliver(
        self, request: pb.DeliverRequest, context: grpc.ServicerContext
    ) -> pb.DeliverResponse:
        sender = peer_identity(context, "Mailbox.Deliver", [Role.ORGANISATION], self.pins)
        org = sender.organisation_id or ""
        if request.kind not in rules.LATE_KINDS:
            raise BadInput(
                f"the mailbox carries no '{request.kind[:20]}' messages",
                hint="kind 'decision' (a deferred question's late answer) or 'signal'",
            )
        if request.label != org:
            raise BadInput("a late answer is labelled with its sender's own organisation")
        if not request.sealed or len(request.sealed) > reply_size(MAX_PERSONS):
            raise BadInput("a late message is empty or larger than any question's reply")
        if len(request.signature) != SIGNATURE_SIZE:
            raise BadInput("a late message carries no signature")
        outcome = _outcome_of(self.store, request.answer_id)
        asked = set((outcome.details.get("asked") or "").split(",")) if outcome else set()
        if outcome is None or org not in asked:
            raise PolicyRefusal(
                f"question {request.answer_id[:64]} did not reach {org}: nothing to deliver",
                hint="a node delivers only for questions it was asked",
            )
        now = utcnow()
        with self.store.engine.begin() as conn:
            seen = conn.execute(
                select(MailRow.id).where(
                    MailRow.answer_id == request.answer_id,
                    MailRow.sender == org,
                    MailRow.kind == request.kind,
                )
            ).first()
            if seen is not None and request.kind == "decision":
                return pb.DeliverResponse()  # delivered before (a retry): kept once
            conn.execute(
                insert(_MAIL).values(
                    recipient=outcome.organisation,
                    sender=org,
                    answer_id=request.answer_id,
                    label=request.label,
                    kind=request.kind,
                    sealed=bytes(request.sealed),
                    signature=bytes(request.signature),
                    kept_at=now,
                    expires_at=now + dt.timedelta(days=rules.MAILBOX_DAYS),
                )
            )
        # The delivery is in the log: which node, for which question, what kind; nothing else.
        self.store.append(
            AuditEntry(
                event=Event.DELIVERY,
                at=now,
                answer_id=request.answer_id,
                organisation=outcome.organisation,
                purpose=outcome.purpose,
                reason=request.kind,
                details={"from": org},
            )
        )
        log.info("mailbox: kept a %s from %s for %s", request.kind, org, outcome.organisation)
        return pb.DeliverResponse()

    @servicer_method
    def Collect(
        self, request: pb.CollectRequest, context: grpc.ServicerContext
    ) -> pb.CollectResponse:
        caller = peer_identity(context, "Mailbox.Collect", [Role.ORGANISATION], self.pins)
        org = caller.organisation_id or ""
        with self.store.engine.begin() as conn:
            if request.acknowledge:
                conn.execute(
                    delete(MailRow).where(
                        MailRow.recipient == org, MailRow.id.in_(list(request.acknowledge))
                    )
                )
            rows = conn.execute(
                select(*_MAIL.columns)
                .where(MailRow.recipient == org)
                .order_by(MailRow.id)
                .limit(COLLECT_BATCH)
            ).mappings()
            messages = [
                pb.MailMessage(
                    id=row["id"],
                    answer_id=row["answer_id"],
                    sender=row["sender"],
                    label=row["label"],
                    kind=row["kind"],
                    sealed=bytes(row["sealed"]),
                    signature=bytes(row["signature"]),
                )
                for row in rows
            ]
        return pb.CollectResponse(messages=messages)


def prune_mailbox(store: AuditStore, now: dt.datetime) -> int:
    """Delete messages nobody collected within their term; how many."""
    with store.engine.begin() as conn:
        return conn.execute(delete(MailRow).where(MailRow.expires_at < now)).rowcount or 0
