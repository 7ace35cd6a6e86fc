"""The one exception hierarchy of betrokken.

Every error a user, an operator or a peer can cause is a subclass of :class:`BetrokkenError`.
Each class carries

* an ``exit_code`` for the CLI (documented in ``docs/regisseur.md`` and ``docs/operator.md``),
* a ``status`` name: the gRPC status code it maps to on the wire (the mapping to real
  ``grpc.StatusCode`` values lives in one place, :mod:`betrokken.identity.rpc`),
* a human message that says what was wrong, plus an optional ``hint`` saying what to do.

Messages never contain a BSN: callers pass masked forms (see :func:`betrokken.crypto.bsn.mask`).
"""

from __future__ import annotations

import unicodedata
from typing import ClassVar

ECHO_LIMIT = 64  # characters of a value a message repeats back


def escape_text(text: str) -> str:
    """``text`` on one line: control and format characters (newlines, NUL, ESC, bidi overrides,
    lone surrogates from undecodable bytes) shown as escapes, so no value can forge a log line
    or rewrite a terminal."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif unicodedata.category(char) == "Cs":  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}" if 0xDC80 <= ord(char) <= 0xDCFF else "?")
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def shown(value: str, limit: int = ECHO_LIMIT) -> str:
    """A value from outside as a message may repeat it: escaped, and cut after ``limit``
    characters with its full length said (a 1 MB key id is never echoed whole)."""
    if len(value) > limit:
        return escape_text(value[:limit]) + f"... ({len(value):,} characters)"
    return escape_text(value)


class BetrokkenError(Exception):
    """Root of every error betrokken raises on purpose."""

    exit_code: ClassVar[int] = 1
    status: ClassVar[str] = "INTERNAL"
    summary: ClassVar[str] = "betrokken failed"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """A human explanation: what went wrong and, when known, what to do about it."""
        text = f"{self.summary}: {self.message}"
        if self.hint:
            text += f"\n  what to do: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.message


# --- exit code 2: bad input ------------------------------------------------------------------
class BadInput(BetrokkenError):
    """The user gave input that cannot be used (a malformed BSN, a missing case reference)."""

    exit_code = 2
    status = "INVALID_ARGUMENT"
    summary = "bad input"


class InvalidBsn(BadInput):
    """A value is not a valid BSN. The message carries only a masked form."""

    summary = "invalid BSN"


class MalformedMessage(BadInput):
    """A peer sent a message that does not follow the wire contract (bad sizes, bad points)."""

    summary = "malformed message"


# --- exit code 4: refused by policy ----------------------------------------------------------
class PolicyRefusal(BetrokkenError):
    """The network's rules do not allow this (purpose, role, organisation)."""

    exit_code = 4
    status = "PERMISSION_DENIED"
    summary = "refused by policy"


class UnknownPurpose(PolicyRefusal):
    summary = "unknown purpose"


class PurposeNotAllowed(PolicyRefusal):
    summary = "purpose not allowed"


class AanmelderNotAllowed(PurposeNotAllowed):
    """The question names an aanmelder (``on_behalf_of``) the purpose does not list, or names none
    where the asker has no basis of its own: refused by every party that checks the question."""

    summary = "aanmelder not allowed for this purpose"


class QuotaExceeded(PolicyRefusal):
    status = "RESOURCE_EXHAUSTED"
    summary = "quota exceeded"


class RateLimited(PolicyRefusal):
    status = "RESOURCE_EXHAUSTED"
    summary = "rate limit"


# --- exit code 5: configuration ---------------------------------------------------------------
class ConfigError(BetrokkenError):
    """A configuration file is missing, malformed or inconsistent."""

    exit_code = 5
    status = "FAILED_PRECONDITION"
    summary = "configuration error"


class SchemaOutdated(ConfigError):
    """A database's schema is not the one this code was written for: ``betrokken db upgrade``."""

    summary = "database schema not current"


class UnlawfulConfiguration(ConfigError):
    """A network file that parses but breaks a rule of the handvat (closed roles, k-anonymous
    domains, professional secrecy, a providing basis, an aanmelder): refused with its own exit code,
    the message in Dutch first and naming the rule."""

    exit_code = 9
    summary = "network file not lawful / netwerkbestand niet rechtmatig"


# --- exit code 6: identity -------------------------------------------------------------------
class AuthenticationError(BetrokkenError):
    """A peer's certificate is unknown, expired or does not belong to the role it acts in."""

    exit_code = 6
    status = "UNAUTHENTICATED"
    summary = "not authenticated"


class WrongRole(AuthenticationError):
    status = "PERMISSION_DENIED"
    summary = "wrong role for this certificate"


class WrongPeer(AuthenticationError):
    """The server we reached presents another identity than the one we meant to reach."""

    summary = "wrong server identity"


class CertificateRefused(AuthenticationError):
    """A certificate was refused: ours or the peer's (another CA, expired, a key that does not
    belong to it, or not on the network file's allow-list)."""

    summary = "certificate refused"


# --- exit code 7: a service cannot be reached or cannot do its job -----------------------------
class Unavailable(BetrokkenError):
    exit_code = 7
    status = "UNAVAILABLE"
    summary = "service unavailable"


class AuditUnavailable(Unavailable):
    """The coordinator cannot write its audit record, so it refuses to answer (fail closed)."""

    summary = "audit log unavailable, query refused"


class LogDamaged(Unavailable):
    """The audit log lacks what a proof needs (rows removed): a question is refused, never
    answered without its record's proof, and the message says how to restore the log."""

    summary = "audit log damaged, question refused"


class WitnessQuorumMissing(Unavailable):
    """Too few witnesses cosigned the log a question is recorded in: it was not forwarded (no
    node answers under a checkpoint the other witnesses did not see). Never a "no"."""

    summary = "too few witnesses cosigned the log, question not asked"


class WitnessStale(BetrokkenError):
    """A node witnessed another size of the coordinator's log than the proof it was sent assumed.

    Not an alarm: the coordinator asks again with a consistency proof from ``witnessed_size``.
    """

    exit_code = 7
    status = "FAILED_PRECONDITION"
    summary = "witness state differs"

    def __init__(self, message: str, *, witnessed_size: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.witnessed_size = witnessed_size


# --- exit code 8: cryptographic verification failed ------------------------------------------
class VerificationError(BetrokkenError):
    """A proof, key id or signature did not verify. Never silently turned into a 'no hit'."""

    exit_code = 8
    status = "DATA_LOSS"
    summary = "verification failed"


class KeyMismatch(VerificationError):
    summary = "pseudonymisation key mismatch"


class QuestionRefused(VerificationError):
    """A question that fails a node's or a requester's checks: forged, unlogged, replayed, ...

    ``kind`` names the check (it becomes the alarm's kind in the node's trail); across the wire
    only the class, the message and the hint travel.
    """

    summary = "question refused"

    def __init__(self, message: str, *, kind: str = "refused", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


# --- exit codes 11 and 12: a node's data older than its anchor; a sync guarded -------------------
class DataLost(BetrokkenError):
    """A node's database is empty or older than the state it anchored outside it (its signed state
    file): it refuses to serve, so it can never answer "not involved" for registrations it lost.
    The message is Dutch first, then English; the hint names the two ways on."""

    exit_code = 11
    status = "DATA_LOSS"
    summary = "gegevens kwijt / data lost"


class SyncGuarded(BetrokkenError):
    """A full import (``--sync``) would end more than the configured share of the active
    registrations; nothing was changed. ``--force`` goes on."""

    exit_code = 12
    status = "FAILED_PRECONDITION"
    summary = "sync stopped before ending too many registrations"

    # What the guard measured, for a page that says it in the reader's language: how many
    # registrations the sync would end (at least, when ``before``), of how many active ones,
    # against which share; ``before``: nothing was read yet (else the file's lines were stored).
    ending: int = 0
    active: int = 0
    share: float = 0.0
    before: bool = False


# --- exit code 1: everything else -------------------------------------------------------------
class InternalError(BetrokkenError):
    exit_code = 1
    status = "INTERNAL"
    summary = "internal error"


ALL_ERRORS: tuple[type[BetrokkenError], ...] = (
    BetrokkenError,
    BadInput,
    InvalidBsn,
    MalformedMessage,
    PolicyRefusal,
    UnknownPurpose,
    PurposeNotAllowed,
    AanmelderNotAllowed,
    QuotaExceeded,
    RateLimited,
    ConfigError,
    SchemaOutdated,
    UnlawfulConfiguration,
    AuthenticationError,
    WrongRole,
    WrongPeer,
    CertificateRefused,
    Unavailable,
    AuditUnavailable,
    LogDamaged,
    WitnessQuorumMissing,
    WitnessStale,
    VerificationError,
    KeyMismatch,
    QuestionRefused,
    DataLost,
    SyncGuarded,
    InternalError,
)


def error_class(name: str) -> type[BetrokkenError]:
    """Find an error class by name (used to rebuild errors received over gRPC)."""
    for cls in ALL_ERRORS:
        if cls.__name__ == name:
            return cls
    return BetrokkenError
