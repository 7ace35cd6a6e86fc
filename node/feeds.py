"""Per case system: what it fed the node and what was refused, and when (feed health).

Every way a case system feeds registrations (the registration API, node/feeds_api.py) records
what happened here through :func:`record_feed_event`; ``node status``, the beheerder page and the
metrics read it back with :func:`feed_states`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from betrokken.clock import utcnow
from betrokken.node.store import FeedState, NodeStore

__all__ = ["FeedEvent", "FeedState", "feed_states", "record_feed_event"]


class FeedEvent(StrEnum):
    ACCEPTED = "accepted"  # changes applied (added, updated, confirmed, ended, withdrawn ...)
    REFUSED = "refused"  # changes refused (an invalid BSN, an end in the past ...)


def record_feed_event(
    store: NodeStore,
    system: str,
    kind: FeedEvent,
    count: int = 1,
    *,
    detail: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Count ``count`` changes of ``kind`` from case system ``system``; ``detail`` says why a
    change was refused (never a BSN: a kind of problem, like "BSN fails the elfproef")."""
    if count <= 0:
        return
    moment = now or utcnow()
    if kind is FeedEvent.ACCEPTED:
        store.record_feed_state(system, accepted=count, now=moment)
    else:
        store.record_feed_state(system, refused=count, now=moment, refusal=detail)


def feed_states(store: NodeStore) -> list[FeedState]:
    """Every case system's last success and counts, by name."""
    return store.feed_states()
