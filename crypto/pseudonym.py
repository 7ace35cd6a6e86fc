"""A pseudonym: the OPRF output for one BSN under one organisation's key, with that key's id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from betrokken.errors import KeyMismatch, MalformedMessage, shown

PSEUDONYM_SIZE = 64


def key_id_for(public: bytes) -> str:
    """The id of an OPRF key, from its public key: what every pseudonym under it carries."""
    return "k1-" + hashlib.sha256(public).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Pseudonym:
    value: bytes
    key_id: str

    def __post_init__(self) -> None:
        if len(self.value) != PSEUDONYM_SIZE:
            raise MalformedMessage(
                f"a pseudonym has {PSEUDONYM_SIZE} bytes, this one has {len(self.value)}"
            )
        if not self.key_id:
            raise MalformedMessage("a pseudonym must carry the id of the key it was made with")

    @property
    def fingerprint(self) -> str:
        """A short, stable label for display and audit (not reversible, not the pseudonym)."""
        return "ps-" + hashlib.sha256(b"betrokken-fingerprint:" + self.value).hexdigest()[:12]

    def require_key(self, key_id: str) -> None:
        if self.key_id != key_id:
            raise KeyMismatch(
                f"pseudonym {self.fingerprint} was made with key '{shown(self.key_id)}', "
                f"but key '{shown(key_id)}' was expected here",
                hint="the organisation's key was rotated or the configuration is out of date; "
                "re-import registrations with the current key",
            )

    def __repr__(self) -> str:
        return f"Pseudonym({self.fingerprint}, key_id={self.key_id!r})"
