"""A node witnesses the coordinator's audit log.

Regularly it fetches the latest signed checkpoint and a consistency proof from the last one it
accepted, verifies both against the coordinator's log key pinned in the network file, and stores
what it accepted. A rolled-back, forked or badly signed log raises an alarm: logged, stored (so
``node status`` shows it) and raised as :class:`VerificationError` (exit code 8).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

import grpc
from sqlalchemy import (
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    insert,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.config.schema import Network, TlsFiles
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, open_checkpoint
from betrokken.errors import MalformedMessage, VerificationError
from betrokken.identity.rpc import channel, error_from_rpc
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.witness")


class WitnessBase(DeclarativeBase):
    metadata = MetaData()


class Witnessed(WitnessBase):
    __tablename__ = "witnessed_checkpoints"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Alarm(WitnessBase):
    __tablename__ = "witness_alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class Accepted:
    size: int
    root: bytes
    note: str
    accepted_at: dt.datetime | None = None


@dataclass(frozen=True)
class AlarmRecord:
    at: dt.datetime
    kind: str
    message: str


class WitnessStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        WitnessBase.metadata.create_all(engine)

    def last(self) -> Accepted | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(Witnessed).order_by(Witnessed.size.desc()).limit(1)).first()
        return Accepted(row.size, bytes(row.root), row.note, row.accepted_at) if row else None

    def accepted(self) -> list[Accepted]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Witnessed).order_by(Witnessed.size)).all()
        return [Accepted(r.size, bytes(r.root), r.note, r.accepted_at) for r in rows]

    def accept(self, checkpoint: Checkpoint, note: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(Witnessed).values(
                    size=checkpoint.size,
                    root=checkpoint.root,
                    note=note,
                    accepted_at=dt.datetime.now(dt.UTC),
                )
            )

    def alarm(self, kind: str, message: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(Alarm).values(at=dt.datetime.now(dt.UTC), kind=kind, message=message)
            )

    def alarms(self) -> list[AlarmRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Alarm).order_by(Alarm.id)).all()
        return [AlarmRecord(r.at, r.kind, r.message) for r in rows]


class LogSource(Protocol):
    """Where a witness reads the coordinator's log (one gRPC client, or a test double)."""

    def checkpoint(self) -> str: ...

    def consistency(self, old_size: int, new_size: int) -> list[bytes]: ...


class CoordinatorLog:
    def __init__(self, network: Network, tls: TlsFiles, timeout: float = 10.0) -> None:
        self.address = network.coordinator.address
        self.timeout = timeout
        self._channel = channel(self.address, tls)
        self._stub = pb_grpc.CoordinatorStub(self._channel)

    def checkpoint(self) -> str:
        try:
            response = self._stub.GetCheckpoint(pb.CheckpointRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, "coordinator", self.address) from None
        return str(response.checkpoint)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        try:
            response = self._stub.GetConsistencyProof(
                pb.ConsistencyRequest(old_size=old_size, new_size=new_size), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, "coordinator", self.address) from None
        return list(response.hashes)

    def close(self) -> None:
        self._channel.close()


@dataclass(frozen=True)
class WitnessResult:
    previous: int | None
    size: int
    changed: bool

    def describe(self) -> str:
        if self.previous is None:
            return f"accepted the coordinator's log at {self.size} records (first checkpoint)"
        if not self.changed:
            return f"the coordinator's log is unchanged at {self.size} records"
        return (
            f"accepted the coordinator's log at {self.size} records; it consistently extends "
            f"the {self.previous} records accepted before"
        )


def _raise_alarm(store: WitnessStore, kind: str, message: str) -> VerificationError:
    store.alarm(kind, message)
    log.error("WITNESS ALARM %s: %s", kind, message)
    return VerificationError(
        f"witness alarm ({kind}): {message}",
        hint="do not trust new answers' receipts; tell the network's DPOs and administrators "
        "(see docs/dpo.md, 'What a witness alarm means')",
    )


def witness_once(
    store: WitnessStore, source: LogSource, verifier: str, origin: str
) -> WitnessResult:
    note = source.checkpoint()
    if not note:
        last = store.last()
        if last is not None:
            raise _raise_alarm(store, "rollback", f"the log is empty, {last.size} were accepted")
        return WitnessResult(None, 0, False)
    try:
        checkpoint = open_checkpoint(note, verifier, origin)
    except (VerificationError, MalformedMessage) as exc:
        raise _raise_alarm(store, "bad-signature", exc.message) from None
    last = store.last()
    if last is None:
        store.accept(checkpoint, note)
        return WitnessResult(None, checkpoint.size, True)
    if checkpoint.size < last.size:
        raise _raise_alarm(
            store,
            "rollback",
            f"the coordinator's log shrank from {last.size} to {checkpoint.size} records",
        )
    if checkpoint.size == last.size:
        if checkpoint.root != last.root:
            raise _raise_alarm(
                store, "fork", f"two different logs of {last.size} records were signed"
            )
        return WitnessResult(last.size, last.size, False)
    proof = source.consistency(last.size, checkpoint.size)
    if not merkle.verify_consistency(last.size, checkpoint.size, last.root, checkpoint.root, proof):
        raise _raise_alarm(
            store,
            "fork",
            f"the log of {checkpoint.size} records does not extend the {last.size} records "
            "accepted before: history was rewritten",
        )
    store.accept(checkpoint, note)
    return WitnessResult(last.size, checkpoint.size, True)
