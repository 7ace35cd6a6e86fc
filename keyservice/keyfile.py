"""The OPRF key file: a hex secret scalar, readable by the key service's account only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import rbcl

from betrokken.crypto import oprf
from betrokken.errors import ConfigError
from betrokken.identity.pki import write_secret


def key_id_for(public: bytes) -> str:
    return "k1-" + hashlib.sha256(public).hexdigest()[:12]


def write_key(path: Path, keypair: oprf.KeyPair) -> None:
    write_secret(path, keypair.secret.hex().encode() + b"\n")


def read_key(path: Path, expected_public_hex: str) -> oprf.KeyPair:
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise ConfigError(f"{path}: OPRF key file not found", hint="check 'oprf_key'") from None
    except ValueError:
        raise ConfigError(f"{path}: OPRF key file is not hex") from None
    if len(secret) != oprf.SCALAR_SIZE:
        raise ConfigError(f"{path}: OPRF key must be {oprf.SCALAR_SIZE} bytes")
    public = bytes(rbcl.crypto_scalarmult_ristretto255_base(secret))
    if public.hex() != expected_public_hex:
        raise ConfigError(
            f"{path}: this key does not match keyservice.public_key in the network file",
            hint="the key file or the network file is from another network; restore the right one",
        )
    return oprf.KeyPair(secret=secret, public=public)
