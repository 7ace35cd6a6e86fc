"""The regisseur's side of a query: pseudonymise locally, ask the coordinator, read the answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from betrokken.answer import Answer
from betrokken.config.schema import Network, TlsFiles
from betrokken.crypto.bsn import Bsn
from betrokken.errors import MalformedMessage
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
class QueryResult:
    answer_id: str
    purpose: str
    legal_basis: str
    requester: str
    answered_at: str
    persons: list[PersonResult]
    complete: bool


class QueryClient:
    def __init__(self, network: Network, tls: TlsFiles, timeout: float = 30.0) -> None:
        self.network = network
        self.tls = tls
        self.timeout = timeout
        self._channel = channel(network.coordinator.address, tls)
        self._stub = pb_grpc.CoordinatorStub(self._channel)

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
        with Pseudonymiser(self.network, self.tls) as pseudonymiser:
            pseudonyms = pseudonymiser.pseudonymise([p.bsn for p in persons])
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
        )
