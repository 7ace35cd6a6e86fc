"""``betrokken node watch``: the drop folder of each feeding system, read without a person in
between (docs/adr/0036, docs/operator.md 'Feeds').

Each system with a ``drop_folder`` in ``[[feeds]]`` of node.toml gets its nightly full export
there. A file is picked up when it is complete: its name ends in ``.csv`` or ``.xlsx`` (not
``.tmp``, ``.part``, a hidden or an Office lock file) and it has not changed for
``stable_seconds``, so an exporter that writes in place is never read half-way (one that writes
under another name and renames the file into place is read after the same wait). The file is
first moved into ``bezig/`` (in progress), imported as the system's whole caseload
(:func:`betrokken.node.feeds.apply_full_export`), and removed; a report (Dutch, then English)
is written to ``verwerkt/``. A file that would end more than ``hold_back_share`` of the
system's registrations is moved to ``wacht-op-beheerder/`` and ends nothing until a beheerder
confirms it in the portal (Feeds); a refusal removes it. A crash anywhere leaves the file in
``bezig/`` (or ``wacht-op-beheerder/``), and the next round finishes it: stored lines are
confirmed again, nothing is counted or ended twice.

The folder holds BSNs for as long as the export lies there: the watcher removes each file as soon
as it is processed, and writes no BSN anywhere (the report names lines by number).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from betrokken.clock import utcnow
from betrokken.config.load import Loaded
from betrokken.config.schema import FeedSystem, NodeConfig
from betrokken.errors import BadInput, BetrokkenError
from betrokken.node import feeds
from betrokken.node.importer import FIELDS, HEADERS, REQUIRED, PseudonymSource
from betrokken.node.store import NodeStore
from betrokken.portal.feeds import ReportFacts, report_text
from betrokken.tabular import ColumnProblem, read_table

log = logging.getLogger("betrokken.node.watch")

SUFFIXES = (".csv", ".xlsx")
BUSY = "bezig"
PROCESSED = "verwerkt"
WAITING = "wacht-op-beheerder"
STABLE_SECONDS = 60.0
INTERVAL_SECONDS = 30.0


def complete_files(folder: Path, now: dt.datetime, stable_seconds: float) -> list[Path]:
    """The files in ``folder`` ready to be read, oldest first: a .csv or .xlsx name (no hidden,
    lock or temporary file) unchanged for ``stable_seconds``."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        name = path.name
        if not path.is_file() or name.startswith((".", "~$")):
            continue
        if not name.lower().endswith(SUFFIXES):
            continue
        changed = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        if (now - changed).total_seconds() < stable_seconds:
            continue  # still being written (or just renamed into place)
        found.append((changed, name, path))
    return [path for _changed, _name, path in sorted(found)]


def safe_name(name: str) -> str:
    """A file name as the watcher keeps it (in its folders, reports and database): letters,
    digits, ``.``, ``-`` and ``_`` only, at most 120 characters, its suffix kept."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:100] or "export"
    ending = re.sub(r"[^A-Za-z0-9]", "_", suffix)[:10]
    return f"{clean}.{ending}" if ending else clean


def _free(folder: Path, name: str, now: dt.datetime) -> Path:
    """A name in ``folder`` not yet taken: ``name``, else with the time before it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        return target
    stamp = now.strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        target = folder / f"{stamp}-{n}-{name}"
        if not target.exists():
            return target
    raise FileExistsError(name)


@dataclass
class Watcher:
    """One node's drop folders; :meth:`round` does one pass over all of them."""

    loaded: Loaded[NodeConfig]
    store: NodeStore
    pseudonyms: PseudonymSource
    clock: Callable[[], dt.datetime] = utcnow
    stable_seconds: float = STABLE_SECONDS

    def systems(self) -> Iterator[tuple[FeedSystem, Path]]:
        for system in self.loaded.component.feeds:
            if system.drop_folder is not None:
                yield system, self.loaded.resolve(str(system.drop_folder))

    def round(self) -> int:
        """Process what is ready in every drop folder; returns how many files were handled."""
        handled = 0
        for system, folder in self.systems():
            handled += self._decisions(system, folder)
            busy = folder / BUSY
            left = sorted(busy.iterdir()) if busy.is_dir() else []  # a previous round's, first
            for path in left:
                if path.is_file():
                    self._process(system, folder, path, share=system.hold_back_share)
                    handled += 1
            self._orphans(system, folder)
            for path in complete_files(folder, self.clock(), self.stable_seconds):
                claimed = _free(busy, safe_name(path.name), self.clock())
                path.rename(claimed)  # atomic: the exporter cannot replace it under us
                self._process(system, folder, claimed, share=system.hold_back_share)
                handled += 1
        return handled

    # --- one file -----------------------------------------------------------------------------
    def _registrar(self, system: FeedSystem) -> feeds.FeedRegistrar:
        network = self.loaded.network
        org = network.organisation(self.loaded.component.organisation)
        assert org is not None
        return feeds.FeedRegistrar(
            network, org, self.store, self.pseudonyms, system.name, clock=self.clock
        )

    def _process(
        self,
        system: FeedSystem,
        folder: Path,
        path: Path,
        *,
        share: float | None,
        decided_by: str = "",
    ) -> None:
        now = self.clock()
        name = path.name
        try:
            table = read_table(
                path.read_bytes(),
                name,
                FIELDS,
                required=REQUIRED,
                mapping=self.loaded.component.import_.columns,
                headers=HEADERS,
            )
        except (ColumnProblem, BadInput) as exc:
            facts = ReportFacts(system.name, name, now, "unreadable", failure=exc.message)
            self._report(folder, facts)
            feeds.record_feed_event(
                self.store,
                system.name,
                feeds.FeedEvent.FAILED,
                at=now,
                source=name,
                problem=f"{feeds.UNREADABLE}: {exc.message}",
            )
            path.unlink()
            log.warning("feed %s: %s could not be read (%s)", system.name, name, exc.message)
            return
        try:
            done = feeds.apply_full_export(self._registrar(system), table, share)
        except BetrokkenError as exc:  # the key service or database away: the next round
            feeds.record_feed_event(
                self.store,
                system.name,
                feeds.FeedEvent.FAILED,
                at=now,
                source=name,
                problem=exc.message,
            )
            raise
        summary = done.summary
        facts = ReportFacts(
            system.name,
            name,
            self.clock(),
            "held" if done.held else "confirmed" if decided_by else "applied",
            added=summary.added,
            updated=summary.updated,
            unchanged=summary.unchanged,
            kept_withdrawn=summary.kept_withdrawn,
            ended=done.ended,
            ending=done.ending,
            holding=done.holding,
            share=system.hold_back_share,
            skipped=done.skipped,
            decided_by=decided_by,
            problems=summary.problems,
        )
        if done.held:
            waiting = _free(folder / WAITING, name, now)
            path.rename(waiting)
            feeds.hold_file(self.store, system.name, waiting.name, done.ending, done.holding, now)
            feeds.record_feed_event(
                self.store,
                system.name,
                feeds.FeedEvent.HELD,
                at=now,
                source=name,
                refused=summary.rejected,
                problem=feeds.HELD_BACK,
            )
            self._report(folder, facts)
            log.warning(
                "feed %s: %s would end %d of %d registrations; held back for a beheerder",
                system.name,
                name,
                done.ending,
                done.holding,
            )
            return
        feeds.record_feed_event(
            self.store,
            system.name,
            feeds.FeedEvent.SUCCESS,
            at=self.clock(),
            source=name,
            added=summary.added,
            confirmed=summary.updated + summary.unchanged,
            ended=done.ended,
            refused=summary.rejected,
            problem=done.skipped,
        )
        self._report(folder, facts)
        path.unlink()
        self._supersede(system, folder)
        log.info(
            "feed %s: %s processed (%s, %d ended)", system.name, name, summary.counts(), done.ended
        )

    def _report(self, folder: Path, facts: ReportFacts) -> None:
        stamp = facts.at.strftime("%Y%m%dT%H%M%SZ")
        target = _free(folder / PROCESSED, f"{stamp}-{facts.file_name}.rapport.txt", facts.at)
        partial = target.with_name(target.name + ".tmp")
        partial.write_text(report_text(facts), encoding="utf-8")
        partial.replace(target)

    # --- held files -----------------------------------------------------------------------------
    def _decisions(self, system: FeedSystem, folder: Path) -> int:
        """Apply a beheerder's confirmation, or discard a refused file."""
        handled = 0
        for held in feeds.held_files(self.store):
            if held.system != system.name or held.decision is None:
                continue
            path = folder / WAITING / held.file_name
            now = self.clock()
            if not path.is_file():
                log.warning("feed %s: the held file %s is gone", system.name, held.file_name)
            elif held.decision == feeds.CONFIRM:
                claimed = _free(folder / BUSY, held.file_name, now)
                feeds.held_done(self.store, held.id, now)
                # A crash from here on leaves the file in bezig/ without its confirmation: it is
                # read again and, ending as much, held again (never ended unconfirmed).
                path.rename(claimed)
                self._process(system, folder, claimed, share=None, decided_by=held.decided_by or "")
                handled += 1
                continue
            else:
                facts = ReportFacts(
                    system.name,
                    held.file_name,
                    now,
                    "refused",
                    ending=held.ending,
                    holding=held.holding,
                    decided_by=held.decided_by or "",
                )
                self._report(folder, facts)
                path.unlink()
                feeds.record_feed_event(
                    self.store,
                    system.name,
                    feeds.FeedEvent.REFUSED,
                    at=now,
                    source=held.file_name,
                    problem=feeds.REFUSED_BY_BEHEERDER,
                )
            feeds.held_done(self.store, held.id, now)
            handled += 1
        return handled

    def _supersede(self, system: FeedSystem, folder: Path) -> None:
        """A newer full export went through: files of this system still waiting are stale."""
        for held in feeds.held_files(self.store):
            if held.system != system.name or held.decision is not None:
                continue
            now = self.clock()
            path = folder / WAITING / held.file_name
            if path.is_file():
                path.unlink()
            self._report(
                folder,
                ReportFacts(
                    system.name,
                    held.file_name,
                    now,
                    "superseded",
                    ending=held.ending,
                    holding=held.holding,
                ),
            )
            feeds.held_done(self.store, held.id, now)

    def _orphans(self, system: FeedSystem, folder: Path) -> None:
        """A file in wacht-op-beheerder/ without its record (a crash between the two): read it
        again from bezig/."""
        waiting = folder / WAITING
        if not waiting.is_dir():
            return
        known = {h.file_name for h in feeds.held_files(self.store) if h.system == system.name}
        for path in sorted(waiting.iterdir()):
            if path.is_file() and path.name not in known:
                path.rename(_free(folder / BUSY, path.name, self.clock()))

    def loop(self, interval: float, stop: threading.Event) -> None:
        while True:
            try:
                self.round()
            except BetrokkenError as exc:  # the key service gone, the database: try again
                log.warning("watch: %s; will try again", exc.message)
            except OSError as exc:
                log.warning("watch: %s; will try again", exc)
            if stop.wait(interval):
                return


def watch(
    loaded: Loaded[NodeConfig],
    *,
    once: bool,
    interval: float = INTERVAL_SECONDS,
    stable_seconds: float = STABLE_SECONDS,
    stop: threading.Event | None = None,
) -> int:
    """Watch the node's drop folders (``once``: one round). Returns the files handled."""
    from betrokken.keyservice.client import Pseudonymiser
    from betrokken.node.server import open_anchored_store, refresh_anchor

    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None
    store = open_anchored_store(loaded)
    try:
        with Pseudonymiser(loaded.network, loaded.tls, org.id) as pseudonymiser:
            watcher = Watcher(loaded, store, pseudonymiser, stable_seconds=stable_seconds)
            if once:
                return watcher.round()
            watcher.loop(interval, stop or threading.Event())
            return 0
    finally:
        try:
            refresh_anchor(loaded, store)
        finally:
            store.engine.dispose()
