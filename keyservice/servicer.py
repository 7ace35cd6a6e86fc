"""The key service's gRPC servicer: batched VOPRF evaluation under organisations' keys."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import grpc

from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import Network
from betrokken.crypto import oprf
from betrokken.errors import MalformedMessage, QuotaExceeded, WrongRole
from betrokken.identity.pins import NetworkPins, Pins
from betrokken.identity.rpc import organisation_peer, servicer_method
from betrokken.keyservice.keys import KeyRing
from betrokken.keyservice.store import QuotaStore
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.keyservice")
USES = {pb.QUESTION: "question", pb.IMPORT: "import"}


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

    def _organisations(self, caller: str, request: pb.EvaluateRequest) -> list[str]:
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
        if request.use == pb.IMPORT and wanted != [caller]:
            raise WrongRole(
                "an import may only pseudonymise under the importing organisation's own key",
                hint="questions to other organisations use the question quota",
            )
        return wanted

    @servicer_method
    def Evaluate(
        self, request: pb.EvaluateRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateResponse:
        peer = organisation_peer(context, "KeyService.Evaluate", self.network, self.pins)
        org = peer.organisation_id or ""
        use = USES.get(request.use)
        if use is None:
            raise MalformedMessage("say whether the evaluation is for a question or an import")
        organisations = self._organisations(org, request)
        settings = self.network.keyservice
        count = len(request.blinded_elements)
        if count == 0 or count > settings.max_batch:
            raise MalformedMessage(
                f"a batch holds 1 to {settings.max_batch} blinded elements, this one {count}"
            )
        for index, element in enumerate(request.blinded_elements):
            oprf.validate_element(element, f"blinded element {index}")
        limit = (
            self.network.daily_bulk_quota(org) if use == "import" else self.network.daily_quota(org)
        )
        try:
            # The quota counts persons, however many organisations' keys they are evaluated under.
            remaining = self.store.consume(org, count, limit, self.today(), use=use)
        except QuotaExceeded as exc:
            log.warning("quota exceeded organisation=%s use=%s batch=%d", org, use, count)
            if self.audit is not None:
                self.audit.append(
                    [
                        AuditEntry(
                            event=Event.REFUSAL,
                            at=utcnow(),
                            organisation=org,
                            access_point=context.peer(),
                            reason=type(exc).__name__,
                            details={"message": exc.message, "batch": str(count), "use": use},
                        )
                    ]
                )
            raise
        elements = list(request.blinded_elements)
        evaluations = []
        for target in organisations:
            pair = self.ring.pair(target)
            evaluated, proof = oprf.blind_evaluate(pair.secret, elements, public=pair.public)
            evaluations.append(
                pb.KeyEvaluation(
                    organisation=target,
                    key_id=self.ring.key_id(target),
                    evaluated_elements=evaluated,
                    proof=proof,
                )
            )
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
