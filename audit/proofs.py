"""Checking what the coordinator shows: a log proof against the witnessed checkpoint, and the
checkpoint's cosignatures (light to import: no database; :mod:`betrokken.audit.witness` keeps the
witness state and re-exports these).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from betrokken.audit.leaves import entry_from_leaf
from betrokken.audit.record import AuditEntry
from betrokken.crypto import merkle
from betrokken.crypto.cosignature import Cosigner, VerifiedCheckpoints
from betrokken.crypto.note import Checkpoint, VerifiedSignatures, open_checkpoint
from betrokken.errors import MalformedMessage, QuestionRefused, VerificationError, WitnessStale

if TYPE_CHECKING:  # pydantic only where a file is validated (docs/adr/0045)
    from betrokken.config.schema import Network


@dataclass(frozen=True)
class Accepted:
    size: int
    root: bytes
    note: str
    accepted_at: dt.datetime | None = None
    answer_ids: tuple[str, ...] = ()  # for a seen checkpoint: the questions it came with


# A cosignature whose time lies further ahead than this is not counted (clocks drift a little).
COSIGNATURE_FUTURE_SECONDS = 300
# The checkpoints this process verified the cosignatures of, by their exact notes: the questions
# a cosigning round serves are checked once, not once each (docs/adr/0043).
VERIFIED = VerifiedCheckpoints()


def witness_cosigners(network: Network) -> dict[str, Cosigner]:
    """Every witness's cosigner key: its organisation's trail key (``log_key``)."""
    cosigners = {}
    for org_id in network.witness_ids():
        org = network.organisation(org_id)
        if org is not None and org.log_key:
            cosigners[org_id] = Cosigner.from_verifier(org.log_key)
    return cosigners


def check_cosigned(
    note: str,
    size: int,
    cosigners: dict[str, Cosigner],
    quorum: int,
    own: str | None,
    now: float | None = None,
) -> list[str]:
    """The witnesses other than ``own`` whose valid cosignatures ``note`` carries, when there are
    at least ``quorum`` of them; otherwise :class:`QuestionRefused` (kind ``no-quorum``)."""
    others = {w: c for w, c in cosigners.items() if w != own}
    try:
        found = VERIFIED.verify(
            note,
            others,
            not_after=int(time.time() if now is None else now) + COSIGNATURE_FUTURE_SECONDS,
            enough=max(quorum, 1),
        )
    except MalformedMessage as exc:
        raise QuestionRefused(
            f"the checkpoint's signature lines are malformed: {exc.message}", kind="no-quorum"
        ) from None
    if len(found) < quorum:
        missing = sorted(set(others) - set(found))
        raise QuestionRefused(
            f"the log of {size} records carries {len(found)} valid cosignature(s) of other "
            f"witnesses ({', '.join(sorted(found)) or 'none'}); {quorum} are needed before it is "
            f"trusted (not cosigned by: {', '.join(missing) or 'none'}): the other witnesses may "
            "not have seen this history",
            kind="no-quorum",
        )
    return sorted(found)


@dataclass(frozen=True)
class LogProof:
    """A record of the coordinator's log with what proves it is in the witnessed log."""

    record: bytes
    leaf_index: int
    tree_size: int
    checkpoint: str
    inclusion_proof: Sequence[bytes] = field(default_factory=tuple)
    consistency_size: int = 0
    consistency_proof: Sequence[bytes] = field(default_factory=tuple)


@dataclass(frozen=True)
class Proven:
    """What a verified LogProof establishes."""

    index: int
    entry: AuditEntry
    checkpoint: Checkpoint
    first_seen: bool  # nothing was witnessed before: accepted on first use


def check_log_proof(
    proof: LogProof,
    verifier: str,
    origin: str,
    witnessed: Accepted | None,
    known: Accepted | None = None,
    verified: VerifiedSignatures | None = None,
) -> Proven:
    """Check signature, inclusion, and consistency with ``witnessed``; say which check failed.

    ``known`` is the checkpoint of the proof's size this organisation accepted, if any (it
    cosigned it, say): the same root needs no consistency proof, since everything accepted was
    checked against everything accepted before. Raises :class:`QuestionRefused` (with ``kind``
    forged, unlogged or fork) when the proof does not hold, and :class:`WitnessStale` when the
    consistency proof relates to another size than the one witnessed (the sender should try
    again with the right one; not an alarm). With ``verified``, the log's signature is not
    verified again when this process found that very signature valid over that very checkpoint
    before (a node that cosigned it: :class:`VerifiedSignatures`).
    """
    try:
        checkpoint = open_checkpoint(proof.checkpoint, verifier, origin, verified)
    except (VerificationError, MalformedMessage) as exc:
        raise QuestionRefused(
            f"the checkpoint is not signed by the coordinator's log key: {exc.message}",
            kind="forged-checkpoint",
        ) from None
    leaf = merkle.leaf_hash(proof.record)
    if checkpoint.size != proof.tree_size or not merkle.verify_inclusion(
        leaf, proof.leaf_index, proof.tree_size, list(proof.inclusion_proof), checkpoint.root
    ):
        raise QuestionRefused(
            "the question's record is not in the coordinator's signed log", kind="unlogged"
        )
    try:
        index, entry = entry_from_leaf(proof.record)
    except MalformedMessage as exc:
        raise QuestionRefused(f"the record is unreadable: {exc.message}", kind="unlogged") from None
    if index != proof.leaf_index:
        raise QuestionRefused("the record names another position in the log", kind="unlogged")
    if witnessed is None:
        return Proven(index, entry, checkpoint, first_seen=True)
    if known is not None and known.size == checkpoint.size:
        if known.root != checkpoint.root:
            raise QuestionRefused(
                f"the coordinator signed two different logs of {checkpoint.size} records (a fork)",
                kind="fork",
            )
        return Proven(index, entry, checkpoint, first_seen=False)
    if proof.consistency_size != witnessed.size:
        raise WitnessStale(
            f"the consistency proof is from {proof.consistency_size} records; "
            f"{witnessed.size} were witnessed here",
            witnessed_size=witnessed.size,
        )
    old, new = sorted((witnessed.size, checkpoint.size))
    old_root, new_root = (
        (witnessed.root, checkpoint.root)
        if witnessed.size <= checkpoint.size
        else (checkpoint.root, witnessed.root)
    )
    if not merkle.verify_consistency(old, new, old_root, new_root, list(proof.consistency_proof)):
        raise QuestionRefused(
            f"the coordinator's log of {checkpoint.size} records is not consistent with the "
            f"{witnessed.size} records witnessed here: history was rewritten (fork)",
            kind="fork",
        )
    return Proven(index, entry, checkpoint, first_seen=False)
