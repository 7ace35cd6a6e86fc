"""What the coordinator saw of one question, in one line (for the demo and for DPOs).

Read from its own log: who asked, on whose behalf, for which purpose, how many persons, which
nodes got a sealed envelope and which answered in time (the answered record). Nothing else is
there to read.
"""

from __future__ import annotations

from betrokken import rules
from betrokken.audit.log import AuditLog
from betrokken.audit.record import Event
from betrokken.config.schema import Network
from betrokken.crypto.question import peek_question
from betrokken.errors import MalformedMessage


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
    asked = [a for a in (outcome.details if outcome else {}).get("asked", "").split(",") if a]
    try:
        envelopes = len(peek_question(search.details.get("question", "")).envelopes)
    except MalformedMessage:
        envelopes = len(asked)
    behalf = search.details.get("on_behalf_of", "")
    line = (
        f"{search.organisation} (role {search.role or '-'})"
        + (f" on behalf of {behalf}" if behalf and behalf != search.organisation else "")
        + f" asked for '{search.purpose}' about {persons} person(s); sealed envelopes to "
        f"{envelopes} node(s)" + (f" ({', '.join(asked)})" if asked else "")
    )
    policy = rules.policy_organisations(network, search.purpose, search.organisation)
    if policy:
        line += "; not sent to " + ", ".join(
            f"{o.id} (policy {rules.level(network, o.id, search.purpose).value})" for o in policy
        )
    if outcome is not None:
        answered = [a for a in outcome.details.get("answered", "").split(",") if a]
        line += f"; {len(answered)} of {envelopes} answered in time ({outcome.completeness})"
        if outcome.details.get("node_tags"):
            line += "; their signed node tags"
    return line + "; no pseudonym, case, user or answer"
