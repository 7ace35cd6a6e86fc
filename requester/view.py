"""How an answer reads on the command line: text for the regisseur, JSON for systems.

Same content in both. (The portal has its own Dutch pages; this is the CLI's view.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from betrokken.answer import Outcome
from betrokken.requester.client import OrganisationResult, PersonResult, QueryResult

if TYPE_CHECKING:  # pydantic only where a file is validated (docs/adr/0045)
    from betrokken.config.schema import Network

LABELS = {
    Outcome.INVOLVED: "INVOLVED",
    Outcome.INVOLVED_DOMAIN_ONLY: "INVOLVED (domain only)",
    Outcome.NOT_INVOLVED: "not involved",
    Outcome.DECLINED: "declined by policy (nothing was asked)",
    Outcome.DEFERRED: "DEFERRED to a professional (nothing was asked)",
    Outcome.PENDING: "PENDING: a professional decides (not a 'no'; `betrokken collect` later)",
    Outcome.NO_DISCLOSURE: "no information given (not a 'no')",
    Outcome.CASE_REFUSED: (
        "REFUSED: the case reference does not match your organisation's pattern (not a 'no')"
    ),
    Outcome.UNREACHABLE: "UNREACHABLE (no answer; not a 'no')",
    Outcome.ERROR: "ERROR (no answer; not a 'no')",
}


def _who(network: Network, result: OrganisationResult) -> str:
    if not result.organisation_id:
        return f"a {result.answer.domain or 'partner'} partner (name not disclosed)"
    org = network.organisation(result.organisation_id)
    return f"{result.organisation_id} ({org.name})" if org else result.organisation_id


def completeness_line(network: Network, person: PersonResult) -> str:
    total = len(person.answers)
    missing = [r for r in person.answers if not r.answer.outcome.answered]
    answered = total - len(missing)
    if not missing:
        return f"{answered} of {total} organisations answered: answer complete"
    names = ", ".join(f"{_who(network, r)} {r.answer.outcome.value}" for r in missing)
    return (
        f"{answered} of {total} organisations answered; {names}: "
        "ANSWER INCOMPLETE (a missing answer is not a 'no')"
    )


def advice_label(network: Network, code: str) -> str:
    """What an advice code says, from the network file (the code itself if it knows none)."""
    advice = network.advice(code)
    return advice.label if advice else code


def _detail(network: Network, result: OrganisationResult) -> str:
    answer = result.answer
    parts = []
    if answer.outcome is Outcome.INVOLVED and answer.since:
        parts.append(f"since {answer.since}")
    if answer.advice:
        parts.append(f"advice: {advice_label(network, answer.advice)}")
    if answer.contact and answer.outcome in (
        Outcome.INVOLVED,
        Outcome.INVOLVED_DOMAIN_ONLY,
        Outcome.DEFERRED,
    ):
        parts.append(f"contact: {answer.contact}")
    if answer.outcome is Outcome.DEFERRED and answer.message:
        parts.append(answer.message)
    if answer.outcome in (Outcome.UNREACHABLE, Outcome.ERROR) and answer.message:
        parts.append(f"({answer.message})")
    return "; ".join(parts)


def render_text(network: Network, result: QueryResult) -> str:
    purpose = network.purpose(result.purpose)
    lines = [
        f"Purpose (doel):     {result.purpose}" + (f" — {purpose.description}" if purpose else ""),
        f"Legal basis:        {result.legal_basis}",
        f"Asked by:           {result.user} ({result.role}), {result.requester}"
        + (
            f" on behalf of {result.on_behalf_of}"
            if result.on_behalf_of != result.requester
            else ""
        ),
        f"Answered at (UTC):  {result.answered_at:%Y-%m-%d %H:%M:%S}",
        "",
    ]
    for person in result.persons:
        lines.append(
            f"Person {person.masked_bsn}   case {person.case}   pseudonym {person.fingerprint}"
        )
        width = max((len(_who(network, r)) for r in person.answers), default=0)
        for org_result in person.answers:
            label = LABELS[org_result.answer.outcome]
            detail = _detail(network, org_result)
            line = f"  {_who(network, org_result).ljust(width)}  {label}"
            lines.append(line + (f" — {detail}" if detail else ""))
        if not person.answers:
            lines.append("  (no other organisation in the network runs a node)")
        lines.append("  " + completeness_line(network, person))
        lines.append("")
    if len(result.persons) > 1:
        partial = sum(1 for p in result.persons if not p.complete)
        lines.append(
            f"{len(result.persons)} persons; "
            + ("all answers complete" if not partial else f"{partial} with an INCOMPLETE answer")
        )
    lines.append(f"Answer id: {result.answer_id}  (quote it when you follow up a hit)")
    lines.append(
        f"Recorded:  record {result.receipt.leaf_index} of the coordinator's signed audit log "
        f"(checkpoint of {result.receipt.tree_size} records; receipt verified and kept)"
    )
    return "\n".join(lines)


def to_json(network: Network, result: QueryResult) -> dict[str, Any]:
    return {
        "answer_id": result.answer_id,
        "purpose": result.purpose,
        "legal_basis": result.legal_basis,
        "requester": result.requester,
        "on_behalf_of": result.on_behalf_of,
        "kind": result.kind.value,
        "user": result.user,
        "role": result.role,
        "answered_at": result.answered_at.isoformat(timespec="seconds"),
        "complete": result.complete,
        "receipt": {
            "leaf_index": result.receipt.leaf_index,
            "tree_size": result.receipt.tree_size,
            "root": result.receipt.root.hex(),
            "checkpoint": result.receipt.checkpoint,
        },
        "persons": [
            {
                "bsn": person.masked_bsn,
                "pseudonym_fingerprint": person.fingerprint,
                "case": person.case,
                "complete": person.complete,
                "completeness": completeness_line(network, person),
                "organisations": [
                    {
                        "organisation_id": r.organisation_id or None,
                        **r.answer.to_json(),
                        **(
                            {"advice_label": advice_label(network, r.answer.advice)}
                            if r.answer.advice
                            else {}
                        ),
                    }
                    for r in person.answers
                ],
            }
            for person in result.persons
        ],
    }
