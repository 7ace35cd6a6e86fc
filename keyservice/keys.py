"""The key service's one secret: a master seed, and the organisation keys derived from it.

Each organisation's OPRF key is RFC 9497 ``DeriveKeyPair(seed, info)`` with the organisation id
(UTF-8) as ``info`` (mode VOPRF, suite ristretto255-SHA512). Adding an organisation needs no
ceremony: its key follows from the seed and its id, and its public key is pinned in the network file
(``betrokken keyservice derive`` prints it). The seed file is readable by the key service's account
only; no other component ever holds it (P2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from betrokken.config.schema import Network
from betrokken.crypto import oprf
from betrokken.crypto.oprf import derive_organisation_key
from betrokken.crypto.pseudonym import key_id_for
from betrokken.errors import ConfigError
from betrokken.identity.keyfiles import new_seed, read_seed, write_seed

__all__ = ["KeyRing", "derive_organisation_key", "new_seed", "read_seed", "write_seed"]


@dataclass(frozen=True)
class KeyRing:
    """Every organisation's key, checked against the public keys the network file pins."""

    keys: dict[str, oprf.KeyPair] = field(repr=False)

    @classmethod
    def load(cls, seed: bytes, network: Network, source: str) -> KeyRing:
        keys: dict[str, oprf.KeyPair] = {}
        wrong = []
        for org in network.organisations:
            pair = derive_organisation_key(seed, org.id)
            if pair.public.hex() != org.pseudonym_key:
                wrong.append(org.id)
            keys[org.id] = pair
        if wrong:
            raise ConfigError(
                f"{source}: the seed does not give the pseudonym_key the network file pins for "
                + ", ".join(wrong),
                hint="the seed file or the network file is from another network; restore the "
                "right one, or pin the keys `betrokken keyservice derive` prints",
            )
        return cls(keys)

    def pair(self, organisation: str) -> oprf.KeyPair:
        return self.keys[organisation]

    def key_id(self, organisation: str) -> str:
        return key_id_for(self.keys[organisation].public)
