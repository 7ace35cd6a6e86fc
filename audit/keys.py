"""Signing keys for audit-log checkpoints: a file per log, its verifier pinned in the network."""

from __future__ import annotations

from pathlib import Path

from betrokken.crypto.note import NoteKey, parse_verifier
from betrokken.errors import ConfigError, MalformedMessage
from betrokken.identity.keyfiles import read_note_key, write_note_key


def log_origin(network_name: str, component: str) -> str:
    """The checkpoint origin (and key name) of a component's log."""
    return f"betrokken/{network_name}/{component}"


def write_log_key(path: Path, key: NoteKey) -> None:
    write_note_key(path, key)


def read_log_key(path: Path, pinned_verifier: str) -> NoteKey:
    """Load a log signing key and check it is the one the network file pins."""
    return read_note_key(path, pinned_verifier, "log signing key")


def check_verifier(vkey: str, what: str) -> str:
    try:
        parse_verifier(vkey)
    except MalformedMessage as exc:
        raise ConfigError(f"{what}: {exc.message}") from None
    return vkey
