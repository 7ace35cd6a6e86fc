"""Key files of an organisation's components: each readable by its owner only (written 0600; a
key file every user of the machine can read is refused, one its group can read is warned about),
each checked against the public key the network file pins for it, so a key from another network or
component is refused with a clear message instead of producing signatures nobody accepts.

* note keys (Ed25519, C2SP signed notes): an audit log's checkpoint key, an organisation's
  question key — JSON ``{"name": ..., "seed": hex}``;
* envelope keys (HPKE MLKEM768-X25519): a node's 32-byte seed, hex;
* the key service's OPRF master seed (32 bytes, hex).
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

from betrokken.crypto import envelope
from betrokken.crypto.envelope import EnvelopeKey
from betrokken.crypto.note import NoteKey
from betrokken.errors import ConfigError
from betrokken.identity.certs import check_private_file
from betrokken.identity.pki import write_secret


def write_note_key(path: Path, key: NoteKey) -> None:
    write_secret(path, json.dumps({"name": key.name, "seed": key.private_key.hex()}).encode())


def read_note_key(path: Path, pinned_verifier: str, what: str) -> NoteKey:
    """Load a signing key and check it is the one the network file pins."""
    check_private_file(path, what)
    try:
        data = json.loads(path.read_text())
        key = NoteKey(name=data["name"], private_key=bytes.fromhex(data["seed"]))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: {what} not found", hint="check the path in the configuration"
        ) from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ConfigError(f"{path}: not a betrokken {what}") from None
    except Exception as exc:  # a MalformedMessage from NoteKey: a wrong name or size
        raise ConfigError(f"{path}: not a betrokken {what} ({exc})") from None
    if not pinned_verifier:
        raise ConfigError(
            f"{path}: the network file pins no verifier for this {what}",
            hint="add the verifier printed by `betrokken network init` to the network file",
        )
    if key.verifier() != pinned_verifier:
        raise ConfigError(
            f"{path}: this {what} does not match the verifier pinned in the network file",
            hint="restore the right key file or update the network file to the new verifier",
        )
    return key


SEED_SIZE = 32


def new_seed() -> bytes:
    """A fresh master seed for the key service's organisation keys."""
    return secrets.token_bytes(SEED_SIZE)


def write_seed(path: Path, seed: bytes) -> None:
    write_secret(path, seed.hex().encode() + b"\n")


def read_seed(path: Path) -> bytes:
    check_private_file(path, "OPRF seed")
    try:
        seed = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise ConfigError(f"{path}: OPRF seed file not found", hint="check 'oprf_seed'") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"{path}: the OPRF seed file is not hex") from None
    if len(seed) != SEED_SIZE:
        raise ConfigError(f"{path}: the OPRF seed must be {SEED_SIZE} bytes")
    return seed


def write_envelope_key(path: Path, key: EnvelopeKey) -> None:
    write_secret(path, key.seed.hex().encode() + b"\n")


def read_envelope_key(path: Path, pinned_public: str) -> EnvelopeKey:
    """A node's private envelope key, checked against its public key in the network file."""
    check_private_file(path, "envelope key")
    try:
        seed = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: envelope key not found", hint="check 'envelope_key' in node.toml"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"{path}: the envelope key file is not hex") from None
    if len(seed) != envelope.SEED_SIZE:
        raise ConfigError(f"{path}: an envelope key seed has {envelope.SEED_SIZE} bytes")
    key = EnvelopeKey(seed)
    if base64.b64encode(key.public_bytes()).decode() != pinned_public:
        raise ConfigError(
            f"{path}: this envelope key does not match the envelope_key pinned for this "
            "organisation in the network file",
            hint="restore the right key file, or pin its public key (`betrokken node keys`)",
        )
    return key
