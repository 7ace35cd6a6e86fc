"""A node witnesses the coordinator's audit log.

Regularly it fetches the latest signed checkpoint and a consistency proof from the last one it
accepted, verifies both against the coordinator's log key pinned in the network file, and stores
what it accepted (:class:`betrokken.audit.witness.WitnessStore`). A rolled-back, forked or badly
signed log raises an alarm: logged, recorded in the node's trail (so ``node status`` and the DPO
report show it) and raised as :class:`VerificationError` (exit code 8).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import grpc

from betrokken import rules
from betrokken.audit.witness import Accepted, WitnessStore, check_cosigned, witness_cosigners
from betrokken.config.schema import Network, Organisation, TlsFiles
from betrokken.crypto import merkle
from betrokken.crypto.cosignature import Cosigner
from betrokken.crypto.note import Checkpoint, VerifiedSignatures, open_checkpoint
from betrokken.crypto.question import parse_time
from betrokken.errors import (
    BadInput,
    BetrokkenError,
    LogDamaged,
    MalformedMessage,
    QuestionRefused,
    Unavailable,
    VerificationError,
    WrongRole,
)
from betrokken.identity.names import COORDINATOR_URI, Identity, Role, organisation_uri
from betrokken.identity.pins import NetworkPins, Pins
from betrokken.identity.rpc import (
    PeerChannel,
    channel,
    error_from_rpc,
    peer_identity,
    servicer_method,
)
from betrokken.node.store import KeptRecord
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.witness")
MAX_NOTE_BYTES = 64 * 1024
MAX_PROOF_HASHES = 63  # C2SP tlog-witness: never more consistency proof lines than this
PEERS_PER_CHECK = 2
# The coordinator's signatures on checkpoints this node found valid: a checkpoint it cosigned
# comes back with the questions of that round, and its signature is then not verified a second
# time (the same signature over the same body under the same key; docs/adr/0046).
COORDINATOR_SIGNATURES = VerifiedSignatures()
# Records of questions this node answered, asked for again each witness interval at random, besides
# the newest (docs/adr/0042).
RECORDS_PER_CHECK = 3


class LogSource(Protocol):
    """Where a witness reads the coordinator's log (one gRPC client, or a test double)."""

    def checkpoint(self) -> str: ...

    def consistency(self, old_size: int, new_size: int) -> list[bytes]: ...

    def consistency_many(self, old_sizes: list[int], new_size: int) -> list[list[bytes]]: ...


class CoordinatorLog:
    def __init__(
        self,
        network: Network,
        tls: TlsFiles,
        timeout: float = 10.0,
        pins: Pins | None = None,
    ) -> None:
        self.address = network.coordinator.address
        self.timeout = timeout
        self.tls = tls
        # The coordinator's clock as measured at the last checkpoint: (offset, uncertainty).
        self.clock: tuple[float, float] | None = None
        # Only the coordinator's listed certificates pass the handshake (docs/adr/0024, 11).
        self._peer = PeerChannel(
            self.address,
            tls,
            network.coordinator.tls_name,
            Identity(Role.COORDINATOR),
            pins or NetworkPins(network),
        )

    @property
    def _stub(self) -> Any:
        stub, replaced = self._peer.stub(pb_grpc.CoordinatorStub)
        if replaced is not None:
            replaced.close()
        return stub

    def _failed(self, exc: grpc.RpcError) -> Exception:
        return error_from_rpc(
            exc,
            "coordinator",
            self.address,
            expected=COORDINATOR_URI,
            tls=self.tls,
            allowed=self._peer.allowed(),
        )

    def checkpoint(self) -> str:
        stub = self._stub
        sent = time.time()
        try:
            response = stub.GetCheckpoint(pb.CheckpointRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self._failed(exc) from None
        received = time.time()
        if response.time:
            try:
                theirs = parse_time(response.time).timestamp()
            except (MalformedMessage, ValueError):
                theirs = None
            if theirs is not None:
                self.clock = rules.clock_offset(sent, received, theirs)
        return str(response.checkpoint)

    def record(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """A question's record as the coordinator stores it, with its inclusion proof."""
        try:
            response = self._stub.GetRecord(
                pb.RecordRequest(leaf_index=index, tree_size=size), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise self._failed(exc) from None
        return bytes(response.record), list(response.hashes)

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
        closing = self._peer.close()
        if closing is not None:
            closing.close()


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
    proof = None
    if last is not None and checkpoint.size > last.size:
        proof = source.consistency(last.size, checkpoint.size)
    with store.lock:  # checked and stored in one step: a cosigning may not slip in between
        moved = store.reload()  # from the database: the running node may have cosigned one
        if (moved.size if moved else None) != (last.size if last else None):
            # It cosigned a checkpoint meanwhile (checked against its state then); the next
            # check compares the latest with that.
            assert moved is not None
            return WitnessResult(last.size if last else None, moved.size, True)
        result = _accept_latest(store, checkpoint, note, last, proof)
    _confirm_seen(store, source, checkpoint)
    return result


def _accept_latest(
    store: WitnessStore,
    checkpoint: Checkpoint,
    note: str,
    last: Accepted | None,
    proof: list[bytes] | None,
) -> WitnessResult:
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
        if not merkle.verify_consistency(
            last.size, checkpoint.size, last.root, checkpoint.root, proof or []
        ):
            raise _raise_alarm(
                store,
                "fork",
                f"the log of {checkpoint.size} records does not extend the {last.size} records "
                "accepted before: history was rewritten",
            )
        store.accept(checkpoint, note)
        result = WitnessResult(last.size, checkpoint.size, True)
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


# --- the records of this node's own questions, sampled (docs/adr/0042) --------------------------
class RecordSource(Protocol):
    def record(self, index: int, size: int) -> tuple[bytes, list[bytes]]: ...


class KeptRecords(Protocol):
    """What the node kept of the questions it answered (:class:`betrokken.node.store.NodeStore`)."""

    def kept_records(
        self, count: int, below: int, pick: Callable[[int, int], int]
    ) -> list[KeptRecord]: ...

    def record_alarmed(self, seq: int) -> None: ...


@dataclass(frozen=True)
class SampleResult:
    checked: int
    damaged: tuple[int, ...]  # log indices found altered, missing or refused
    skipped: int = 0  # not checked this time: the coordinator could not be asked

    def describe(self) -> str:
        text = f"checked {self.checked} record(s) of questions answered here"
        if self.damaged:
            text += f"; damaged or refused: {', '.join(str(i) for i in self.damaged)}"
        if self.skipped:
            text += f"; {self.skipped} not checked (the coordinator could not be asked)"
        return text


def _record_problem(
    kept: KeptRecord, source: RecordSource, witnessed: Accepted
) -> tuple[str, str] | None:
    """What is wrong with one kept record at the coordinator, Dutch and English; None when it
    is the record this node answered under, proven in the log it witnessed."""
    try:
        record, proof = source.record(kept.log_index, witnessed.size)
    except BetrokkenError as exc:
        if isinstance(exc, Unavailable) and not isinstance(exc, LogDamaged):
            raise  # not reached, or the question is still being asked: try again next time
        return (
            f"de coördinator gaf het niet ({exc.message[:160]})",
            f"the coordinator did not return it ({exc.message[:160]})",
        )
    if not record:
        return ("de coördinator gaf het leeg terug", "the coordinator returned it empty")
    leaf = merkle.leaf_hash(record)
    if leaf != kept.leaf_hash:
        return (
            "de inhoud verschilt van het record waarop dit knooppunt antwoordde (gewijzigd)",
            "its content differs from the record this node answered under (altered)",
        )
    if not merkle.verify_inclusion(leaf, kept.log_index, witnessed.size, proof, witnessed.root):
        return (
            f"het bewijs past niet bij het log van {witnessed.size} records dat hier is gezien",
            f"its proof does not fit the log of {witnessed.size} records witnessed here",
        )
    return None


def sample_records(
    kept: KeptRecords,
    store: WitnessStore,
    source: RecordSource,
    count: int = RECORDS_PER_CHECK,
    pick: Callable[[int, int], int] | None = None,
) -> SampleResult:
    """Ask the coordinator again for a random sample of the records of questions this node
    answered (and the newest), under the checkpoint it witnessed last; check each against the
    leaf hash it answered under and against that checkpoint. An altered, missing or refused
    record is one alarm (``record-damaged``) naming its index — once per record — and a
    :class:`VerificationError`; a coordinator that cannot be reached is tried again next time.
    Only this node's own questions: records that concern no node are the auditor's (``audit
    verify``)."""
    witnessed = store.last()
    if witnessed is None:
        return SampleResult(0, ())
    rows = kept.kept_records(count, witnessed.size, pick or random.SystemRandom().randint)
    damaged: list[tuple[KeptRecord, tuple[str, str]]] = []
    checked = skipped = 0
    for row in rows:
        try:
            problem = _record_problem(row, source, witnessed)
        except Unavailable as exc:
            log.info("witness: record %d not checked now (%s)", row.log_index, exc.message)
            skipped += 1
            continue
        checked += 1
        if problem is not None:
            damaged.append((row, problem))
    for row, (nl, en) in damaged:
        if row.alarmed:
            continue
        store.alarm(
            "record-damaged",
            f"record {row.log_index} van het log van de coördinator, van een vraag die dit "
            f"knooppunt beantwoordde: {nl} / record {row.log_index} of the coordinator's log, "
            f"of a question this node answered: {en}",
            index=str(row.log_index),
        )
        kept.record_alarmed(row.seq)
    result = SampleResult(checked, tuple(r.log_index for r, _ in damaged), skipped)
    if damaged:
        raise VerificationError(
            f"witness alarm (record-damaged): {result.describe()}",
            hint="the coordinator's log was altered or lost records; tell the network's DPOs "
            "and administrators (docs/dpo.md, 'Alarms'); `betrokken audit verify` at the "
            "coordinator names every damaged record",
        )
    return result


# --- the node as a witness: cosigning, and what it tells other nodes --------------------------
class WitnessService:
    """``Node.Cosign`` and ``Node.GetWitnessed``, and the cosignature check of a lookup; mixed
    into the node's servicer, which provides these attributes."""

    network: Network
    org: Organisation
    witness: WitnessStore
    pins: Pins
    origin: str

    @cached_property
    def _cosigners(self) -> dict[str, Cosigner]:
        return witness_cosigners(self.network)

    def check_cosigned(self, note: str, size: int) -> None:
        """Refuse (``no-quorum``) a checkpoint without ``witness_quorum`` valid cosignatures of
        witnesses other than this node: the other witnesses may never have seen this history."""
        check_cosigned(note, size, self._cosigners, self.network.witness_quorum(), self.org.id)

    @servicer_method
    def Cosign(self, request: pb.CosignRequest, context: grpc.ServicerContext) -> pb.CosignResponse:
        peer_identity(context, "Node.Cosign", [Role.COORDINATOR], self.pins)
        if self.org.id not in self._cosigners:
            raise WrongRole(f"{self.org.id} is not one of the network's witnesses")
        note = request.checkpoint
        if not note or len(note.encode("utf-8")) > MAX_NOTE_BYTES:
            raise BadInput("the request carries no checkpoint (or one that is too long)")
        if len(request.consistency_proof) > MAX_PROOF_HASHES or request.old_size < 0:
            raise BadInput("the consistency proof is too long, or the old size negative")
        try:
            checkpoint = open_checkpoint(
                note, self.network.coordinator.log_key, self.origin, COORDINATOR_SIGNATURES
            )
        except (VerificationError, MalformedMessage) as exc:
            message = (
                f"asked to cosign a checkpoint the coordinator's key did not sign: {exc.message}"
            )
            self.witness.alarm("cosign-forged", message, access_point=context.peer())
            raise QuestionRefused(message, kind="cosign-forged") from None
        key = self.witness.trail.signer
        if key is None:
            raise WrongRole("this node has no trail key to cosign with")
        line = self.witness.cosign(
            checkpoint, note, request.old_size, list(request.consistency_proof), key
        )
        return pb.CosignResponse(cosignature=line)

    @servicer_method
    def GetWitnessed(
        self, request: pb.WitnessedRequest, context: grpc.ServicerContext
    ) -> pb.WitnessedResponse:
        peer = peer_identity(context, "Node.GetWitnessed", [Role.ORGANISATION], self.pins)
        asker = self.network.organisation(peer.organisation_id or "")
        if asker is None or not asker.node_address:
            raise WrongRole(
                f"only the network's nodes compare witnessed checkpoints, not "
                f"'{peer.organisation_id}'"
            )
        last = self.witness.last()
        at = self.witness.at_size(request.size) if request.size > 0 else None
        return pb.WitnessedResponse(
            checkpoint=last.note if last else "", at_size=at.note if at else ""
        )


# --- comparing with other nodes, directly -------------------------------------------------------
class PeerSource(Protocol):
    """Another node's witness state (one gRPC client, or a test double)."""

    def witnessed(self, size: int) -> tuple[str, str]: ...  # (latest note, note at `size`)


class PeerNode:
    """A mutual-TLS client of another organisation's node, for ``GetWitnessed``: only that
    organisation's listed certificates pass the handshake."""

    def __init__(self, org: Organisation, tls: TlsFiles, pins: Pins, timeout: float = 5.0) -> None:
        assert org.node_address
        self.org = org
        self.tls = tls
        self.timeout = timeout
        self.allowed = pins.allowed(Identity(Role.ORGANISATION, org.id))
        certificates = pins.certificates(Identity(Role.ORGANISATION, org.id))
        self._channel = channel(org.node_address, tls, org.server_name, certificates)
        self._stub = pb_grpc.NodeStub(self._channel)

    def witnessed(self, size: int) -> tuple[str, str]:
        try:
            response = self._stub.GetWitnessed(pb.WitnessedRequest(size=size), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(
                exc,
                f"node of {self.org.id}",
                self.org.node_address or "",
                expected=organisation_uri(self.org.id),
                tls=self.tls,
                allowed=self.allowed,
            ) from None
        return str(response.checkpoint), str(response.at_size)

    def close(self) -> None:
        self._channel.close()


@dataclass(frozen=True)
class PeerResult:
    peer: str
    own_size: int
    peer_size: int
    outcome: str  # consistent, fork, or why it could not be compared

    def describe(self) -> str:
        return (
            f"compared with {self.peer}: {self.outcome} (here {self.own_size} records, "
            f"there {self.peer_size})"
        )


def choose_peers(network: Network, own: str, count: int = PEERS_PER_CHECK) -> list[Organisation]:
    """One or two other nodes, chosen at random each time (the coordinator cannot tell whom)."""
    others = [o for o in network.nodes() if o.id != own]
    return random.SystemRandom().sample(others, min(count, len(others)))


def compare_with_peer(
    store: WitnessStore,
    peer: str,
    source: PeerSource,
    log_source: LogSource,
    verifier: str,
    origin: str,
) -> PeerResult:
    """Compare this node's latest witnessed checkpoint with what ``peer`` witnessed.

    The same size with another root, or two sizes the coordinator cannot prove consistent, is
    an alarm (``peer-fork``) naming both signed checkpoints: the coordinator showed the two
    nodes different histories. The outcome is kept for ``node status``.
    """
    own = store.last()
    own_size = own.size if own is not None else 0
    try:
        latest, at_size = source.witnessed(own_size)
    except BetrokkenError as exc:
        return _kept(store, PeerResult(peer, own_size, 0, f"not compared: {exc.message[:200]}"))
    if own is None or not latest:
        return _kept(store, PeerResult(peer, own_size, 0, "not compared: nothing witnessed yet"))
    try:
        theirs = open_checkpoint(latest, verifier, origin)
        same = open_checkpoint(at_size, verifier, origin) if at_size else None
    except (VerificationError, MalformedMessage) as exc:
        log.warning("node %s sent a checkpoint the coordinator did not sign: %s", peer, exc)
        return _kept(
            store,
            PeerResult(peer, own_size, 0, "not compared: its checkpoint is not the coordinator's"),
        )
    if same is not None and same.size == own.size and same.root != own.root:
        return _fork(store, peer, own.note, at_size, own_size, theirs.size)
    if theirs.size == own.size:
        if theirs.root != own.root:
            return _fork(store, peer, own.note, latest, own_size, theirs.size)
        return _kept(store, PeerResult(peer, own_size, theirs.size, "consistent"))
    if same is not None and same.size == own.size:
        return _kept(store, PeerResult(peer, own_size, theirs.size, "consistent"))
    small, large = sorted(((own.size, own.root), (theirs.size, theirs.root)))
    try:
        proof = log_source.consistency(small[0], large[0])
    except BetrokkenError as exc:
        return _kept(
            store,
            PeerResult(
                peer,
                own_size,
                theirs.size,
                f"not compared: the coordinator gave no consistency proof ({exc.message[:160]})",
            ),
        )
    if not merkle.verify_consistency(small[0], large[0], small[1], large[1], proof):
        return _fork(store, peer, own.note, latest, own_size, theirs.size)
    return _kept(store, PeerResult(peer, own_size, theirs.size, "consistent"))


def _kept(store: WitnessStore, result: PeerResult) -> PeerResult:
    store.compared(result.peer, result.own_size, result.peer_size, result.outcome)
    return result


def _fork(
    store: WitnessStore, peer: str, own_note: str, their_note: str, own_size: int, size: int
) -> PeerResult:
    store.alarm(
        "peer-fork",
        f"the coordinator's log as witnessed here ({own_size} records) and as the node of "
        f"{peer} witnessed it ({size} records) are not one history: the coordinator showed the "
        "two nodes different logs (a split view); both signed checkpoints are the evidence",
        peer=peer,
        evidence=f"{own_note}\n{their_note}"[:4000],
    )
    return _kept(store, PeerResult(peer, own_size, size, "fork"))


def compare_with_peers(
    store: WitnessStore,
    network: Network,
    own: str,
    tls: TlsFiles,
    log_source: LogSource,
    verifier: str,
    origin: str,
    pins: Pins | None = None,
    peers: Sequence[Organisation] | None = None,
) -> list[PeerResult]:
    """One witness interval's comparisons (with ``peers``, or one or two chosen at random)."""
    results = []
    for org in peers if peers is not None else choose_peers(network, own):
        client = PeerNode(org, tls, pins or NetworkPins(network))
        try:
            results.append(compare_with_peer(store, org.id, client, log_source, verifier, origin))
        finally:
            client.close()
    return results
