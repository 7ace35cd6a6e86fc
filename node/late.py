"""The node's side of the coordinator's mailbox: delivering deferred questions' late answers.

:func:`betrokken.node.deferrals.deliver_due` decides what each late answer says; this module is
the gRPC door to the coordinator (``Mailbox.Deliver``, mutual TLS, only the coordinator's listed
certificates) and the loop that runs it (docs/adr/0037).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import grpc

from betrokken.clock import utcnow
from betrokken.config.schema import Network, Organisation, TlsFiles
from betrokken.crypto.note import NoteKey
from betrokken.identity.names import COORDINATOR_URI, Identity, Role
from betrokken.identity.pins import NetworkPins, Pins
from betrokken.identity.rpc import PeerChannel, error_from_rpc
from betrokken.node.deferrals import deliver_due, signal_due
from betrokken.node.store import NodeStore
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.node")
LATE_INTERVAL_SECONDS = 5.0


class CoordinatorMailbox:
    """``Mailbox.Deliver`` at the coordinator, as this organisation."""

    def __init__(
        self, network: Network, tls: TlsFiles, pins: Pins | None = None, timeout: float = 10.0
    ) -> None:
        self.address = network.coordinator.address
        self.tls = tls
        self.timeout = timeout
        self._peer = PeerChannel(
            self.address,
            tls,
            network.coordinator.tls_name,
            Identity(Role.COORDINATOR),
            pins or NetworkPins(network),
        )

    @property
    def _stub(self) -> Any:
        stub, replaced = self._peer.stub(pb_grpc.MailboxStub)
        if replaced is not None:
            replaced.close()
        return stub

    def deliver(
        self, answer_id: str, label: str, kind: str, sealed: bytes, signature: bytes
    ) -> None:
        request = pb.DeliverRequest(
            answer_id=answer_id, label=label, kind=kind, sealed=sealed, signature=signature
        )
        try:
            self._stub.Deliver(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(
                exc,
                "coordinator",
                self.address,
                expected=COORDINATOR_URI,
                tls=self.tls,
                allowed=self._peer.allowed(),
            ) from None

    def close(self) -> None:
        closing = self._peer.close()
        if closing is not None:
            closing.close()


def late_loop(
    store: NodeStore,
    network: Network,
    org: Organisation,
    signer: NoteKey,
    mailbox: CoordinatorMailbox,
    interval: float,
    stop: threading.Event,
    now: Callable[[], Any] = utcnow,
) -> None:
    """Deliver the late answers whose term ended, every ``interval`` seconds, until ``stop``."""
    while not stop.wait(interval):
        try:
            sent = deliver_due(store, network, org, signer, mailbox, now())
            if sent:
                log.info("late answers: %d delivered to the coordinator's mailbox", sent)
            signalled = signal_due(store, network, org, signer, mailbox, now())
            if signalled:
                log.info("signals: %d delivered to the coordinator's mailbox", signalled)
        except Exception:
            log.exception("late answers: a round failed; will try again")
    mailbox.close()
