"""What an import or a registration does to what a node holds of one person (pure: no database).

A case system's line is a confirmation: the person is still a case. :func:`decide` states, for
one registration given and what the node already holds of that person, what becomes of it:

* **added** — nothing held: stored, active until the retention term after today, or until the
  end the case system gave if that comes first;
* **confirmed** (``unchanged``) — the same facts again: nothing changes but the term, which
  starts anew (no trail record: no fact changed);
* **updated** — other facts, or a registration that had ended comes back: stored with the new
  facts and a new term;
* **already ended** — the result would end before today (the case system's end lies in the
  past): nothing is stored, and what is held stays as it is;
* **kept withdrawn** — withdrawn by hand and not held any more: a re-import does not register the
  person again (unless the caller reactivates, as ``register`` does), and the withdrawal is
  remembered a term longer because the case system still carries the person.

Fields the case system did not give (``keep``) keep the value held. The node's store
(:meth:`betrokken.node.store.NodeStore.upsert`) reads what it holds, calls :func:`decide` and
writes what it says; tests/test_lifecycle.py states the rules as tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Change(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # the same facts, confirmed again (the retention term starts anew)
    KEPT_WITHDRAWN = "kept withdrawn"  # withdrawn by hand; not registered again (no reactivate)
    ALREADY_ENDED = "already ended"  # the result would end before today: nothing stored


class Marker(StrEnum):
    """What becomes of the remembered withdrawal of the person, if there is one."""

    NONE = "none"  # nothing remembered, or left as it is
    EXTEND = "extend"  # seen again in the case system: remembered until the new term's end
    FORGET = "forget"  # registered again (reactivated): the withdrawal is over


# The facts of a registration as a case system gives them (the until given is ``given_until``).
FACTS = ("domain", "contact", "since", "given_until", "reference", "disclosure", "advice")
# What a caller may leave out and so keep as held (``until`` meaning the case system's end).
KEEPABLE = frozenset({"domain", "contact", "since", "until", "reference", "disclosure", "advice"})


@dataclass(frozen=True)
class Held:
    """What the node holds of the person: the facts (by the names in :data:`FACTS`) and the last
    day the registration is active."""

    facts: Mapping[str, object]
    until: dt.date


@dataclass(frozen=True)
class Decision:
    change: Change
    facts: Mapping[str, object] = field(default_factory=dict)  # to store; empty: store nothing
    until: dt.date | None = None  # the last active day stored; None when nothing is stored
    given_until: dt.date | None = None  # the case system's end, when it gave one
    since: dt.date | None = None
    marker: Marker = Marker.NONE
    reactivated: bool = False  # added again although withdrawn by hand

    @property
    def stores(self) -> bool:
        return self.change in (Change.ADDED, Change.UPDATED, Change.UNCHANGED)

    @property
    def recorded(self) -> bool:
        """Whether the change gets a trail record (a bare confirmation changes no fact)."""
        return self.change in (Change.ADDED, Change.UPDATED)


def _column(name: str) -> str:
    return "given_until" if name == "until" else name


def decide(
    given: Mapping[str, object],
    held: Held | None,
    *,
    keep: frozenset[str] = frozenset(),
    withdrawn: bool = False,
    reactivate: bool = False,
    today: dt.date,
    term_end: dt.date,
) -> Decision:
    """What becomes of one registration given (``given``: the facts by the names in
    :data:`FACTS`), against what is ``held`` and whether the person was ``withdrawn`` by hand.

    ``term_end`` is the last day an open case stays active after this confirmation (today plus
    the retention term); ``keep`` names fields (of :data:`KEEPABLE`) that were not given.
    """
    if held is None and withdrawn and not reactivate:
        return Decision(Change.KEPT_WITHDRAWN, marker=Marker.EXTEND)
    facts = dict(given)
    if held is not None:
        for name in keep:
            facts[_column(name)] = held.facts[_column(name)]
    given_until = facts["given_until"]
    since = facts["since"]
    assert given_until is None or isinstance(given_until, dt.date)
    assert isinstance(since, dt.date)
    until = min(given_until, term_end) if given_until else term_end
    if until < today:
        return Decision(Change.ALREADY_ENDED, given_until=given_until, since=since)
    if held is None:
        change = Change.ADDED
    else:
        was_ended = held.until < today
        changed = was_ended or any(held.facts[k] != v for k, v in facts.items())
        change = Change.UPDATED if changed else Change.UNCHANGED
    added_back = held is None and withdrawn
    return Decision(
        change,
        facts=facts,
        until=until,
        given_until=given_until,
        since=since,
        marker=Marker.FORGET if added_back else Marker.NONE,
        reactivated=added_back,
    )


def trail_details(decision: Decision, withdrawn_on: dt.date | None = None) -> dict[str, str]:
    """What the trail record of an added or updated registration says of it (never a BSN)."""
    assert decision.since is not None
    details = {
        "reference": str(decision.facts.get("reference") or ""),
        "since": decision.since.isoformat(),
        "until": decision.given_until.isoformat() if decision.given_until else "open",
    }
    if decision.facts.get("advice"):
        details["advice"] = str(decision.facts["advice"])
    if decision.reactivated and withdrawn_on is not None:
        details["reactivated"] = f"withdrawn by hand on {withdrawn_on}"
    return details


def sync_ends_too_many(active: int, ending: int, share: float) -> bool:
    """Whether a full import (``--sync``) that would end ``ending`` of ``active`` registrations
    ends more than ``share`` of them: then it stops before ending anything (``--force`` goes on).

    A node with nothing active has nothing to lose; ending exactly the share is allowed.
    """
    if active <= 0 or ending <= 0:
        return False
    return ending > share * active
