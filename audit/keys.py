"""Signing keys for audit-log checkpoints: a file per log, its verifier pinned in the network."""

from __future__ import annotations

import json
from pathlib import Path

from betrokken.crypto.note import NoteKey, parse_verifier
from betrokken.errors import ConfigError, MalformedMessage
from betrokken.identity.pki import write_secret


def log_origin(network_name: str, component: str) -> str:
    """The checkpoint origin (and key name) of a component's log."""
    return f"betrokken/{network_name}/{component}"


def write_log_key(path: Path, key: NoteKey) -> None:
    write_secret(path, json.dumps({"name": key.name, "seed": key.private_key.hex()}).encode())


def read_log_key(path: Path, pinned_verifier: str) -> NoteKey:
    """Load a signing key and check it is the one the network file pins."""
    try:
        data = json.loads(path.read_text())
        key = NoteKey(name=data["name"], private_key=bytes.fromhex(data["seed"]))
    except FileNotFoundError:
        raise ConfigError(f"{path}: log signing key not found", hint="check 'log_key'") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path}: not a betrokken log signing key") from None
    if not pinned_verifier:
        raise ConfigError(
            f"{path}: the network file pins no verifier key for this log",
            hint="add the log_key verifier from `betrokken network init` to the network file",
        )
    if key.verifier() != pinned_verifier:
        raise ConfigError(
            f"{path}: this signing key does not match the verifier pinned in the network file",
            hint="restore the right key file or update the network file to the new verifier",
        )
    return key


def check_verifier(vkey: str, what: str) -> str:
    try:
        parse_verifier(vkey)
    except MalformedMessage as exc:
        raise ConfigError(f"{what}: {exc.message}") from None
    return vkey
