"""Logging in through the organisation's identity provider (OpenID Connect), in a real browser,
against a real provider on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from betrokken.app.demo import ZVH
from betrokken.app.devnet import find_ports
from tests.portal.conftest import PortalRun, follow, page_text, trail_entries
from tests.portal.idp import IdentityProvider, running_provider


@pytest.fixture(scope="module")
def oidc_portal(portal: PortalRun) -> Iterator[tuple[str, IdentityProvider]]:
    node_dir = portal.config.parent
    provider = IdentityProvider(
        client_id="betrokken-portal", client_secret="s3cret-for-tests-only", redirect_uri=""
    )
    with running_provider(provider):  # listening now, so its port is not free any more
        port = find_ports(1, None)[0]
        provider.redirect_uri = f"http://127.0.0.1:{port}/inloggen/oidc/terug"
        (node_dir / "oidc-client.secret").write_text(provider.client_secret + "\n")
        config = node_dir / "portal-oidc.toml"
        config.write_text(
            "\n".join(
                [
                    'node = "node.toml"',
                    f'listen = "127.0.0.1:{port}"',
                    'session_secret = "portal-session.key"',
                    "local_accounts = false",
                    "[oidc]",
                    f'issuer = "{provider.issuer}"',
                    f'client_id = "{provider.client_id}"',
                    'client_secret_file = "oidc-client.secret"',
                    f'redirect_uri = "{provider.redirect_uri}"',
                    'button_label = "Inloggen met uw ZVH-account"',
                    "",
                ]
            )
        )
        url = portal.running.cluster.start_portal(ZVH, config, name="portal-oidc")
        try:
            yield url, provider
        finally:
            portal.running.cluster.stop_process("portal-oidc")


def _trail_users(config: Path, event: str) -> list[tuple[str, str, str]]:
    return [
        (entry.user, entry.role, entry.details.get("method", ""))
        for entry in trail_entries(config)
        if entry.event.value == event
    ]


def test_a_regisseur_logs_in_through_the_identity_provider_with_the_roles_it_gives(
    oidc_portal: tuple[str, IdentityProvider], portal: PortalRun, browser: Any
) -> None:
    url, provider = oidc_portal
    provider.person = {
        "preferred_username": "m.peters@zvh.example.nl",
        "name": "Marieke Peters",
        "betrokken_roles": ["regisseur"],
    }
    browser.get(url + "/inloggen")
    from selenium.webdriver.common.by import By

    follow(browser, "Inloggen met uw ZVH-account")
    assert browser.current_url.endswith("/vraag")
    assert "Ingelogd als Marieke Peters" in browser.find_element(By.TAG_NAME, "header").text
    assert "Vraag over een persoon" in page_text(browser)
    assert ("m.peters@zvh.example.nl", "regisseur", "oidc") in _trail_users(portal.config, "login")


def test_a_token_signed_with_a_key_the_provider_does_not_publish_is_refused(
    oidc_portal: tuple[str, IdentityProvider], portal: PortalRun, browser: Any
) -> None:
    url, provider = oidc_portal
    provider.person = {"preferred_username": "indringer", "betrokken_roles": ["dpo"]}
    provider.sign_with = RSAKey.generate_key(2048, {"kid": "k1"})
    try:
        browser.get(url + "/inloggen/oidc")
    finally:
        provider.sign_with = None
    text = page_text(browser)
    assert "Inloggen via uw organisatie is niet gelukt" in text
    assert "Uitloggen" not in browser.page_source
    assert ("", "", "oidc") in _trail_users(portal.config, "login-failed")


def test_an_account_without_a_portal_role_is_refused(
    oidc_portal: tuple[str, IdentityProvider], browser: Any
) -> None:
    url, provider = oidc_portal
    provider.person = {"preferred_username": "stagiair", "betrokken_roles": []}
    browser.get(url + "/inloggen/oidc")
    assert "has no portal role" in page_text(browser) or "geen rol" in page_text(browser)
