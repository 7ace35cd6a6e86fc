"""What the coordinator saw of one question, in one line (for the demo and for DPOs).

Read from its own log: who asked, for which purpose, how many persons, which nodes got a sealed
envelope and which answered in time. Nothing else is there to read.
"""

from __future__ import annotations

from betrokken import rules
from betrokken.audit.log import AuditLog
from betrokken.audit.record import Event
from betrokken.config.schema import Network


def describe(log: AuditLog, network: Network, answer_id: str) -> str:
    search = outcome = None
    for record in log.records():
        entry = record.entry
        if entry is None or entry.answer_id != answer_id:
            continue
        if entry.event is Event.SEARCH:
            search = entry
        elif entry.event is Event.OUTCOME:
            outcome = entry
    if search is None:
        return "nothing: the question never reached it"
    persons = search.details.get("persons", "?")
    asked = [a for a in search.details.get("asked", "").split(",") if a]
    line = (
        f"{search.organisation} (role {search.role or '-'}) asked for '{search.purpose}' about "
        f"{persons} person(s); sealed envelopes to {len(asked)} node(s)"
        + (f" ({', '.join(asked)})" if asked else "")
    )
    policy = rules.policy_organisations(network, search.purpose, search.organisation)
    if policy:
        line += "; not sent to " + ", ".join(
            f"{o.id} (policy {rules.level(network, o.id, search.purpose).value})" for o in policy
        )
    if outcome is not None:
        answered = [a for a in outcome.details.get("answered", "").split(",") if a]
        line += f"; {len(answered)} of {len(asked)} answered in time ({outcome.completeness})"
    return line + "; no pseudonym, case, user or answer"
