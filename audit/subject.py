"""A citizen's access request (inzageverzoek): every record about one person, ready to send."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import Network
from betrokken.crypto.question import lookup_key, node_tag, peek_question, read_node_tags, tag
from betrokken.errors import MalformedMessage


@dataclass(frozen=True)
class Line:
    index: int
    when: str
    what: str
    who: str
    why: str
    disclosed: str


DISCLOSED = {
    "involved": "involved (name, contact point and since-date disclosed)",
    "involved-domain-only": "involved (only its domain was disclosed, not its name)",
    "not-involved": "not involved",
    "declined": "declined (nothing disclosed)",
    "deferred": "deferred to a professional (nothing disclosed)",
    "pending": "a professional decides (nothing disclosed yet)",
    "unreachable": "no answer (unreachable)",
    "error": "no answer (error)",
}


def _org_name(network: Network, org_id: str) -> str:
    if org_id.startswith("domain:"):
        return f"a {org_id.split(':', 1)[1].split(' ')[0]} partner (name not disclosed)"
    org = network.organisation(org_id)
    return f"{org.name} ({org_id})" if org else org_id


@dataclass(frozen=True)
class PersonKeys:
    """One person's pseudonyms under every organisation's key (made through the key service).

    The coordinator's log holds, per question, a tag per person made with the *asking*
    organisation's pseudonym, and, per answering node, a node tag made with the lookup hash of
    that node's pseudonym (signed by the node, so the requester cannot choose it); an
    organisation's trail holds its own pseudonyms. Nobody can find a person's records without
    these, and they can only be made with the BSN and the key service.
    """

    pseudonyms: Mapping[str, bytes]  # organisation id -> pseudonym (64 bytes)
    fingerprints: frozenset[str]

    def tag_matches(self, requester: str, answer_id: str, tags: Sequence[str]) -> bool:
        pseudonym = self.pseudonyms.get(requester)
        return pseudonym is not None and tag(pseudonym, answer_id) in tags

    def node_tag_matches(self, node: str, answer_id: str, tags: Sequence[str]) -> bool:
        pseudonym = self.pseudonyms.get(node)
        return pseudonym is not None and node_tag(lookup_key(pseudonym), answer_id) in tags


def find_records(log: AuditLog, keys: PersonKeys) -> list[tuple[int, AuditEntry]]:
    """Every record in ``log`` about the person: by pseudonym (an organisation's trail), by tag
    (the coordinator's questions and refusals), by node tag (the nodes' own tags of each question
    they answered, whatever tags the requester wrote) and the records of those questions."""
    indices = set()
    for pseudonym in keys.pseudonyms.values():
        indices.update(log.indices_for_subject(pseudonym.hex()))
    for fingerprint in keys.fingerprints:  # an import batch's record names fingerprints only
        indices.update(log.indices_for_subject(fingerprint))
    answer_ids: set[str] = set()
    found: dict[int, AuditEntry] = {}
    for record in log.records():
        entry = record.entry
        if entry is None:
            continue
        if record.index in indices:
            found[record.index] = entry
            continue
        if entry.event is Event.OUTCOME and _node_tags_match(entry, keys):
            answer_ids.add(entry.answer_id)
            continue
        note = entry.details.get("question")
        if note and entry.event in (Event.SEARCH, Event.REFUSAL):
            try:
                question = peek_question(note)
            except MalformedMessage:
                continue
            if keys.tag_matches(question.requester, question.answer_id, question.tags):
                found[record.index] = entry
                answer_ids.add(question.answer_id)
    if answer_ids:
        for record in log.records():
            entry = record.entry
            if (
                entry is not None
                and entry.event in (Event.SEARCH, Event.OUTCOME)
                and entry.answer_id in answer_ids
            ):
                found[record.index] = entry
    return sorted(found.items())


def _node_tags_match(entry: AuditEntry, keys: PersonKeys) -> bool:
    try:
        tags = read_node_tags(entry.details.get("node_tags", ""))
    except MalformedMessage:
        return False
    return any(
        keys.node_tag_matches(node, entry.answer_id, signed.tags) for node, signed in tags.items()
    )


def requester_tags_match(entry: AuditEntry, keys: PersonKeys) -> bool:
    """Whether a search record's own (requester's) tags name the person: a question found only
    through node tags was asked with tags that do not (a requester hiding it)."""
    try:
        question = peek_question(entry.details.get("question", ""))
    except MalformedMessage:
        return False
    return keys.tag_matches(question.requester, question.answer_id, question.tags)


@dataclass(frozen=True)
class Happening:
    """One record about the person, read into its parts (no wording): what the CLI's lines and
    the portal's letter both say, each in its own words."""

    index: int
    at: dt.datetime  # UTC
    event: Event
    organisation: str  # who asked (search, disclosure, own query) or whose registration changed
    user: str
    acted_for: str
    role: str
    purpose: str
    legal_basis: str
    cases: tuple[str, ...]
    persons: int  # how many persons the question was about (1: this person alone)
    reason: str
    # own query: organisation (or "domain:<domain>") -> outcome, for this person
    answers: tuple[tuple[str, str], ...] = ()
    # search: the outcome record's organisations that answered and those that did not;
    # None when there is no outcome record
    answered: tuple[str, ...] | None = None
    missing: tuple[str, ...] = ()
    completeness: str = ""
    on_behalf_of: str = ""  # the aanmelder the question was asked for
    # search: found through the nodes' tags only; the asking organisation's own tags did not
    # name the person (wrong tags: a question someone tried to keep out of access requests)
    hidden_tags: bool = False


def _count(entry: AuditEntry) -> int:
    try:
        return max(1, int(entry.details.get("persons", "") or 1))
    except ValueError:
        return 1


def happenings(records: Sequence[tuple[int, AuditEntry]], keys: PersonKeys) -> list[Happening]:
    """The records of :func:`find_records`, in order; an outcome record goes with its search."""
    outcomes: dict[str, AuditEntry] = {
        e.answer_id: e for _, e in records if e.event is Event.OUTCOME
    }
    found = []
    for index, entry in records:
        if entry.event is Event.OUTCOME:
            continue  # shown with its search
        mine = [s for s in entry.subjects if s.fingerprint in keys.fingerprints]
        answers: dict[str, str] = {}
        if entry.event is Event.OWN_QUERY:
            for subject in mine:
                answers.update(entry.outcomes.get(subject.fingerprint, {}))
        answered: tuple[str, ...] | None = None
        missing: tuple[str, ...] = ()
        completeness = entry.completeness
        outcome = outcomes.get(entry.answer_id) if entry.event is Event.SEARCH else None
        if outcome is not None:
            answered = tuple(o for o in outcome.details.get("answered", "").split(",") if o)
            missing = tuple(
                o
                for key in ("unreachable", "failed")
                for o in outcome.details.get(key, "").split(",")
                if o
            )
            completeness = outcome.completeness or completeness
        hidden = entry.event is Event.SEARCH and not requester_tags_match(entry, keys)
        found.append(
            Happening(
                index=index,
                at=entry.at,
                event=entry.event,
                organisation=entry.organisation,
                user=entry.user,
                acted_for=entry.acted_for,
                role=entry.role,
                purpose=entry.purpose,
                legal_basis=entry.legal_basis,
                cases=tuple(sorted({s.case for s in mine if s.case})),
                persons=_count(entry),
                reason=entry.reason,
                answers=tuple(sorted(answers.items())),
                answered=answered,
                missing=missing,
                completeness=completeness,
                on_behalf_of=entry.details.get("on_behalf_of", ""),
                hidden_tags=hidden,
            )
        )
    return found


def subject_lines(
    records: Sequence[tuple[int, AuditEntry]], keys: PersonKeys, network: Network
) -> list[Line]:
    lines = []
    for item in happenings(records, keys):
        who = _org_name(network, item.organisation) if item.organisation else "-"
        if item.user:
            who += f", user {item.user}"
        if item.acted_for:
            who += f" acting for {item.acted_for}"
        if item.on_behalf_of and item.on_behalf_of != item.organisation:
            who += f", on behalf of {_org_name(network, item.on_behalf_of)}"
        if item.role:
            who += f", role {item.role}"
        purpose = network.purpose(item.purpose) if item.purpose else None
        why = item.purpose or "-"
        if purpose:
            why += f" ({purpose.description})"
        if item.legal_basis:
            why += f"; legal basis: {item.legal_basis}"
        if item.cases:
            why += f"; case {', '.join(item.cases)}"
        disclosed = ""
        if item.event is Event.SEARCH:
            if item.answered is None:
                disclosed = "no record of which organisations answered"
            else:
                disclosed = (
                    "answers went sealed to the asking organisation; answered: "
                    + (", ".join(_org_name(network, o) for o in item.answered) or "none")
                    + (f"; no answer from {','.join(item.missing)}" if item.missing else "")
                    + "; what each answered is in the asking organisation's own trail"
                )
            if item.persons > 1:
                why += f"; asked together with others ({item.persons} person(s))"
            if item.hidden_tags:
                disclosed += (
                    "; found through the answering nodes' own tags only: the asking "
                    "organisation's tags in this question do not name this person"
                )
        elif item.event is Event.DISCLOSURE:
            disclosed = item.reason
        elif item.event is Event.REGISTRATION:
            disclosed = f"registration {item.reason}"
        elif item.event is Event.OWN_QUERY:
            disclosed = (
                "; ".join(
                    f"{_org_name(network, org)}: {DISCLOSED.get(value, value)}"
                    for org, value in item.answers
                )
                or f"asked by this organisation ({item.completeness or item.reason})"
            )
        elif item.event is Event.REFUSAL:
            disclosed = f"refused ({item.reason}); nothing was asked"
        what = {
            Event.SEARCH: "looked up (search)",
            Event.DISCLOSURE: "involvement disclosed",
            Event.REGISTRATION: "registration changed",
            Event.OWN_QUERY: "this organisation asked",
            Event.REFUSAL: "question refused",
        }.get(item.event, item.event.value)
        when = f"{item.at:%Y-%m-%d %H:%M:%S} UTC"
        lines.append(Line(item.index, when, what, who, why, disclosed))
    return lines


@dataclass(frozen=True)
class Letterhead:
    """Who the answer is about and who produced it (never the full BSN)."""

    masked_bsn: str
    fingerprint: str
    log_name: str
    produced_at: dt.datetime
    produced_by: str


def render_text(lines: Sequence[Line], head: Letterhead) -> str:
    masked_bsn, fingerprint, log_name = head.masked_bsn, head.fingerprint, head.log_name
    produced_at, produced_by = head.produced_at, head.produced_by
    out = [
        f"Access request (inzageverzoek): records about the person with BSN {masked_bsn}",
        f"Log: {log_name}; searched by pseudonym fingerprint {fingerprint}",
        f"Produced {produced_at:%Y-%m-%d %H:%M} UTC by {produced_by}; this look-up is itself "
        "recorded in the log.",
        "",
    ]
    if not lines:
        out.append("No record in this log concerns this person.")
    for number, line in enumerate(lines, start=1):
        out += [
            f"{number}. {line.when} - {line.what} (record {line.index})",
            f"   by:   {line.who}",
            f"   why:  {line.why}",
        ]
        if line.disclosed:
            out.append(f"   answer: {line.disclosed}")
    return "\n".join(out) + "\n"


def render_html(lines: Sequence[Line], head: Letterhead) -> str:
    masked_bsn, fingerprint, log_name = head.masked_bsn, head.fingerprint, head.log_name
    produced_at, produced_by = head.produced_at, head.produced_by
    e = html.escape
    rows = (
        "".join(
            f"<tr><td>{n}</td><td>{e(x.when)}</td><td>{e(x.what)}</td><td>{e(x.who)}</td>"
            f"<td>{e(x.why)}</td><td>{e(x.disclosed)}</td></tr>"
            for n, x in enumerate(lines, start=1)
        )
        or '<tr><td colspan="6">No record in this log concerns this person.</td></tr>'
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Access request {e(masked_bsn)}</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
        "width:100%}td,th{border:1px solid #bbb;padding:4px 6px;vertical-align:top;"
        "font-size:11pt}th{background:#eee;text-align:left}@media print{body{margin:0}}"
        "</style></head><body>"
        f"<h1>Access request (inzageverzoek)</h1><p>Records about the person with BSN "
        f"<strong>{e(masked_bsn)}</strong> in log <code>{e(log_name)}</code> (pseudonym "
        f"fingerprint {e(fingerprint)}).</p><p>Produced {produced_at:%Y-%m-%d %H:%M} UTC by "
        f"{e(produced_by)}. This look-up is itself recorded in the log.</p>"
        "<table><tr><th>#</th><th>When</th><th>What</th><th>By whom</th><th>Why</th>"
        f"<th>Answer</th></tr>{rows}</table></body></html>\n"
    )
