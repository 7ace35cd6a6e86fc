"""The coordinator's gRPC servicer: policy check, audit record, fan-out, aggregation."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from betrokken.answer import Answer, Outcome
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import DisclosureLevel, Network, Purpose
from betrokken.coordinator.fanout import NodeLink, fan_out
from betrokken.coordinator.ratelimit import RateLimiter
from betrokken.coordinator.store import AuditStore
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import (
    BadInput,
    BetrokkenError,
    PurposeNotAllowed,
    UnknownPurpose,
)
from betrokken.identity.rpc import organisation_peer, servicer_method
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.coordinator")
MAX_FIELD = 128


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CoordinatorServicer(pb_grpc.CoordinatorServicer):
    def __init__(self, network: Network, store: AuditStore, links: Mapping[str, NodeLink]) -> None:
        self.network = network
        self.store = store
        self.links = dict(links)
        self.pool = ThreadPoolExecutor(max_workers=max(4, 2 * len(self.links)))
        self.limiter = RateLimiter(network.coordinator.rate_limit_per_minute)

    @servicer_method
    def Query(self, request: pb.QueryRequest, context: grpc.ServicerContext) -> pb.QueryResponse:
        answer_id = str(uuid.uuid4())
        ctx = request.context
        base: dict[str, Any] = {
            "answer_id": answer_id,
            "user": ctx.user[:MAX_FIELD],
            "acted_for": ctx.acted_for[:MAX_FIELD],
            "role": ctx.role[:MAX_FIELD],
            "purpose": ctx.purpose[:MAX_FIELD],
            "access_point": context.peer(),
        }
        # Only an organisation's certificate starts a query (P7, P8); identity is never a field.
        try:
            peer = organisation_peer(context, "Coordinator.Query", self.network)
        except BetrokkenError as exc:
            self._refusal(base, "", exc, len(request.items))
            raise
        requester = peer.organisation_id or ""
        try:
            self.limiter.check(requester)
            purpose, items = self._check(requester, request)
        except BetrokkenError as exc:
            self._refusal(base, requester, exc, len(request.items))
            log.info("refused answer_id=%s requester=%s reason=%s", answer_id, requester, exc)
            raise

        asked = [org for org in self.links if org != requester]
        # Recorded durably, under a signed checkpoint, before anything is asked (P6).
        search_index = self.store.append(
            AuditEntry(
                event=Event.SEARCH,
                at=_utcnow(),
                organisation=requester,
                legal_basis=purpose.legal_basis,
                subjects=tuple(_subject(p, case) for p, case in items),
                details={"asked": ",".join(asked), "persons": str(len(items))},
                **base,
            )
        )
        receipt = self.store.receipt(search_index)
        lookup = pb.LookupRequest(
            requester_organisation=requester,
            context=pb.QueryContext(
                purpose=purpose.id, user=ctx.user, acted_for=ctx.acted_for, role=ctx.role
            ),
            items=[
                pb.LookupItem(
                    pseudonym=pb.Pseudonym(value=p.value, key_id=p.key_id), case_reference=case
                )
                for p, case in items
            ],
            answer_id=answer_id,
        )
        links = {org: self.links[org] for org in asked}
        results = fan_out(links, lookup, self.network.coordinator.deadline_seconds, self.pool)
        response = self._aggregate(answer_id, requester, purpose, items, asked, results)
        self.store.append(
            AuditEntry(
                event=Event.OUTCOME,
                at=_utcnow(),
                organisation=requester,
                legal_basis=purpose.legal_basis,
                subjects=tuple(_subject(p, case) for p, case in items),
                outcomes={
                    p.fingerprint: {org: results[org][i].outcome.value for org in asked}
                    for i, (p, _case) in enumerate(items)
                },
                completeness="complete" if response.complete else "partial",
                **base,
            )
        )
        response.receipt.CopyFrom(
            pb.Receipt(
                leaf_index=receipt.leaf_index,
                tree_size=receipt.tree_size,
                checkpoint=receipt.checkpoint,
                inclusion_proof=receipt.inclusion_proof,
                record=receipt.record,
            )
        )
        return response

    def _refusal(
        self, base: dict[str, Any], requester: str, exc: BetrokkenError, persons: int
    ) -> None:
        self.store.append(
            AuditEntry(
                event=Event.REFUSAL,
                at=_utcnow(),
                organisation=requester,
                reason=type(exc).__name__,
                details={"message": exc.message[:500], "persons": str(persons)},
                **base,
            )
        )

    # --- the log, for witnesses and receipts ----------------------------------------------------
    @servicer_method
    def GetCheckpoint(
        self, request: pb.CheckpointRequest, context: grpc.ServicerContext
    ) -> pb.CheckpointResponse:
        organisation_peer(context, "Coordinator.GetCheckpoint", self.network)
        latest = self.store.log.latest_checkpoint()
        return pb.CheckpointResponse(checkpoint=latest.note if latest else "")

    @servicer_method
    def GetConsistencyProof(
        self, request: pb.ConsistencyRequest, context: grpc.ServicerContext
    ) -> pb.ProofResponse:
        organisation_peer(context, "Coordinator.GetConsistencyProof", self.network)
        hashes = self.store.log.consistency_proof(request.old_size, request.new_size)
        return pb.ProofResponse(hashes=hashes)

    @servicer_method
    def GetInclusionProof(
        self, request: pb.InclusionRequest, context: grpc.ServicerContext
    ) -> pb.ProofResponse:
        organisation_peer(context, "Coordinator.GetInclusionProof", self.network)
        hashes = self.store.log.inclusion_proof(request.leaf_index, request.tree_size)
        return pb.ProofResponse(hashes=hashes)

    # --- checks --------------------------------------------------------------------------------
    def _check(
        self, requester: str, request: pb.QueryRequest
    ) -> tuple[Purpose, list[tuple[Pseudonym, str]]]:
        ctx = request.context
        purpose = self.network.purpose(ctx.purpose)
        if purpose is None:
            raise UnknownPurpose(
                f"purpose '{ctx.purpose[:MAX_FIELD]}' is not defined in network "
                f"'{self.network.name}'",
                hint="known purposes: " + ", ".join(p.id for p in self.network.purposes),
            )
        if requester not in purpose.allowed_organisations:
            raise PurposeNotAllowed(
                f"organisation '{requester}' may not ask for purpose '{purpose.id}' "
                f"({purpose.description})",
                hint="choose a purpose your organisation is allowed in the network file, or ask "
                "the network's administrators to allow it under the covenant",
            )
        if purpose.allowed_roles and ctx.role not in purpose.allowed_roles:
            raise PurposeNotAllowed(
                f"role '{ctx.role[:MAX_FIELD]}' may not ask for purpose '{purpose.id}'",
                hint="allowed roles: " + ", ".join(purpose.allowed_roles),
            )
        if not ctx.user or len(ctx.user) > MAX_FIELD:
            raise BadInput("the asking user is missing or too long", hint="pass --user")
        if len(ctx.acted_for) > MAX_FIELD or len(ctx.role) > MAX_FIELD:
            raise BadInput(f"acted_for and role are at most {MAX_FIELD} characters")
        limit = self.network.coordinator.max_batch
        if not request.items or len(request.items) > limit:
            raise BadInput(
                f"a query holds 1 to {limit} persons, this one {len(request.items)}",
                hint="split the list into batches",
            )
        items = []
        for index, item in enumerate(request.items):
            case = item.case_reference
            if not case.strip() or len(case) > MAX_FIELD:
                raise BadInput(
                    f"person {index + 1}: a case reference (1 to {MAX_FIELD} characters) is "
                    "required",
                    hint="every question is asked for a named case; pass --case",
                )
            pseudonym = Pseudonym(item.pseudonym.value, item.pseudonym.key_id)
            pseudonym.require_key(self.network.keyservice.key_id)
            items.append((pseudonym, case))
        return purpose, items

    # --- aggregation ---------------------------------------------------------------------------
    def _aggregate(
        self,
        answer_id: str,
        requester: str,
        purpose: Purpose,
        items: list[tuple[Pseudonym, str]],
        asked: list[str],
        results: dict[str, list[Answer]],
    ) -> pb.QueryResponse:
        item_answers = []
        for index, (pseudonym, case) in enumerate(items):
            named: list[pb.OrganisationAnswer] = []
            anonymous: list[tuple[tuple[str, str], pb.OrganisationAnswer]] = []
            for org_id in asked:
                answer = results[org_id][index]
                if self.network.disclosure_level(org_id, purpose.id) is DisclosureLevel.DOMAIN:
                    # Only the domain may be shown, whatever the outcome: never the name.
                    org = self.network.organisation(org_id)
                    hidden = _anonymous(answer, org.domain if org else "")
                    anonymous.append(
                        ((hidden.domain, hidden.outcome.value), _org_answer("", hidden))
                    )
                else:
                    named.append(_org_answer(org_id, answer))
            anonymous.sort(key=lambda pair: pair[0])
            answers = named + [answer for _, answer in anonymous]
            complete = all(results[org][index].outcome.answered for org in asked)
            item_answers.append(
                pb.ItemAnswer(
                    fingerprint=pseudonym.fingerprint,
                    case_reference=case,
                    answers=answers,
                    complete=complete,
                )
            )
        return pb.QueryResponse(
            answer_id=answer_id,
            purpose=purpose.id,
            legal_basis=purpose.legal_basis,
            requester_organisation=requester,
            items=item_answers,
            complete=all(item.complete for item in item_answers),
            answered_at=_utcnow().isoformat(timespec="seconds"),
        )


def _subject(pseudonym: Pseudonym, case: str) -> Subject:
    return Subject(pseudonym.value.hex(), pseudonym.key_id, pseudonym.fingerprint, case)


def _anonymous(answer: Answer, domain: str) -> Answer:
    return Answer(
        answer.outcome,
        domain=domain,
        contact=answer.contact if answer.outcome is Outcome.INVOLVED_DOMAIN_ONLY else "",
        message=answer.message if not answer.outcome.answered else "",
    )


def _org_answer(org_id: str, answer: Answer) -> pb.OrganisationAnswer:
    return pb.OrganisationAnswer(organisation_id=org_id, disclosure=answer.to_wire())
