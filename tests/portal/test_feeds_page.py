"""The beheerder's feeds page: each feeding system's health, and a held-back export that only a
beheerder's confirmation (a form with the CSRF token, recorded in the trail) lets end anything."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from betrokken.app.devnet import DevNetwork
from betrokken.app.feedwatch import WAITING, Watcher
from betrokken.audit.access import with_entries
from betrokken.config.load import load_node, load_portal
from betrokken.crypto.bsn import Bsn
from betrokken.node import feeds
from betrokken.node.server import open_store
from betrokken.node.store import NodeStore
from betrokken.portal.app import build_portal, create_app
from tests.cli import invoke
from tests.conftest import LocalPseudonymiser
from tests.node.test_feeds import _node_toml, _people
from tests.portal.conftest import PASSWORD, PortalAccount, PortalClock


@dataclass
class FeedPortal:
    client: TestClient
    clock: PortalClock
    beheerder: PortalAccount
    store: NodeStore
    watcher: Watcher
    folder: Path
    pseudonyms: LocalPseudonymiser

    def log_in(self) -> None:
        page = self.client.get("/inloggen")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token, page.text
        done = self.client.post(
            "/inloggen",
            data={
                "csrf": token.group(1),
                "gebruikersnaam": self.beheerder.name,
                "wachtwoord": PASSWORD,
                "code": self.beheerder.code(self.clock),
            },
            follow_redirects=True,
        )
        assert "Uitloggen" in done.text, done.text

    def drop(self, people: list[Bsn], name: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        rows = [f"{p.digits};01-09-2026" for p in people]
        path.write_text("BSN;Startdatum\n" + "\n".join(rows) + "\n", encoding="utf-8")
        old = (self.watcher.clock() - dt.timedelta(minutes=5)).timestamp()
        os.utime(path, (old, old))

    def found(self, people: list[Bsn]) -> int:
        today = self.watcher.clock().date()
        return len(self.store.find(self.pseudonyms.pseudonymise(people), today))


@pytest.fixture
def feed_portal(devnet: DevNetwork, tmp_path: Path) -> Iterator[FeedPortal]:
    original = load_node(devnet.node_configs["politie-test"])
    folder = tmp_path / "gcos"
    node_toml = _node_toml(
        devnet,
        tmp_path,
        f'[[feeds]]\nname = "gcos"\ndrop_folder = "{folder}"\nquiet_after_minutes = 1560\n',
        top=f'question_key = "{original.resolve(original.component.question_key or "")}"\n'
        f'envelope_key = "{original.resolve(original.component.envelope_key or "")}"\n',
    )
    secret = Path(devnet.portal_configs["politie-test"]).parent / "portal-session.key"
    portal_toml = tmp_path / "portal.toml"
    portal_toml.write_text(
        f'node = "{node_toml}"\nlisten = "127.0.0.1:7999"\nsession_secret = "{secret}"\n',
        encoding="utf-8",
    )
    added = invoke(
        "portal", "user", "add", "--config", portal_toml, "b.feeds", "--role", "beheerder",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.code == 0, added.output
    code = next(line.split()[2] for line in added.stdout.splitlines() if "TOTP secret:" in line)
    loaded = load_portal(portal_toml)
    store = open_store(loaded.node)
    pseudonyms = LocalPseudonymiser()
    watcher = Watcher(loaded.node, store, pseudonyms, stable_seconds=60)
    clock = PortalClock()
    state = build_portal(loaded, clock)
    with TestClient(create_app(state), base_url="http://127.0.0.1") as client:
        yield FeedPortal(
            client,
            clock,
            PortalAccount("b.feeds", "beheerder", PASSWORD, code),
            store,
            watcher,
            folder,
            pseudonyms,
        )
    state.trail.engine.dispose()
    store.engine.dispose()


def test_a_held_back_export_ends_registrations_only_after_a_beheerder_confirms_it_on_the_page(
    feed_portal: FeedPortal,
) -> None:
    people = _people(20, seed=23)
    feed_portal.drop(people, "export-1.csv")
    feed_portal.watcher.round()
    feed_portal.drop(people[:10], "export-2.csv")
    feed_portal.watcher.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    feed_portal.watcher.round()
    assert (feed_portal.folder / WAITING / "export-2.csv").exists()
    feed_portal.log_in()
    page = feed_portal.client.get("/beheer/feeds")
    assert page.status_code == 200
    assert "Aanleveringen" in page.text and "Wacht op uw besluit" in page.text
    assert "export-2.csv" in page.text and "10 van de 20" in page.text
    assert "Laatst gelukt" in page.text  # the system's health
    status = feed_portal.client.get("/beheer/status")
    assert "Aanleveringen die aandacht nodig hebben: gcos." in status.text
    [held] = feeds.held_files(feed_portal.store)

    # without the form's token nothing is decided
    refused = feed_portal.client.post(
        "/beheer/feeds", data={"bestand": str(held.id), "besluit": "confirm"}
    )
    assert refused.status_code in (400, 403)
    assert feeds.held_files(feed_portal.store)[0].decision is None
    feed_portal.watcher.round()
    assert feed_portal.found(people) == 20

    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert token
    confirmed = feed_portal.client.post(
        "/beheer/feeds",
        data={"csrf": token.group(1), "bestand": str(held.id), "besluit": "confirm"},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    after = feed_portal.client.get(confirmed.headers["location"])
    assert "Bevestigd door b.feeds" in after.text
    records = [e for _, e in with_entries(feed_portal.store.trail.records()) if e is not None]
    assert [(r.user, r.details.get("file")) for r in records if "held back" in r.reason] == [
        ("b.feeds", "export-2.csv")
    ]
    assert feed_portal.found(people) == 20  # the page decides; the watcher ends
    feed_portal.watcher.round()
    assert feed_portal.found(people[:10]) == 10 and feed_portal.found(people[10:]) == 0
    page = feed_portal.client.get("/beheer/feeds")
    assert "Wacht op uw besluit" not in page.text
    again = feed_portal.client.post(
        "/beheer/feeds",
        data={"csrf": token.group(1), "bestand": str(held.id), "besluit": "refuse"},
    )
    assert again.status_code == 409 and "wacht niet meer op een besluit" in again.text
