"""The regisseur's side of a query: pseudonymise locally, ask the coordinator, read the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from betrokken.answer import Answer
from betrokken.audit.keys import log_origin
from betrokken.audit.log import entry_from_leaf
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import Network, TlsFiles
from betrokken.crypto import merkle
from betrokken.crypto.bsn import Bsn
from betrokken.crypto.note import open_checkpoint
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import MalformedMessage, VerificationError
from betrokken.identity.rpc import channel, error_from_rpc
from betrokken.keyservice.client import Pseudonymiser
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


@dataclass(frozen=True)
class Person:
    """One person to ask about, as the regisseur typed or listed them."""

    bsn: Bsn
    case: str


@dataclass(frozen=True)
class OrganisationResult:
    organisation_id: str  # empty when only a domain is disclosed
    answer: Answer


@dataclass(frozen=True)
class PersonResult:
    masked_bsn: str
    fingerprint: str
    case: str
    answers: list[OrganisationResult]
    complete: bool


@dataclass(frozen=True)
class VerifiedReceipt:
    """Proof, checked here, that the question was in the signed log before it was answered."""

    leaf_index: int
    tree_size: int
    root: bytes
    checkpoint: str


@dataclass(frozen=True)
class QueryResult:
    answer_id: str
    purpose: str
    legal_basis: str
    requester: str
    answered_at: str
    persons: list[PersonResult]
    complete: bool
    receipt: VerifiedReceipt


def verify_receipt(
    network: Network, receipt: pb.Receipt, answer_id: str, pseudonyms: Sequence[Pseudonym]
) -> VerifiedReceipt:
    """Check the signature, the inclusion proof, and that the record is this question's."""
    origin = log_origin(network.name, "coordinator")
    try:
        checkpoint = open_checkpoint(receipt.checkpoint, network.coordinator.log_key, origin)
    except MalformedMessage as exc:
        raise VerificationError(f"the receipt's checkpoint is malformed: {exc.message}") from None
    leaf = merkle.leaf_hash(receipt.record)
    if checkpoint.size != receipt.tree_size or not merkle.verify_inclusion(
        leaf, receipt.leaf_index, receipt.tree_size, list(receipt.inclusion_proof), checkpoint.root
    ):
        raise VerificationError(
            "the coordinator's receipt does not prove the question was recorded",
            hint="keep the answer id and tell the network's DPO",
        )
    try:
        index, entry = entry_from_leaf(receipt.record)
    except MalformedMessage as exc:
        raise VerificationError(f"the receipt's record is unreadable: {exc.message}") from None
    expected = {p.value.hex() for p in pseudonyms}
    if (
        index != receipt.leaf_index
        or entry.event is not Event.SEARCH
        or entry.answer_id != answer_id
        or {s.pseudonym for s in entry.subjects} != expected
    ):
        raise VerificationError("the receipt's record is not the record of this question")
    return VerifiedReceipt(
        receipt.leaf_index, receipt.tree_size, checkpoint.root, receipt.checkpoint
    )


class QueryClient:
    def __init__(self, network: Network, tls: TlsFiles, timeout: float = 30.0) -> None:
        self.network = network
        self.tls = tls
        self.timeout = timeout
        self._channel = channel(network.coordinator.address, tls)
        self._stub = pb_grpc.CoordinatorStub(self._channel)
        self.last_pseudonyms: list[Pseudonym] = []

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> QueryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def ask(
        self,
        persons: Sequence[Person],
        *,
        purpose: str,
        user: str,
        acted_for: str = "",
        role: str = "",
    ) -> QueryResult:
        self.last_pseudonyms = []
        with Pseudonymiser(self.network, self.tls) as pseudonymiser:
            pseudonyms = pseudonymiser.pseudonymise([p.bsn for p in persons])
        self.last_pseudonyms = pseudonyms
        request = pb.QueryRequest(
            context=pb.QueryContext(purpose=purpose, user=user, acted_for=acted_for, role=role),
            items=[
                pb.QueryItem(
                    pseudonym=pb.Pseudonym(value=ps.value, key_id=ps.key_id),
                    case_reference=person.case,
                )
                for ps, person in zip(pseudonyms, persons, strict=True)
            ],
        )
        try:
            response = self._stub.Query(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, "coordinator", self.network.coordinator.address) from None
        if len(response.items) != len(persons):
            raise MalformedMessage(
                f"the coordinator answered {len(response.items)} persons for {len(persons)} asked"
            )
        receipt = verify_receipt(self.network, response.receipt, response.answer_id, pseudonyms)
        results = []
        for person, pseudonym, item in zip(persons, pseudonyms, response.items, strict=True):
            if item.fingerprint != pseudonym.fingerprint:
                raise MalformedMessage("the coordinator's answer is for another person")
            results.append(
                PersonResult(
                    masked_bsn=person.bsn.masked(),
                    fingerprint=item.fingerprint,
                    case=item.case_reference,
                    answers=[
                        OrganisationResult(a.organisation_id, Answer.from_wire(a.disclosure))
                        for a in item.answers
                    ],
                    complete=item.complete,
                )
            )
        return QueryResult(
            answer_id=response.answer_id,
            purpose=response.purpose,
            legal_basis=response.legal_basis,
            requester=response.requester_organisation,
            answered_at=response.answered_at,
            persons=results,
            complete=response.complete,
            receipt=receipt,
        )


def own_query_entry(
    client: QueryClient,
    organisation: str,
    user: str,
    acted_for: str,
    role: str,
    purpose: str,
    persons: Sequence[Person],
    *,
    result: QueryResult | None = None,
    error: Exception | None = None,
) -> AuditEntry:
    """The record of a question this organisation's user sent, for the organisation's own trail."""
    subjects = tuple(
        Subject(p.value.hex(), p.key_id, p.fingerprint, person.case)
        for p, person in zip(client.last_pseudonyms, persons, strict=False)
    )
    details = {"persons": str(len(persons)), "cases": ",".join(p.case for p in persons)[:500]}
    if result is not None:
        details.update(
            receipt_index=str(result.receipt.leaf_index),
            receipt_tree_size=str(result.receipt.tree_size),
            receipt_root=result.receipt.root.hex(),
        )
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=dt.datetime.now(dt.UTC),
        answer_id=result.answer_id if result else "",
        organisation=organisation,
        user=user,
        acted_for=acted_for,
        role=role,
        purpose=purpose,
        legal_basis=result.legal_basis if result else "",
        subjects=subjects,
        completeness=("complete" if result.complete else "partial") if result else "",
        reason=type(error).__name__ if error else "answered",
        details=details,
    )
