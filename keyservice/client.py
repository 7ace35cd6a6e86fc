"""The requesting side of pseudonymisation: blind, ask the key service, verify, finalize.

The BSN never leaves this process; the key service sees only random-looking blinded elements.
One round trip gives the pseudonyms of a batch of persons under the keys of several
organisations, each checked with its own VOPRF proof against the public key the network file pins
for that organisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import grpc

from betrokken.crypto import oprf
from betrokken.crypto.bsn import Bsn
from betrokken.crypto.pseudonym import Pseudonym, key_id_for
from betrokken.errors import KeyMismatch, MalformedMessage
from betrokken.identity.names import KEYSERVICE_URI, Identity, Role
from betrokken.identity.pins import NetworkPins, Pins
from betrokken.identity.rpc import PeerChannel, error_from_rpc
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

if TYPE_CHECKING:  # pydantic only where a file is validated (docs/adr/0045)
    from betrokken.config.schema import Network, TlsFiles

QUESTION: int = pb.QUESTION
IMPORT: int = pb.IMPORT
ACCESS_REQUEST: int = pb.ACCESS_REQUEST


@lru_cache(maxsize=256)
def _pinned(pseudonym_key: str) -> tuple[bytes, str]:
    """An organisation's pinned public key (hex in the network file) as bytes, with the key id
    its pseudonyms carry: worked out once per key, not per question (a rotated key is pinned as
    another string, so it is another entry)."""
    public = bytes.fromhex(pseudonym_key)
    return public, key_id_for(public)


class Pseudonymiser:
    """Turns BSNs into pseudonyms through the key service, checking every proof."""

    def __init__(
        self,
        network: Network,
        tls: TlsFiles,
        organisation: str,
        timeout: float = 30.0,
        *,
        pins: Pins | None = None,
    ) -> None:
        self.network = network
        self.settings = network.keyservice
        self.organisation = organisation
        self.timeout = timeout
        self.tls = tls
        # Only the key service's listed certificates pass the handshake (docs/adr/0024, 11).
        self._peer = PeerChannel(
            self.settings.address,
            tls,
            self.settings.tls_name,
            Identity(Role.KEYSERVICE),
            pins or NetworkPins(network),
        )
        self.quota_remaining: int | None = None

    @property
    def _stub(self) -> Any:
        stub, replaced = self._peer.stub(pb_grpc.KeyServiceStub)
        if replaced is not None:
            replaced.close()
        return stub

    def close(self) -> None:
        closing = self._peer.close()
        if closing is not None:
            closing.close()

    def __enter__(self) -> Pseudonymiser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def pseudonymise(self, bsns: Sequence[Bsn], use: int = IMPORT) -> list[Pseudonym]:
        """Pseudonyms under this organisation's own key (for its registrations and its trail)."""
        return self.pseudonymise_under(bsns, [self.organisation], use)[self.organisation]

    def pseudonymise_under(
        self,
        bsns: Sequence[Bsn],
        organisations: Sequence[str],
        use: int = QUESTION,
        *,
        purpose: str = "",
        role: str = "",
        on_behalf_of: str = "",
    ) -> dict[str, list[Pseudonym]]:
        """Per organisation, the pseudonyms of ``bsns`` under its key, in one round trip a batch.

        A question names its purpose, role and aanmelder: the key service evaluates only for what
        this organisation may ask, under the keys that purpose needs (docs/adr/0024).
        """
        result: dict[str, list[Pseudonym]] = {org: [] for org in organisations}
        size = self.settings.max_batch
        context = {"purpose": purpose, "role": role, "on_behalf_of": on_behalf_of}
        for start in range(0, len(bsns), size):
            batch = self._batch(bsns[start : start + size], list(organisations), use, context)
            for org, pseudonyms in batch.items():
                result[org].extend(pseudonyms)
        return result

    def _batch(
        self,
        bsns: Sequence[Bsn],
        organisations: list[str],
        use: int,
        context: dict[str, str],
    ) -> dict[str, list[Pseudonym]]:
        pins = {}
        for org_id in organisations:
            org = self.network.organisation(org_id)
            if org is None:
                raise MalformedMessage(f"no organisation '{org_id}' in the network file")
            pins[org_id] = org
        key_ids = {org_id: _pinned(org.pseudonym_key)[1] for org_id, org in pins.items()}
        inputs = [bsn.encode() for bsn in bsns]
        blinds: list[bytes] = []
        blinded: list[bytes] = []
        for data in inputs:
            blind, element = oprf.blind(data)
            blinds.append(blind)
            blinded.append(element)
        try:
            response = self._stub.Evaluate(
                pb.EvaluateRequest(
                    blinded_elements=blinded,
                    organisations=organisations,
                    use=cast(Any, use),
                    **context,
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(
                exc,
                "key service",
                self.settings.address,
                expected=KEYSERVICE_URI,
                tls=self.tls,
                allowed=self._peer.allowed(),
            ) from None
        if [e.organisation for e in response.evaluations] != organisations:
            raise MalformedMessage("the key service answered for other organisations than asked")
        evaluations = []
        for evaluation in response.evaluations:
            org = pins[evaluation.organisation]
            if evaluation.key_id != key_ids[org.id]:
                raise KeyMismatch(
                    f"the key service evaluated under key '{evaluation.key_id[:64]}' for "
                    f"{org.id}, the network file pins '{key_ids[org.id]}'",
                    hint="update the network file to the current one",
                )
            if len(evaluation.evaluated_elements) != len(blinded):
                raise MalformedMessage(
                    f"the key service returned {len(evaluation.evaluated_elements)} elements "
                    f"for {len(blinded)} asked"
                )
            evaluations.append(
                (
                    list(evaluation.evaluated_elements),
                    _pinned(org.pseudonym_key)[0],
                    evaluation.proof,
                )
            )
        # One blinded batch under every organisation's key: each proof checked, the shared
        # work (the blinds' inverses, the blinded elements' checks) done once.
        outputs = oprf.finalize_many(inputs, blinds, blinded, evaluations)
        result = {
            e.organisation: [Pseudonym(out, key_ids[e.organisation]) for out in finalized]
            for e, finalized in zip(response.evaluations, outputs, strict=True)
        }
        self.quota_remaining = response.quota_remaining
        return result
