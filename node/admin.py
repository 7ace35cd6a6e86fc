"""The node's administration for the organisation's beheerder pages (the portal): what
``betrokken node status`` reads, and ``betrokken node import`` of a table already in memory.

The one door from the portal into the node's own store (pyproject.toml, import contracts): the
portal's beheerder pages run beside the node, with access to its database, as the node's
commands do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from betrokken.audit.witness import Accepted
from betrokken.config.load import Loaded
from betrokken.config.schema import NodeConfig
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.node import feeds
from betrokken.node.feeds import CONFIRM, REFUSE, FeedHealth, HeldFile
from betrokken.node.importer import FIELDS, HEADERS, REQUIRED, ImportSummary, Registrar
from betrokken.node.server import open_anchored_store, open_store, open_witness, refresh_anchor
from betrokken.node.store import ENDING_SOON_DAYS, Status
from betrokken.tabular import Table

__all__ = [
    "CONFIRM",
    "ENDING_SOON_DAYS",
    "FIELDS",
    "HEADERS",
    "REFUSE",
    "REQUIRED",
    "FeedHealth",
    "Held",
    "HeldFile",
    "ImportSummary",
    "NodeFacts",
]


@dataclass(frozen=True)
class NodeFacts:
    status: Status
    witnessed: Accepted | None
    alarms: int
    trail_size: int
    stale_keys: bool


def node_facts(loaded: Loaded[NodeConfig], today: dt.date) -> NodeFacts:
    """The node's registrations (counts only), its witness of the coordinator's log, its alarms."""
    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None  # load_node checked it
    store = open_store(loaded)
    try:
        status = store.status(today)
        witness = open_witness(store)
        return NodeFacts(
            status=status,
            witnessed=witness.last(),
            alarms=sum(a.count for a in witness.alarms()),
            trail_size=store.trail.size(),
            stale_keys=any(k != org.pseudonym_key_id for k in status.key_ids),
        )
    finally:
        store.engine.dispose()


@dataclass(frozen=True)
class Held:
    """One active registration about a person, for the DPO's access-request letter."""

    since: dt.date
    domain: str
    contact: str
    advice: str | None


def held_about(loaded: Loaded[NodeConfig], pseudonym: Pseudonym, today: dt.date) -> list[Held]:
    """The organisation's active registrations under its own pseudonym of one person, as the
    node holds them now (its registrations, not its trail)."""
    store = open_store(loaded)
    try:
        hits = store.find([pseudonym], today)
    finally:
        store.engine.dispose()
    return [Held(h.since, h.domain, h.contact, h.advice) for h in hits.values()]


def import_table(
    loaded: Loaded[NodeConfig],
    table: Table,
    summary: ImportSummary,
    *,
    actor: str,
    sync: bool,
    progress: Callable[[int], None],
    force: bool = False,
) -> None:
    """The node's import of ``table`` (as ``betrokken node import``), ``actor`` in its trail; a
    sync that would end more than ``sync_guard_share`` of the active registrations stops
    (:class:`~betrokken.errors.SyncGuarded`) unless ``force``."""
    from betrokken.keyservice.client import Pseudonymiser

    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None
    store = open_anchored_store(loaded)
    try:
        pseudonymiser = Pseudonymiser(loaded.network, loaded.tls, org.id)
        registrar = Registrar(loaded.network, org, store, pseudonymiser, actor=actor)
        with pseudonymiser:
            registrar.import_table(
                table,
                summary,
                sync=sync,
                progress=progress,
                guard_share=None if force else loaded.component.sync_guard_share,
            )
    finally:
        try:
            refresh_anchor(loaded, store)
        finally:
            store.engine.dispose()


def feed_overview(
    loaded: Loaded[NodeConfig], now: dt.datetime
) -> tuple[list[FeedHealth], list[HeldFile]]:
    """Each configured feeding system's health, and the full exports held back for a beheerder
    (docs/operator.md, 'Feeds')."""
    store = open_store(loaded)
    try:
        return feeds.feed_health(store, loaded.component.feeds, now), feeds.held_files(store)
    finally:
        store.engine.dispose()


def decide_held(
    loaded: Loaded[NodeConfig], held_id: int, decision: str, user: str, now: dt.datetime
) -> HeldFile:
    """A beheerder confirms or refuses a held-back export (recorded in the trail); the watcher
    (`betrokken node watch`) then applies or discards it. Raises ``LookupError`` when the file is
    not waiting for a decision."""
    store = open_store(loaded)
    try:
        return feeds.decide(store, held_id, decision, user, now)
    finally:
        store.engine.dispose()
