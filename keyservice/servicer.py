"""The key service's gRPC servicer: batched VOPRF evaluation under organisations' keys.

It evaluates only what the caller may use (docs/adr/0024, section 8):

* ``QUESTION``: only for a caller, role and aanmelder that may ask the named purpose
  (:func:`betrokken.rules.check_may_ask`, the same rule the coordinator and the nodes apply), and
  only under the keys of the nodes that purpose asks plus the caller's own
  (:func:`betrokken.rules.question_keys`); the daily question quota counts persons per key;
* ``IMPORT``: the caller's own key only, under its bulk quota;
* ``ACCESS_REQUEST``: every organisation's key, for the caller's DPO answering a citizen, under a
  small daily quota of its own; every use is a record in the key service's log.

Refusals (a purpose the caller may not ask, a key the purpose does not need, a quota used up) are
records in the key service's log too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import grpc

from betrokken import rules
from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import Network
from betrokken.crypto import oprf
from betrokken.errors import (
    BetrokkenError,
    MalformedMessage,
    PolicyRefusal,
    PurposeNotAllowed,
    QuotaExceeded,
    WrongRole,
    escape_text,
    shown,
)
from betrokken.identity.pins import NetworkPins, Pins
from betrokken.identity.rpc import organisation_peer, servicer_method
from betrokken.keyservice.keys import KeyRing
from betrokken.keyservice.store import QuotaStore
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.keyservice")
USES = {pb.QUESTION: "question", pb.IMPORT: "import", pb.ACCESS_REQUEST: "access-request"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class KeyServiceServicer(pb_grpc.KeyServiceServicer):
    def __init__(
        self,
        network: Network,
        ring: KeyRing,
        store: QuotaStore,
        today: Callable[[], dt.date] = lambda: utcnow().date(),
        audit: AuditLog | None = None,
        pins: Pins | None = None,
    ) -> None:
        self.network = network
        self.ring = ring
        self.store = store
        self.today = today
        self.audit = audit  # quota refusals are records in the key service's own log
        self.pins: Pins = pins or NetworkPins(network)  # the certificate allow-list

    def _named(self, request: pb.EvaluateRequest) -> list[str]:
        """The organisations named, if the request is well formed (MalformedMessage)."""
        wanted = list(request.organisations)
        if not wanted:
            raise MalformedMessage("name at least one organisation whose key to evaluate under")
        if len(set(wanted)) != len(wanted):
            raise MalformedMessage("an organisation is named twice")
        unknown = [org[:64] for org in wanted if self.network.organisation(org) is None]
        if unknown:
            raise MalformedMessage(
                "no such organisation in the network: " + ", ".join(unknown),
                hint="update the network file to the current one",
            )
        settings = self.network.keyservice
        count = len(request.blinded_elements)
        if count == 0 or count > settings.max_batch:
            raise MalformedMessage(
                f"a batch holds 1 to {settings.max_batch} blinded elements, this one {count}"
            )
        for index, element in enumerate(request.blinded_elements):
            oprf.validate_element(element, f"blinded element {index}")
        return wanted

    def _allowed(
        self, caller: str, use: str, request: pb.EvaluateRequest, wanted: list[str]
    ) -> None:
        """Refuse what the caller may not have evaluated (PolicyRefusal, WrongRole)."""
        if use == "import" and wanted != [caller]:
            raise WrongRole(
                "an import may only pseudonymise under the importing organisation's own key",
                hint="questions to other organisations use the question quota",
            )
        if use == "question":
            purpose = rules.check_may_ask(
                self.network,
                caller,
                request.purpose,
                request.role,
                request.on_behalf_of or caller,
            )
            allowed = rules.question_keys(self.network, purpose.id, caller)
            outside = [org for org in wanted if org not in allowed]
            if outside:
                raise PurposeNotAllowed(
                    f"a question for purpose '{purpose.id}' does not need the key of "
                    + ", ".join(outside),
                    hint="a question is evaluated only under the keys of the nodes its purpose "
                    "asks and the asking organisation's own: " + ", ".join(allowed),
                )

    def _limit(self, caller: str, use: str) -> int:
        if use == "import":
            return self.network.daily_bulk_quota(caller)
        if use == "access-request":
            return self.network.daily_access_quota(caller)
        return self.network.daily_quota(caller)

    def _record(self, entry: AuditEntry) -> None:
        if self.audit is not None:
            self.audit.append([entry])

    def _refusal(
        self,
        caller: str,
        use: str,
        request: pb.EvaluateRequest,
        context: grpc.ServicerContext,
        exc: BetrokkenError,
    ) -> AuditEntry:
        return AuditEntry(
            event=Event.REFUSAL,
            at=utcnow(),
            organisation=caller,
            role=shown(request.role),
            access_point=context.peer(),
            purpose=shown(request.purpose),
            reason=type(exc).__name__,
            details={
                "message": escape_text(exc.message)[:500],
                "batch": str(len(request.blinded_elements)),
                "use": use,
                "keys": shown(",".join(request.organisations))[:500],
            },
        )

    @servicer_method
    def Evaluate(
        self, request: pb.EvaluateRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateResponse:
        peer = organisation_peer(context, "KeyService.Evaluate", self.network, self.pins)
        org = peer.organisation_id or ""
        use = USES.get(request.use)
        if use is None:
            raise MalformedMessage(
                "say whether the evaluation is for a question, an import or an access request"
            )
        organisations = self._named(request)
        count = len(request.blinded_elements)
        try:
            self._allowed(org, use, request, organisations)
        except (PolicyRefusal, WrongRole) as exc:
            log.warning("refused organisation=%s use=%s: %s", org, use, type(exc).__name__)
            self._record(self._refusal(org, use, request, context, exc))
            raise
        limit = self._limit(org, use)
        try:
            # The quota counts persons under each key: asking under five keys costs five times.
            remaining = self.store.consume_keys(
                org, count, dict.fromkeys(organisations, limit), self.today(), use=use
            )
        except QuotaExceeded as exc:
            log.warning("quota exceeded organisation=%s use=%s batch=%d", org, use, count)
            self._record(self._refusal(org, use, request, context, exc))
            raise
        if use == "access-request":
            # Every key for one person: each use is a record a DPO of the network can review.
            self._record(
                AuditEntry(
                    event=Event.KEY_USE,
                    at=utcnow(),
                    organisation=org,
                    role=shown(request.role),
                    access_point=context.peer(),
                    reason="access-request",
                    details={
                        "persons": str(count),
                        "keys": str(len(organisations)),
                        "quota_remaining": str(remaining),
                    },
                )
            )
        # One batch under every key named: each key's own evaluation and proof, the batch's
        # elements validated once for all of them.
        pairs = [self.ring.pair(target) for target in organisations]
        evaluated = oprf.blind_evaluate_many(
            [(pair.secret, pair.public) for pair in pairs], list(request.blinded_elements)
        )
        evaluations = [
            pb.KeyEvaluation(
                organisation=target,
                key_id=self.ring.key_id(target),
                evaluated_elements=elements,
                proof=proof,
            )
            for target, (elements, proof) in zip(organisations, evaluated, strict=True)
        ]
        log.info(
            "evaluated organisation=%s use=%s persons=%d keys=%d quota_remaining=%d",
            org,
            use,
            count,
            len(organisations),
            remaining,
        )
        return pb.EvaluateResponse(evaluations=evaluations, quota_remaining=remaining)

    @servicer_method
    def Describe(
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.DescribeResponse:
        peer = organisation_peer(context, "KeyService.Describe", self.network, self.pins)
        target = request.organisation or peer.organisation_id or ""
        if self.network.organisation(target) is None:
            raise MalformedMessage(f"no organisation '{target[:64]}' in the network")
        return pb.DescribeResponse(
            organisation=target,
            key_id=self.ring.key_id(target),
            public_key=self.ring.pair(target).public,
            suite=oprf.SUITE,
        )
