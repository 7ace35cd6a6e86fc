"""A node witnesses the coordinator's audit log.

Regularly it fetches the latest signed checkpoint and a consistency proof from the last one it
accepted, verifies both against the coordinator's log key pinned in the network file, and stores
what it accepted (:class:`betrokken.audit.witness.WitnessStore`). A rolled-back, forked or badly
signed log raises an alarm: logged, recorded in the node's trail (so ``node status`` and the DPO
report show it) and raised as :class:`VerificationError` (exit code 8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import grpc

from betrokken.audit.witness import WitnessStore
from betrokken.config.schema import Network, TlsFiles
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, open_checkpoint
from betrokken.errors import MalformedMessage, VerificationError
from betrokken.identity.names import COORDINATOR_URI
from betrokken.identity.rpc import channel, error_from_rpc
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


class LogSource(Protocol):
    """Where a witness reads the coordinator's log (one gRPC client, or a test double)."""

    def checkpoint(self) -> str: ...

    def consistency(self, old_size: int, new_size: int) -> list[bytes]: ...

    def consistency_many(self, old_sizes: list[int], new_size: int) -> list[list[bytes]]: ...


class CoordinatorLog:
    def __init__(self, network: Network, tls: TlsFiles, timeout: float = 10.0) -> None:
        self.address = network.coordinator.address
        self.timeout = timeout
        self.tls = tls
        self._channel = channel(
            self.address,
            tls,
            network.coordinator.tls_name,
            frozenset(network.coordinator.certificates),  # the allow-list, checked before use
        )
        self._stub = pb_grpc.CoordinatorStub(self._channel)

    def _failed(self, exc: grpc.RpcError) -> Exception:
        return error_from_rpc(
            exc, "coordinator", self.address, expected=COORDINATOR_URI, tls=self.tls
        )

    def checkpoint(self) -> str:
        try:
            response = self._stub.GetCheckpoint(pb.CheckpointRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self._failed(exc) from None
        return str(response.checkpoint)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        try:
            response = self._stub.GetConsistencyProof(
                pb.ConsistencyRequest(old_size=old_size, new_size=new_size), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise self._failed(exc) from None
        return list(response.hashes)

    def consistency_many(self, old_sizes: list[int], new_size: int) -> list[list[bytes]]:
        try:
            response = self._stub.GetConsistencyProofs(
                pb.ConsistencyBatchRequest(old_sizes=old_sizes, new_size=new_size),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise self._failed(exc) from None
        if len(response.proofs) != len(old_sizes):
            raise MalformedMessage("the coordinator sent another number of proofs than asked")
        return [list(p.hashes) for p in response.proofs]

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
    store.alarm(f"witness-{kind}", message)
    return VerificationError(
        f"witness alarm ({kind}): {message}",
        hint="do not trust new answers' receipts; tell the network's DPOs and administrators "
        "(see docs/dpo.md, 'What a witness alarm means')",
    )


def witness_once(
    store: WitnessStore, source: LogSource, verifier: str, origin: str
) -> WitnessResult:
    """Check the coordinator's latest checkpoint, then confirm every checkpoint seen with a
    question since the last check (each must be a prefix of the latest)."""
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
        result = WitnessResult(None, checkpoint.size, True)
    elif checkpoint.size < last.size:
        raise _raise_alarm(
            store,
            "rollback",
            f"the coordinator's log shrank from {last.size} to {checkpoint.size} records",
        )
    elif checkpoint.size == last.size:
        if checkpoint.root != last.root:
            raise _raise_alarm(
                store, "fork", f"two different logs of {last.size} records were signed"
            )
        result = WitnessResult(last.size, last.size, False)
    else:
        proof = source.consistency(last.size, checkpoint.size)
        if not merkle.verify_consistency(
            last.size, checkpoint.size, last.root, checkpoint.root, proof
        ):
            raise _raise_alarm(
                store,
                "fork",
                f"the log of {checkpoint.size} records does not extend the {last.size} records "
                "accepted before: history was rewritten",
            )
        store.accept(checkpoint, note)
        result = WitnessResult(last.size, checkpoint.size, True)
    _confirm_seen(store, source, checkpoint)
    return result


STALE_SEEN = dt.timedelta(minutes=10)


def _confirm_seen(store: WitnessStore, source: LogSource, latest: Checkpoint) -> None:
    seen = store.unconfirmed()
    pending = [s for s in seen if s.size <= latest.size]
    if pending:
        proofs = source.consistency_many([s.size for s in pending], latest.size)
        bad = []
        for item, proof in zip(pending, proofs, strict=True):
            if item.size == latest.size:
                good = item.root == latest.root
            else:
                good = merkle.verify_consistency(
                    item.size, latest.size, item.root, latest.root, proof
                )
            if not good:
                bad.append(item)
        store.confirmed([s.size for s in pending])
        if bad:
            sizes = ", ".join(str(b.size) for b in bad)
            answer_ids = ",".join(a for b in bad for a in b.answer_ids)
            store.alarm(
                "witness-fork",
                f"checkpoint(s) of {sizes} records shown with questions are not part of the "
                f"coordinator's log of {latest.size} records: it signed another history to get "
                f"those questions answered (answer ids: {answer_ids[:300]})",
                evidence="\n".join(b.note for b in bad)[:4000],
                answer_ids=answer_ids[:4000],
            )
            raise VerificationError(
                f"witness alarm (fork): checkpoint(s) of {sizes} records shown with questions "
                "are not part of the coordinator's log",
                hint="tell the network's DPOs and administrators; the node's trail holds the "
                "signed checkpoints as evidence (docs/dpo.md, 'Alarms')",
            )
    now = dt.datetime.now(dt.UTC)
    stale = [
        s
        for s in seen
        if s.size > latest.size and s.accepted_at and now - s.accepted_at > STALE_SEEN
    ]
    if stale:
        store.confirmed([s.size for s in stale])
        raise _raise_alarm(
            store,
            "rollback",
            f"a checkpoint of {stale[-1].size} records was shown with a question, but the log "
            f"still has {latest.size} records {STALE_SEEN.seconds // 60} minutes later",
        )
