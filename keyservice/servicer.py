"""The key service's gRPC servicer: batched VOPRF evaluation for authenticated organisations."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import grpc

from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import Network
from betrokken.crypto import oprf
from betrokken.errors import KeyMismatch, MalformedMessage, QuotaExceeded
from betrokken.identity.rpc import organisation_peer, servicer_method
from betrokken.keyservice.store import QuotaStore
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.keyservice")


class KeyServiceServicer(pb_grpc.KeyServiceServicer):
    def __init__(
        self,
        network: Network,
        keypair: oprf.KeyPair,
        store: QuotaStore,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
        audit: AuditLog | None = None,
    ) -> None:
        self.network = network
        self.keypair = keypair
        self.store = store
        self.today = today
        self.audit = audit  # quota refusals are records in the key service's own log

    @servicer_method
    def Evaluate(
        self, request: pb.EvaluateRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateResponse:
        peer = organisation_peer(context, "KeyService.Evaluate", self.network)
        org = peer.organisation_id or ""
        settings = self.network.keyservice
        if request.key_id != settings.key_id:
            raise KeyMismatch(
                f"asked for key '{request.key_id}', this key service holds '{settings.key_id}'",
                hint="update the network file to the current one",
            )
        count = len(request.blinded_elements)
        if count == 0 or count > settings.max_batch:
            raise MalformedMessage(
                f"a batch holds 1 to {settings.max_batch} blinded elements, this one {count}"
            )
        for index, element in enumerate(request.blinded_elements):
            oprf.validate_element(element, f"blinded element {index}")
        try:
            remaining = self.store.consume(org, count, self.network.daily_quota(org), self.today())
        except QuotaExceeded as exc:
            log.warning("quota exceeded organisation=%s batch=%d", org, count)
            if self.audit is not None:
                self.audit.append(
                    [
                        AuditEntry(
                            event=Event.REFUSAL,
                            at=dt.datetime.now(dt.UTC),
                            organisation=org,
                            access_point=context.peer(),
                            reason=type(exc).__name__,
                            details={"message": exc.message, "batch": str(count)},
                        )
                    ]
                )
            raise
        evaluated, proof = oprf.blind_evaluate(
            self.keypair.secret,
            list(request.blinded_elements),
            public=self.keypair.public,
        )
        log.info("evaluated organisation=%s count=%d quota_remaining=%d", org, count, remaining)
        return pb.EvaluateResponse(
            key_id=settings.key_id,
            evaluated_elements=evaluated,
            proof=proof,
            quota_remaining=remaining,
        )

    @servicer_method
    def Describe(
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.DescribeResponse:
        organisation_peer(context, "KeyService.Describe", self.network)
        return pb.DescribeResponse(
            key_id=self.network.keyservice.key_id,
            public_key=self.keypair.public,
            suite=oprf.SUITE,
        )
