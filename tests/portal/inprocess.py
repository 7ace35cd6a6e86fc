"""The portal's application in this test's process (through its ASGI interface) on the running
network, with a clock of its own: for page tests that need no browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from betrokken.config.load import load_portal
from betrokken.portal.app import build_portal, create_app
from betrokken.portal.web import Portal
from tests.portal.conftest import PortalAccount, PortalClock, PortalRun

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass
class InProcess:
    portal: Portal
    client: TestClient
    run: PortalRun
    clock: PortalClock

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    def log_in(self, user: PortalAccount, *, fresh: bool = True) -> Any:
        """Log ``user`` in through the login form (``fresh``: as a new visitor, no cookie)."""
        if fresh:
            self.client.cookies.clear()
        done = self.client.post(
            "/inloggen",
            data={
                "csrf": self.csrf("/inloggen"),
                "gebruikersnaam": user.name,
                "wachtwoord": user.password,
                "code": user.code(self.clock),
            },
            follow_redirects=True,
        )
        assert "Uitloggen" in done.text, done.text
        return done


@pytest.fixture
def inprocess(portal: PortalRun) -> Iterator[InProcess]:
    clock = PortalClock()
    state = build_portal(load_portal(portal.config), clock)
    with TestClient(create_app(state), base_url="http://127.0.0.1") as client:
        yield InProcess(state, client, portal, clock)
    state.trail.engine.dispose()
