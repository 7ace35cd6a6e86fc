"""Converting between the wire contract's messages and the audit module's plain data.

One place for each conversion, used by the coordinator (which sends log proofs), the node and the
requester (which check them).
"""

from __future__ import annotations

from betrokken.audit.proofs import LogProof
from betrokken.v1 import betrokken_pb2 as pb


def log_proof_from_wire(proof: pb.LogProof) -> LogProof:
    return LogProof(
        record=proof.record,
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        checkpoint=proof.checkpoint,
        inclusion_proof=tuple(proof.inclusion_proof),
        consistency_size=proof.consistency_size,
        consistency_proof=tuple(proof.consistency_proof),
    )


def log_proof_to_wire(proof: LogProof) -> pb.LogProof:
    return pb.LogProof(
        record=proof.record,
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        checkpoint=proof.checkpoint,
        inclusion_proof=list(proof.inclusion_proof),
        consistency_size=proof.consistency_size,
        consistency_proof=list(proof.consistency_proof),
    )
