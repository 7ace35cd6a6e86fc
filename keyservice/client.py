"""The requesting side of pseudonymisation: blind, ask the key service, verify, finalize.

The BSN never leaves this process; the key service sees only random-looking blinded elements.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from betrokken.config.schema import Network, TlsFiles
from betrokken.crypto import oprf
from betrokken.crypto.bsn import Bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import KeyMismatch, MalformedMessage
from betrokken.identity.rpc import channel, error_from_rpc
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc


class Pseudonymiser:
    """Turns BSNs into pseudonyms through the key service, checking every proof."""

    def __init__(self, network: Network, tls: TlsFiles, timeout: float = 30.0) -> None:
        self.settings = network.keyservice
        self.public = bytes.fromhex(self.settings.public_key)
        self.timeout = timeout
        self._channel = channel(self.settings.address, tls)
        self._stub = pb_grpc.KeyServiceStub(self._channel)
        self.quota_remaining: int | None = None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Pseudonymiser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def pseudonymise(self, bsns: Sequence[Bsn]) -> list[Pseudonym]:
        result: list[Pseudonym] = []
        size = self.settings.max_batch
        for start in range(0, len(bsns), size):
            result.extend(self._batch(bsns[start : start + size]))
        return result

    def _batch(self, bsns: Sequence[Bsn]) -> list[Pseudonym]:
        inputs = [bsn.encode() for bsn in bsns]
        blinds: list[bytes] = []
        blinded: list[bytes] = []
        for data in inputs:
            blind, element = oprf.blind(data)
            blinds.append(blind)
            blinded.append(element)
        try:
            response = self._stub.Evaluate(
                pb.EvaluateRequest(key_id=self.settings.key_id, blinded_elements=blinded),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, "key service", self.settings.address) from None
        if response.key_id != self.settings.key_id:
            raise KeyMismatch(
                f"the key service answered with key '{response.key_id}', "
                f"expected '{self.settings.key_id}'"
            )
        if len(response.evaluated_elements) != len(blinded):
            raise MalformedMessage(
                f"the key service returned {len(response.evaluated_elements)} elements "
                f"for {len(blinded)} asked"
            )
        outputs = oprf.finalize(
            inputs,
            blinds,
            blinded,
            list(response.evaluated_elements),
            public=self.public,
            proof=response.proof,
        )
        self.quota_remaining = response.quota_remaining
        return [Pseudonym(value=out, key_id=self.settings.key_id) for out in outputs]
