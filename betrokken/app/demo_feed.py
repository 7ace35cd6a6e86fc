"""The demo's registration-API step: a case system feeds one node through the API, and a partner
asks about the person it registered (docs/integration.md, ADR 0035).

:func:`enable_feed` lists a case system in the node's node.toml before the network starts (only
the SHA-256 of its secret goes there; the secret stays in this process's memory);
:func:`feed_step` registers a person through the HTTPS gateway as the system would, with an
access token and an idempotency key, and sends the same call again to show that a retry changes
nothing.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from betrokken.app.devnet import DevNetwork
from betrokken.crypto.bsn import Bsn

SYSTEM = "wijkteam-systeem"


@dataclass(frozen=True)
class Feed:
    org: str
    url: str
    ca: Path
    secret: str


def enable_feed(net: DevNetwork, org: str) -> Feed:
    """List the demo's case system in ``org``'s node.toml, with the API on a free loopback port."""
    from betrokken.node.feeds_api import secret_sha256

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    secret = secrets.token_urlsafe(24)
    config = net.node_configs[org]
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            "\n# The gemeente's wijkteam system feeds registrations through the API "
            "(docs/integration.md).\n"
            f'[[feeds]]\nname = "{SYSTEM}"\ntoken_sha256 = "{secret_sha256(secret)}"\n'
            f'\n[feed_api]\nlisten = "127.0.0.1:{port}"\n'
        )
    return Feed(org, f"https://127.0.0.1:{port}", net.directory / "ca" / "ca.crt", secret)


def feed_step(out: Callable[[str], None], feed: Feed, person: Bsn) -> bool:
    """Register ``person`` at ``feed.org`` through the API (twice, the same call); True when the
    first call added it and the retry answered the same without changing anything."""
    say = out
    with httpx.Client(base_url=feed.url, verify=str(feed.ca), timeout=60) as client:
        token = client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": SYSTEM,
                "client_secret": feed.secret,
            },
        )
        if token.status_code != 200:
            say(f"   token refused: {token.status_code} {token.text[:200]}")
            return False
        headers = {
            "Authorization": f"Bearer {token.json()['access_token']}",
            "Idempotency-Key": "demo-wijkteam-0001",
        }
        body = {"bsn": person.digits, "reference": "WT-2026-0311"}
        say(f"$ POST {feed.url}/v1/registrations/register  (BSN {person.masked()} in the body)")
        first = client.post("/v1/registrations/register", json=body, headers=headers)
        say(f"  {first.status_code} {first.text}")
        again = client.post("/v1/registrations/register", json=body, headers=headers)
        say(f"  retried with the same Idempotency-Key: {again.status_code} {again.text}")
    return (
        first.status_code == 200
        and first.json().get("outcome") == "added"
        and again.json() == first.json()
    )
