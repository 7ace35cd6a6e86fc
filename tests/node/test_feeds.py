"""Feeds without a person in between: a case system's drop folder read as its whole caseload, held
back when it would end too much, and each system's health (docs/adr/0036)."""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from betrokken.app.devnet import DevNetwork
from betrokken.app.feedwatch import BUSY, PROCESSED, WAITING, Watcher
from betrokken.audit.access import with_entries
from betrokken.audit.record import Event
from betrokken.config.load import Loaded, load_node
from betrokken.config.schema import FeedSystem, NodeConfig
from betrokken.crypto.bsn import Bsn, generate_bsn
from betrokken.errors import Unavailable
from betrokken.metrics import node_metrics
from betrokken.node import feeds
from betrokken.node.store import NodeStore
from tests.cli import invoke
from tests.conftest import LocalPseudonymiser

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def _people(n: int, seed: int = 11) -> list[Bsn]:
    rng = random.Random(seed)
    return [generate_bsn(rng) for _ in range(n)]


def _loaded(devnet: DevNetwork, url: str, systems: Sequence[FeedSystem]) -> Loaded[NodeConfig]:
    loaded = load_node(devnet.node_configs["politie-test"])
    component = loaded.component.model_copy(update={"database": url, "feeds": list(systems)})
    return Loaded(loaded.path, component, loaded.network, loaded.tls)


class Feed:
    """One node, its drop folders and a watcher on a clock the test moves."""

    def __init__(
        self,
        devnet: DevNetwork,
        url: str,
        root: Path,
        *systems: FeedSystem,
        pseudonyms: object = None,
    ) -> None:
        self.clock = Clock()
        self.root = root
        self.systems = systems or (FeedSystem(name="gcos", drop_folder=root / "gcos"),)
        self.loaded = _loaded(devnet, url, self.systems)
        self.store = NodeStore(url)
        self.pseudonyms = LocalPseudonymiser()
        self.watcher = Watcher(
            self.loaded, self.store, self.pseudonyms, clock=self.clock, stable_seconds=60
        )

    def folder(self, system: str = "gcos") -> Path:
        found = next(s for s in self.systems if s.name == system)
        assert found.drop_folder is not None
        return found.drop_folder

    def drop(self, people: Sequence[Bsn], name: str = "export.csv", system: str = "gcos") -> Path:
        """An export as the case system writes it, finished two minutes ago."""
        folder = self.folder(system)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        lines = ["Zaaknummer;BSN;Startdatum"]
        lines += [f"Z-{i};{p.digits};01-09-2026" for i, p in enumerate(people)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        finished = (self.clock() - dt.timedelta(minutes=2)).timestamp()
        os.utime(path, (finished, finished))
        return path

    def found(self, people: Sequence[Bsn]) -> int:
        return len(self.store.find(self.pseudonyms.pseudonymise(list(people)), TODAY))

    def reports(self, system: str = "gcos") -> list[str]:
        folder = self.folder(system) / PROCESSED
        written = sorted(folder.glob("*.rapport.txt"), key=lambda p: p.stat().st_mtime_ns)
        return [p.read_text("utf-8") for p in written]

    def trail(self) -> list[object]:
        return [e for _, e in with_entries(self.store.trail.records()) if e is not None]


@pytest.fixture
def feed(devnet: DevNetwork, database_url: str, tmp_path: Path) -> Feed:
    return Feed(devnet, database_url, tmp_path)


def test_a_complete_export_in_the_drop_folder_is_imported_reported_in_dutch_and_english_and_removed(
    feed: Feed,
) -> None:
    people = _people(3)
    path = feed.drop(people)
    assert feed.watcher.round() == 1
    assert not path.exists() and not any((feed.folder() / BUSY).iterdir())
    assert feed.found(people) == 3
    [report] = feed.reports()
    dutch, english = report.split("-" * 60)
    assert "Systeem: gcos" in dutch and "Toegevoegd: 3" in dutch and "Beëindigd" in dutch
    assert "System: gcos" in english and "Added: 3" in english
    assert not any(p.digits in report for p in people)
    [health] = feeds.feed_health(feed.store, feed.loaded.component.feeds, feed.clock())
    assert health.last_success == NOW and health.last_added == 3 and not health.quiet


def test_the_next_nights_export_confirms_adds_ends_what_it_lacks_and_names_refused_lines(
    feed: Feed,
) -> None:
    people = _people(30)
    feed.drop(people)
    feed.watcher.round()
    feed.clock.advance(days=1)
    kept, gone = people[:28], people[28:]
    newcomer = _people(1, seed=99)
    feed.drop([*kept, *newcomer])
    feed.watcher.round()
    assert feed.found(kept + newcomer) == 29 and feed.found(gone) == 0
    report = feed.reports()[-1]
    assert "Toegevoegd: 1" in report and "Bevestigd: 28" in report
    assert "Beëindigd (niet meer in de export van het systeem): 2" in report
    # a refused line: the file is not known to be whole, so nothing ends
    feed.clock.advance(days=1)
    path = feed.drop(kept[:27])
    path.write_text(path.read_text("utf-8") + "Z-x;123456789;01-09-2026\n", encoding="utf-8")
    finished = (feed.clock() - dt.timedelta(minutes=2)).timestamp()
    os.utime(path, (finished, finished))
    feed.watcher.round()
    assert feed.found(kept + newcomer) == 29
    report = feed.reports()[-1]
    assert "regel 29: BSN voldoet niet aan de elfproef" in report or "regel 29" in report
    assert "niets beëindigd" in report.split("-" * 60)[0]
    [health] = feeds.feed_health(feed.store, feed.loaded.component.feeds, feed.clock())
    assert health.last_refused == 1 and health.refused_total == 1


def test_a_partial_file_is_not_picked_up_until_it_is_complete(feed: Feed) -> None:
    folder = feed.folder()
    folder.mkdir(parents=True)
    people = _people(2)
    for name in ("export.csv.tmp", "export.part", ".export.csv", "~$export.xlsx"):
        feed.drop(people, name)
    writing = feed.drop(people, "nu-bezig.csv")
    os.utime(writing, (feed.clock().timestamp(), feed.clock().timestamp()))  # written just now
    assert feed.watcher.round() == 0
    assert feed.found(people) == 0 and writing.exists()
    feed.clock.advance(seconds=61)  # unchanged for a minute: complete
    assert feed.watcher.round() == 1
    assert feed.found(people) == 2 and not writing.exists()
    assert (folder / "export.csv.tmp").exists() and (folder / "~$export.xlsx").exists()


def test_an_export_that_would_end_more_than_the_share_is_held_and_only_a_confirmation_ends(
    feed: Feed,
) -> None:
    people = _people(20)
    feed.drop(people)
    feed.watcher.round()
    feed.clock.advance(days=1)
    half = people[:10]
    feed.drop(half, "export-partieel.csv")
    feed.watcher.round()
    assert feed.found(people) == 20  # nothing ended
    waiting = feed.folder() / WAITING / "export-partieel.csv"
    assert waiting.exists()
    [held] = feeds.held_files(feed.store)
    assert (held.ending, held.holding, held.decision) == (10, 20, None)
    assert "wacht-op-beheerder" in feed.reports()[-1]
    assert any(getattr(e, "reason", "") == "feed-held-back" for e in feed.trail())
    feed.watcher.round()  # waiting is not deciding
    assert feed.found(people) == 20 and waiting.exists()
    feeds.decide(feed.store, held.id, feeds.CONFIRM, "b.bakker", feed.clock())
    feed.clock.advance(minutes=1)
    feed.watcher.round()
    assert feed.found(half) == 10 and feed.found(people[10:]) == 0
    assert not waiting.exists() and not feeds.held_files(feed.store)
    assert "b.bakker" in feed.reports()[-1]
    decisions = [e for e in feed.trail() if "feed held back" in getattr(e, "reason", "")]
    assert [(d.user, d.details["file"]) for d in decisions] == [  # type: ignore[attr-defined]
        ("b.bakker", "export-partieel.csv")
    ]
    with pytest.raises(LookupError):  # a decision once taken stands
        feeds.decide(feed.store, held.id, feeds.REFUSE, "b.bakker", feed.clock())


def test_a_refused_held_export_ends_nothing_and_is_removed(feed: Feed) -> None:
    people = _people(20)
    feed.drop(people)
    feed.watcher.round()
    feed.clock.advance(days=1)
    feed.drop(people[:5], "export-partieel.csv")
    feed.watcher.round()
    [held] = feeds.held_files(feed.store)
    feeds.decide(feed.store, held.id, feeds.REFUSE, "b.bakker", feed.clock())
    feed.watcher.round()
    assert feed.found(people) == 20
    assert not any((feed.folder() / WAITING).iterdir())
    assert "Geweigerd door een beheerder (b.bakker)" in feed.reports()[-1]


def test_a_system_ends_only_what_it_fed_and_what_another_system_holds_stays(
    devnet: DevNetwork, database_url: str, tmp_path: Path
) -> None:
    gcos = FeedSystem(name="gcos", drop_folder=tmp_path / "gcos", hold_back_share=1.0)
    wijk = FeedSystem(name="wijkteam", drop_folder=tmp_path / "wijk", hold_back_share=1.0)
    feed = Feed(devnet, database_url, tmp_path, gcos, wijk)
    p1, p2, p3, p4 = _people(4)
    feed.drop([p1, p2], system="gcos")
    feed.drop([p2, p3], system="wijkteam")
    feed.watcher.round()
    # registered by hand: no system holds it
    from betrokken.node.importer import Registrar, details

    org = feed.loaded.network.organisation("politie-test")
    assert org is not None
    by_hand = Registrar(feed.loaded.network, org, feed.store, feed.pseudonyms, clock=feed.clock)
    by_hand.register(p4, details(feed.loaded.network, org, today=TODAY))
    feed.clock.advance(days=1)
    feed.drop([p1], system="gcos")
    feed.watcher.round()
    assert feed.found([p1, p2, p3, p4]) == 4  # p2 is still held by the wijkteam system
    feed.clock.advance(days=1)
    feed.drop([p3], system="wijkteam")
    feed.watcher.round()
    assert feed.found([p1, p3, p4]) == 3 and feed.found([p2]) == 0


def test_a_crash_mid_import_leaves_no_half_state_and_the_next_round_finishes_it(
    devnet: DevNetwork, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("betrokken.node.importer.BATCH", 10)  # batches of 10 lines
    feed = Feed(devnet, database_url, tmp_path)
    people = _people(45)
    feed.drop(people)
    feed.watcher.round()
    feed.clock.advance(days=1)
    stays, leaves = people[:42], people[42:]

    class KeyServiceGoneAfterOneBatch(LocalPseudonymiser):
        calls = 0

        def pseudonymise(self, bsns: Sequence[Bsn]) -> list:  # type: ignore[type-arg]
            self.calls += 1
            if self.calls > 1:
                raise Unavailable("the key service went away")
            return super().pseudonymise(bsns)

    feed.watcher.pseudonyms = KeyServiceGoneAfterOneBatch()
    newcomers = _people(3, seed=77)
    feed.drop(newcomers + stays)
    with pytest.raises(Unavailable):
        feed.watcher.round()
    assert feed.found(newcomers) == 3  # the first batch is stored ...
    assert feed.found(leaves) == 3  # ... and nothing ended half-way
    assert [p.name for p in (feed.folder() / BUSY).iterdir()] == ["export.csv"]
    [health] = feeds.feed_health(feed.store, feed.loaded.component.feeds, feed.clock())
    assert health.last_event == "failed" and health.last_problem == "the key service went away"
    feed.watcher.pseudonyms = feed.pseudonyms
    assert feed.watcher.round() == 1
    assert feed.found(stays + newcomers) == 45 and feed.found(leaves) == 0
    assert not any((feed.folder() / BUSY).iterdir())
    report = feed.reports()[-1]
    assert "Beëindigd (niet meer in de export van het systeem): 3" in report
    assert "Toegevoegd: 0" in report  # the newcomers were stored by the round that crashed


def test_a_quiet_feed_raises_one_alarm_per_quiet_spell_and_shows_in_the_metrics(
    devnet: DevNetwork, database_url: str, tmp_path: Path
) -> None:
    system = FeedSystem(name="gcos", drop_folder=tmp_path / "gcos", quiet_after_minutes=60)
    feed = Feed(devnet, database_url, tmp_path, system)
    configured = feed.loaded.component.feeds
    assert feeds.raise_quiet_alarms(feed.store, configured, NOW) == []  # first look: known now
    assert feeds.raise_quiet_alarms(feed.store, configured, NOW + dt.timedelta(minutes=59)) == []
    later = NOW + dt.timedelta(minutes=61)
    [alarmed] = feeds.raise_quiet_alarms(feed.store, configured, later)
    assert alarmed.system == "gcos" and alarmed.quiet
    assert feeds.raise_quiet_alarms(feed.store, configured, later) == []  # once per spell
    alarms = [e for e in feed.trail() if getattr(e, "event", None) is Event.ALARM]
    assert [a.reason for a in alarms] == ["feed-quiet"]  # type: ignore[attr-defined]

    metrics = node_metrics(
        feed.loaded.network, lambda: feeds.feed_figures(feed.store, configured, later)
    )
    text = generate_latest(metrics.registry).decode()
    assert 'betrokken_node_feed_quiet{system="gcos"} 1.0' in text
    assert 'betrokken_node_feed_last_success_timestamp_seconds{system="gcos"} 0.0' in text

    feed.clock.now = later
    feed.drop(_people(2))
    feed.watcher.round()  # a success ends the spell
    assert feeds.raise_quiet_alarms(feed.store, configured, later) == []
    metrics = node_metrics(  # a new scrape (the figures are cached for a few seconds)
        feed.loaded.network, lambda: feeds.feed_figures(feed.store, configured, later)
    )
    text = generate_latest(metrics.registry).decode()
    assert 'betrokken_node_feed_quiet{system="gcos"} 0.0' in text
    again = later + dt.timedelta(minutes=61)
    assert [h.system for h in feeds.raise_quiet_alarms(feed.store, configured, again)] == ["gcos"]


def _node_toml(devnet: DevNetwork, tmp_path: Path, feeds_toml: str, top: str = "") -> Path:
    """politie-test's node.toml with a database of its own, ``top`` (keys before the tables) and
    ``feeds_toml`` added."""
    loaded = load_node(devnet.node_configs["politie-test"])
    path = tmp_path / "node.toml"
    path.write_text(
        f'network = "{devnet.network_file}"\n'
        'organisation = "politie-test"\n'
        f'database = "sqlite:///{tmp_path / "node.db"}"\n'
        f'log_key = "{loaded.resolve(loaded.component.log_key)}"\n'
        f'state_file = "{tmp_path / "node.state"}"\n' + top + "[tls]\n"
        f'certificate = "{loaded.tls.certificate}"\n'
        f'private_key = "{loaded.tls.private_key}"\n'
        f'ca = "{loaded.tls.ca}"\n' + feeds_toml,
        encoding="utf-8",
    )
    return path


def test_node_status_and_the_doctor_warn_of_a_quiet_feed_and_of_a_held_back_export(
    devnet: DevNetwork, tmp_path: Path
) -> None:
    config = _node_toml(
        devnet,
        tmp_path,
        '[[feeds]]\nname = "gcos"\ndrop_folder = "gcos"\nquiet_after_minutes = 60\n'
        '[[feeds]]\nname = "wijkteam"\n',
    )
    loaded = load_node(config)
    store = NodeStore(loaded.component.database)
    try:
        two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        feeds.feed_health(store, loaded.component.feeds, two_hours_ago)  # first look, then quiet
        feeds.hold_file(store, "wijkteam", "export.csv", 40, 100, two_hours_ago)
    finally:
        store.engine.dispose()
    status = invoke("node", "status", "--config", config)
    assert "WARNING: gcos is quiet for 120 min" in status.stdout, status.output
    assert "WARNING: 1 export(s) of wijkteam held back" in status.stdout
    doctor = invoke("doctor", "--config", config)
    assert "feed gcos" in doctor.stdout and "no successful feed for 120 minutes" in doctor.stdout
    assert "the drop folder" in doctor.stdout  # gcos/ does not exist yet
    assert "1 export(s) held back" in doctor.stdout


def test_a_feed_config_is_closed_by_default_and_two_systems_cannot_share_a_name_or_folder(
    devnet: DevNetwork, tmp_path: Path
) -> None:
    from betrokken.errors import ConfigError

    plain = load_node(_node_toml(devnet, tmp_path, ""))
    assert plain.component.feeds == []
    one = FeedSystem(name="gcos")
    assert (one.drop_folder, one.quiet_after_minutes, one.hold_back_share) == (None, None, 0.10)
    twice = (
        '[[feeds]]\nname = "gcos"\ndrop_folder = "a"\n[[feeds]]\nname = "ggz"\ndrop_folder = "a"\n'
    )
    with pytest.raises(ConfigError, match="drop_folder"):
        load_node(_node_toml(devnet, tmp_path, twice))
    same = '[[feeds]]\nname = "gcos"\n[[feeds]]\nname = "gcos"\n'
    with pytest.raises(ConfigError, match="two feeds share a name"):
        load_node(_node_toml(devnet, tmp_path, same))


def test_a_file_name_from_the_folder_is_kept_only_in_a_safe_short_form(feed: Feed) -> None:
    from betrokken.app.feedwatch import safe_name

    assert safe_name("export 2026-12-07.csv") == "export_2026-12-07.csv"
    assert safe_name("x" * 500 + ".xlsx") == "x" * 100 + ".xlsx"
    assert safe_name("\x1b[31mrood\n.csv") == "__31mrood_.csv"
    people = _people(2)
    feed.drop(people, "Export\tnacht " + "z" * 220 + ".csv")
    assert feed.watcher.round() == 1
    assert feed.found(people) == 2
    [report] = feed.reports()
    assert "Bestand: Export_nacht_" in report and "\t" not in report
