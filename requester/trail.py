"""The record of a question in the asking organisation's own trail.

The coordinator's log no longer holds who (which user) asked about whom or what was answered: the
asking organisation keeps that itself, under its own pseudonym of each person, so its DPO can
answer an access request and find anomalies per user (ADR 0007).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.clock import utcnow
from betrokken.crypto.pseudonym import Pseudonym

if TYPE_CHECKING:
    from betrokken.requester.client import Person, QueryResult


def answer_key(organisation_id: str, domain: str, taken: dict[str, str]) -> str:
    """The key of one answer in a record: the organisation, or its domain when anonymous."""
    base = organisation_id or f"domain:{domain or 'unknown'}"
    key, number = base, 1
    while key in taken:
        number += 1
        key = f"{base} ({number})"
    return key


def own_query_entry(
    organisation: str,
    user: str,
    acted_for: str,
    role: str,
    purpose: str,
    persons: Sequence[Person],
    own: Sequence[Pseudonym],
    *,
    result: QueryResult | None = None,
    error: Exception | None = None,
) -> AuditEntry:
    subjects = tuple(
        Subject(p.value.hex(), p.key_id, p.fingerprint, person.case)
        for p, person in zip(own, persons, strict=False)
    )
    details = {"persons": str(len(persons))}
    outcomes: dict[str, dict[str, str]] = {}
    if result is not None:
        details.update(
            receipt_index=str(result.receipt.leaf_index),
            receipt_tree_size=str(result.receipt.tree_size),
            receipt_root=result.receipt.root.hex(),
            asked=",".join(result.asked),
        )
        for person in result.persons:
            per: dict[str, str] = {}
            for answer in person.answers:
                key = answer_key(answer.organisation_id, answer.answer.domain, per)
                per[key] = answer.answer.outcome.value
            outcomes[person.fingerprint] = per
    elif error is not None:
        details["message"] = getattr(error, "message", str(error))[:300]
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=utcnow(),
        answer_id=result.answer_id if result else "",
        organisation=organisation,
        user=user,
        acted_for=acted_for,
        role=role,
        purpose=purpose,
        legal_basis=result.legal_basis if result else "",
        subjects=subjects,
        outcomes=outcomes,
        completeness=("complete" if result.complete else "partial") if result else "",
        reason=type(error).__name__ if error else "answered",
        details=details,
    )
