"""C2SP tlog-cosignature/v1 with Ed25519: a witness's statement about a checkpoint.

A cosignature is one more signature line on a checkpoint's signed note::

    — <cosigner name> base64(key ID || timestamp || Ed25519 signature)

The key ID is the first 4 bytes of SHA-256(name || "\\n" || 0x04 || public key) — the 0x04 keeps
it apart from the same key's ordinary note signatures (0x01). The timestamp is a big-endian u64
of seconds since the epoch. The signed message is ``cosignature/v1\\n``, ``time <timestamp>\\n``
and then the checkpoint's whole body. It states: "as of that time, the largest consistent tree I
observed for this log has this root" (c2sp.org/tlog-cosignature).

A witness of betrokken cosigns with its trail key, the key the network file pins as the
organisation's ``log_key``; its cosigner name is that key's name. The same key signs the trail's
own checkpoints, whose bodies begin with the trail's origin line, never with ``cosignature/v1``,
so the two kinds of statement cannot be taken for each other.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from betrokken.crypto.note import DASH, NoteKey, parse_verifier
from betrokken.errors import MalformedMessage

COSIGNATURE_V1 = b"\x04"
HEADER = "cosignature/v1"
MAX_TIMESTAMP = 2**63 - 1


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 cosigner (signature type 0x04)."""
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_V1 + public_key).digest()[:4]


@dataclass(frozen=True)
class Cosigner:
    """Who may cosign, as a verifier knows it: a name and an Ed25519 public key."""

    name: str
    public_key: bytes

    @classmethod
    def from_verifier(cls, vkey: str) -> Cosigner:
        """The cosigner of a pinned note verifier key (``name+hash+base64(0x01||key)``)."""
        name, public_key = parse_verifier(vkey)
        return cls(name, public_key)

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """This cosigner as a C2SP vkey of type 0x04 (what standard witness tooling prints)."""
        encoded = base64.b64encode(COSIGNATURE_V1 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def signed_message(body: bytes, timestamp: int) -> bytes:
    """What an Ed25519 cosignature signs: the header, the time and the checkpoint body."""
    return f"{HEADER}\ntime {timestamp}\n".encode() + body


def note_body(note: str) -> bytes:
    """The body of a signed note (up to and including the newline before the empty line)."""
    separator = note.rfind("\n\n")
    if separator < 0 or not note.endswith("\n"):
        raise MalformedMessage("a signed note has an empty line before its signatures")
    return note[: separator + 1].encode()


def cosign(body: bytes, key: NoteKey, timestamp: int) -> str:
    """One cosignature line (with its newline) by ``key`` over a checkpoint ``body``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise MalformedMessage("a cosignature's time is out of range")
    signature = key.signer.sign(signed_message(body, timestamp))
    blob = cosigner_key_id(key.name, key.public_key) + struct.pack(">Q", timestamp) + signature
    return f"{DASH}{key.name} {base64.b64encode(blob).decode()}\n"


def add_cosignatures(note: str, lines: Iterable[str]) -> str:
    """The note with cosignature lines appended (each ending in a newline), none twice."""
    present = set(note.split("\n"))
    extra = [line for line in lines if line.rstrip("\n") not in present]
    return note + "".join(extra)


@dataclass(frozen=True)
class Cosignature:
    witness: str  # the id the verifier knows the cosigner by (an organisation)
    timestamp: int
    line: str


def verify_cosignatures(
    note: str,
    cosigners: Mapping[str, Cosigner],
    not_after: int | None = None,
    enough: int | None = None,
) -> dict[str, Cosignature]:
    """The valid cosignatures on ``note``, by witness id (with ``enough``: stop verifying once
    that many were found, each costs an Ed25519 verification).

    Lines by unknown keys are ignored (as the signed-note format asks); a line by a known
    cosigner whose signature does not verify, or whose time lies after ``not_after``, is not
    counted. A malformed line is a :class:`MalformedMessage`.
    """
    body = note_body(note)
    by_key = {(c.name, c.key_id): (witness, c) for witness, c in cosigners.items()}
    found: dict[str, Cosignature] = {}
    for line in note[len(body) + 1 :].split("\n")[:-1]:
        if not line.startswith(DASH):
            raise MalformedMessage("a signature line starts with an em dash and a space")
        try:
            name, blob = line[len(DASH) :].split(" ")
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error):
            raise MalformedMessage("a signature line is malformed") from None
        known = by_key.get((name, raw[:4]))
        if known is None or len(raw) != 4 + 8 + 64:
            continue  # another key's signature (the log's own, or a cosigner we do not know)
        witness, cosigner = known
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        if timestamp > MAX_TIMESTAMP or (not_after is not None and timestamp > not_after):
            continue
        if witness in found:
            continue  # a second line by the same witness counts once
        try:
            _public(cosigner.public_key).verify(raw[12:], signed_message(body, timestamp))
        except InvalidSignature:
            continue
        found[witness] = Cosignature(witness, timestamp, line + "\n")
        if enough is not None and len(found) >= enough:
            break
    return found


class VerifiedCheckpoints:
    """The cosignatures this process already verified, by the exact signed note they are on.

    A node is asked many questions under one cosigned checkpoint while a cosigning round serves
    several questions; each would check the same Ed25519 cosignatures again. :meth:`verify`
    answers as :func:`verify_cosignatures` does, and checks the signatures of a note only the
    first time it sees that note with those cosigners. The key is the SHA-256 of the whole note
    (the checkpoint body, the log's signature and every cosignature line) and the cosigner keys:
    a note that differs in any byte — another cosignature over the same size, a line added or
    taken away — is another key and is verified in full. What a hit returns is what the full
    check found (each cosignature with its time), filtered again by this call's ``not_after``;
    when that is not enough for this call, the note is verified in full after all. Bounded:
    the least recently used notes are forgotten first.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.hits = 0  # for tests and measurements: how many checks were answered from memory
        self._lock = threading.Lock()
        self._known: OrderedDict[
            tuple[bytes, frozenset[tuple[str, Cosigner]]],
            tuple[dict[str, Cosignature], int | None, bool],
        ] = OrderedDict()

    def verify(
        self,
        note: str,
        cosigners: Mapping[str, Cosigner],
        not_after: int | None = None,
        enough: int | None = None,
    ) -> dict[str, Cosignature]:
        """:func:`verify_cosignatures`, from memory when this exact note was verified before
        (with ``enough``, a hit may return more than that many: all it verified in time)."""
        key = (hashlib.sha256(note.encode()).digest(), frozenset(cosigners.items()))
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                self._known.move_to_end(key)
        if known is not None:
            found, checked_until, complete = known
            valid = {
                w: c for w, c in found.items() if not_after is None or c.timestamp <= not_after
            }
            # Enough of the verified ones are in time; or the first check read every line, and
            # under a bound no later than its own (a line it skipped as too late stays skipped).
            if (enough is not None and len(valid) >= enough) or (
                complete
                and (
                    checked_until is None or (not_after is not None and not_after <= checked_until)
                )
            ):
                with self._lock:
                    self.hits += 1
                return valid
        found = verify_cosignatures(note, cosigners, not_after, enough)
        complete = enough is None or len(found) < enough  # every line was read
        with self._lock:
            self._known[key] = (found, not_after, complete)
            self._known.move_to_end(key)
            while len(self._known) > self.size:
                self._known.popitem(last=False)
        return dict(found)


@functools.lru_cache(maxsize=256)
def _public(key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(key)


def cosignature_timestamp(line: str) -> int:
    """The time in a cosignature line (without checking the signature)."""
    try:
        raw = base64.b64decode(line.rstrip("\n").split(" ")[-1], validate=True)
    except (ValueError, binascii.Error):
        raise MalformedMessage("not a cosignature line") from None
    if len(raw) != 4 + 8 + 64:
        raise MalformedMessage("not an Ed25519 cosignature (wrong length)")
    (timestamp,) = struct.unpack(">Q", raw[4:12])
    return int(timestamp)
