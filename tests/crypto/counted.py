"""An Ed25519 public key that counts its verifications, put in place of a module's key parser:
a test of a memory of checked signatures counts how often a signature was really checked."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Counted:
    checks = 0

    def __init__(self, key: bytes) -> None:
        self.key = Ed25519PublicKey.from_public_bytes(key)

    def verify(self, signature: bytes, message: bytes) -> None:
        Counted.checks += 1
        self.key.verify(signature, message)


def count_checks(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> type[Counted]:
    """Every key ``module.name`` makes from now on counts its verifications (from 0)."""
    Counted.checks = 0
    monkeypatch.setattr(module, name, Counted)
    return Counted
