"""A late message from a node to an earlier asker, carried by the coordinator's mailbox.

A ``defer`` node's decision reaches the asker after the question was answered ``pending``: at the
term's end the node seals one late answer per question under the question's reply key (which only
the asker and that node hold) and signs it with its trail key, pinned in the network file as the
organisation's ``log_key``. The coordinator keeps the sealed bytes for the asking organisation and
hands them out when it collects (docs/adr/0037). It can read none of it, and it cannot change,
forge or move a message to another question unseen:

* the seal's associated data binds the network, the question's answer id, the label (the sending
  organisation) and the kind (``betrokken-late/v1``), so a message opens only as what it was
  sealed for, and only with that question's reply key;
* the signature covers the same fields and the seal's SHA-256, so the asker checks who sent it
  against the network file, never against a field the coordinator handed over.

The plaintext is the reply format of :class:`betrokken.crypto.question.ReplyContent`, padded to a
size that depends only on the number of persons: a disclosure and a "no information given" are
the same size.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from betrokken.crypto import envelope as env
from betrokken.crypto.note import NoteKey, parse_verifier
from betrokken.crypto.question import SIGNATURE_SIZE, canonical, reply_aad
from betrokken.errors import MalformedMessage, VerificationError

LATE_HEADER = b"betrokken-late/v1\n"


def late_aad(network: str, answer_id: str, label: str, kind: str) -> bytes:
    """A late message's associated data: the reply's, and ``betrokken-late/v1`` with its kind, so
    it can never pass for the question's first reply (nor the first reply for it)."""
    return reply_aad(network, answer_id, label) + b"\x00betrokken-late/v1\x00" + kind.encode()


def _body(network: str, answer_id: str, sender: str, label: str, kind: str, sealed: bytes) -> bytes:
    data = {
        "network": network,
        "answer_id": answer_id,
        "sender": sender,
        "label": label,
        "kind": kind,
        "sealed": hashlib.sha256(sealed).hexdigest(),
    }
    return LATE_HEADER + canonical(data) + b"\n"


def seal_late(
    key: NoteKey,
    reply_key: bytes,
    network: str,
    answer_id: str,
    sender: str,
    label: str,
    kind: str,
    plaintext: bytes,
) -> tuple[bytes, bytes]:
    """The sealed message and the sender's signature over it."""
    sealed = env.seal_reply(reply_key, late_aad(network, answer_id, label, kind), plaintext)
    return sealed, key.signer.sign(_body(network, answer_id, sender, label, kind, sealed))


def open_late(
    verifier: str,
    reply_key: bytes,
    network: str,
    answer_id: str,
    sender: str,
    label: str,
    kind: str,
    sealed: bytes,
    signature: bytes,
) -> bytes:
    """The plaintext of a late message, after checking the sender's signature against its pinned
    trail key and opening the seal with the question's reply key; VerificationError otherwise."""
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError("a late message carries no valid signature")
    try:
        _, public = parse_verifier(verifier)
    except MalformedMessage:
        raise VerificationError(f"no trail key of {sender} to check a late message") from None
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            signature, _body(network, answer_id, sender, label, kind, sealed)
        )
    except InvalidSignature:
        raise VerificationError(
            f"a late message for question {answer_id} is not signed by {sender}'s trail key "
            "(forged or altered on the way)"
        ) from None
    return env.open_reply(reply_key, late_aad(network, answer_id, label, kind), sealed)
