"""The node's gRPC servicer: answers the coordinator's lookups, policy first."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import grpc

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import Network, Organisation
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import MalformedMessage, PurposeNotAllowed, UnknownPurpose
from betrokken.identity.names import Role
from betrokken.identity.rpc import peer_identity, servicer_method
from betrokken.node import policy
from betrokken.node.store import DisclosureRecord, NodeStore, utcnow
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.node")
MAX_FIELD = 128


def _text(value: str, what: str, required: bool = True) -> str:
    if required and not value:
        raise MalformedMessage(f"{what} is missing")
    if len(value) > MAX_FIELD:
        raise MalformedMessage(f"{what} is longer than {MAX_FIELD} characters")
    return value


def _trace_id(context: grpc.ServicerContext) -> str:
    """The W3C trace id from the coordinator's ``traceparent`` header ('' when absent/invalid)."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent" and isinstance(value, str):
            parts = value.split("-")
            if (
                len(parts) == 4
                and len(parts[1]) == 32
                and all(c in "0123456789abcdef" for c in parts[1])
            ):
                return parts[1]
    return ""


class NodeServicer(pb_grpc.NodeServicer):
    def __init__(
        self,
        network: Network,
        organisation: Organisation,
        store: NodeStore,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self.network = network
        self.org = organisation
        self.store = store
        self.today = today

    @servicer_method
    def Lookup(self, request: pb.LookupRequest, context: grpc.ServicerContext) -> pb.LookupResponse:
        peer_identity(context, "Node.Lookup", [Role.COORDINATOR])
        requester = _text(request.requester_organisation, "requester_organisation")
        ctx = request.context
        purpose_id = _text(ctx.purpose, "purpose")
        _text(ctx.user, "user")
        _text(ctx.acted_for, "acted_for", required=False)
        _text(ctx.role, "role", required=False)
        answer_id = _text(request.answer_id, "answer_id")
        if not request.items or len(request.items) > self.network.coordinator.max_batch:
            raise MalformedMessage(
                f"a lookup holds 1 to {self.network.coordinator.max_batch} items, "
                f"this one {len(request.items)}"
            )
        items = []
        for index, item in enumerate(request.items):
            try:
                pseudonym = Pseudonym(item.pseudonym.value, item.pseudonym.key_id)
            except MalformedMessage as exc:
                raise MalformedMessage(f"item {index}: {exc.message}") from None
            pseudonym.require_key(self.network.keyservice.key_id)
            items.append((pseudonym, _text(item.case_reference, f"item {index} case_reference")))

        # Defence in depth: the node checks the purpose rules itself too.
        if self.network.purpose(purpose_id) is None:
            raise UnknownPurpose(f"purpose '{purpose_id}' is not defined in the network file")
        if not policy.may_ask(self.network, requester, purpose_id, ctx.role):
            raise PurposeNotAllowed(
                f"organisation '{requester}' may not ask for purpose '{purpose_id}'"
            )

        # The decision is taken before any lookup (P7).
        level = self.network.disclosure_level(self.org.id, purpose_id)
        if not policy.needs_lookup(level):
            same = policy.answer_without_lookup(level, self.org).to_wire()
            return pb.LookupResponse(results=[same] * len(items))

        hits = self.store.find([p for p, _ in items], self.today())
        trace = _trace_id(context)
        results = []
        records = []
        trail = []
        purpose = self.network.purpose(purpose_id)
        legal_basis = purpose.legal_basis if purpose else ""
        for pseudonym, case_reference in items:
            hit = hits.get(pseudonym.value)
            answer = policy.answer_for(level, self.org, hit, self.network.desk_contact)
            results.append(answer.to_wire())
            if hit is not None:
                level_used = policy.effective_level(level, hit)
                trail.append(
                    AuditEntry(
                        event=Event.DISCLOSURE,
                        at=utcnow(),
                        answer_id=answer_id,
                        organisation=requester,
                        user=ctx.user,
                        acted_for=ctx.acted_for,
                        role=ctx.role,
                        access_point=context.peer(),
                        purpose=purpose_id,
                        legal_basis=legal_basis,
                        subjects=(
                            Subject(
                                pseudonym.value.hex(),
                                pseudonym.key_id,
                                pseudonym.fingerprint,
                                case_reference,
                            ),
                        ),
                        reason=f"disclosed: {level_used.value}",
                        details={
                            "registration_reference": hit.reference or "",
                            "trace_id": trace,
                        },
                    )
                )
                records.append(
                    DisclosureRecord(
                        answer_id=answer_id,
                        requester_organisation=requester,
                        user=ctx.user,
                        acted_for=ctx.acted_for,
                        role=ctx.role,
                        purpose=purpose_id,
                        case_reference=case_reference,
                        level=policy.effective_level(level, hit),
                        registration_id=hit.registration_id,
                        registration_reference=hit.reference,
                    )
                )
        # Nothing is disclosed without this node's own record of it; misses leave no trace (P3).
        self.store.record_disclosures(records, trail)
        if records:
            log.info(
                "disclosed answer_id=%s trace_id=%s requester=%s purpose=%s hits=%d",
                answer_id,
                trace,
                requester,
                purpose_id,
                len(records),
            )
        return pb.LookupResponse(results=results)
