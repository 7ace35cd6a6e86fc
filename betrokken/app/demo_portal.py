"""The portal part of ``betrokken demo``: a portal per organisation, demo accounts, and one
question asked through the ZVH's portal over HTTP, as a browser would (log in with password and
TOTP code, ask, read the answer)."""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pyotp

from betrokken.app.cluster import Cluster, betrokken_command
from betrokken.crypto.bsn import Bsn

Out = Callable[[str], None]

# (organisation, account, roles): the asking organisations get a regisseur; the ZVH every role.
ACCOUNTS = (
    ("zvh-kennemerland", "r.jansen", ("regisseur",)),
    ("zvh-kennemerland", "fg.zvh", ("dpo",)),
    ("zvh-kennemerland", "beheer.zvh", ("beheerder",)),
    ("politie-nh", "zsm.officier", ("regisseur",)),
    ("politie-nh", "fg.politie", ("dpo",)),
)


@dataclass(frozen=True)
class DemoAccount:
    organisation: str
    name: str
    roles: tuple[str, ...]
    password: str
    secret: str


def add_account(cluster: Cluster, org: str, name: str, roles: tuple[str, ...]) -> DemoAccount:
    args = ["portal", "user", "add", "--config", str(cluster.net.portal_configs[org]), name]
    for role in roles:
        args += ["--role", role]
    done = subprocess.run(
        betrokken_command(*args, "--generate-password"),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    password = re.search(r"password:\s+(\S+)", done.stdout)
    secret = re.search(r"TOTP secret:\s+(\S+)", done.stdout)
    assert password and secret
    return DemoAccount(org, name, roles, password.group(1), secret.group(1))


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    if not found:
        raise RuntimeError(f"no form on {page.url}")
    return found.group(1)


def ask_through_portal(url: str, account: DemoAccount, bsn: Bsn, case: str) -> str:
    """Log in, ask about one person and return the answer page's text (tags stripped)."""
    with httpx.Client(base_url=url, follow_redirects=True, timeout=60) as client:
        login = client.get("/inloggen")
        page = client.post(
            "/inloggen",
            data={
                "csrf": _csrf(login),
                "gebruikersnaam": account.name,
                "wachtwoord": account.password,
                "code": pyotp.TOTP(account.secret).now(),
            },
        )
        form = client.get("/vraag")
        page = client.post(
            "/vraag",
            data={
                "csrf": _csrf(form),
                "bsn": bsn.digits,
                "doel": "zvh-triage",
                "zaak": case,
                "namens": "gemeente-haarlem",  # the ZVH asks for the partner that brought it in
            },
        )
        text = html.unescape(re.sub(r"<[^>]+>", " ", page.text))
        client.post("/uitloggen", data={"csrf": _csrf(page)})
    return " ".join(text.split())


def portal_steps(out: Out, cluster: Cluster, several: Bsn) -> tuple[bool, list[str]]:
    """Start every organisation's portal, make the demo accounts, ask once through a portal.
    Returns (as expected, the lines that tell a person how to log in)."""
    out("\n== 12. The web portals: one per organisation, personal login (password + TOTP code)")
    addresses = {org: cluster.start_portal(org) for org in cluster.net.portal_configs}
    accounts = [add_account(cluster, org, name, roles) for org, name, roles in ACCOUNTS]
    zvh = accounts[0]
    out(f"   a regisseur of the ZVH logs in at {addresses[zvh.organisation]} and asks about")
    out(f"   {several.masked()} (the BSN is typed into the form, never in a URL):")
    text = ask_through_portal(addresses[zvh.organisation], zvh, several, "ZVH-2026-0160")
    found = re.search(r"Betrokken: [^.]*\.", text)
    complete = "Volledig antwoord" in text
    out(f"   the portal says: {found.group() if found else '(no hit shown)'}")
    out(f"   {'complete answer' if complete else 'INCOMPLETE answer'}; answered for r.jansen")
    ok = bool(found) and several.masked() in text and several.digits not in text
    # After the hit: the police's notice, the ZVH's follow-up, a simulated month's figure.
    import random

    from betrokken.app.demo_after import notice_and_follow_up, simulated_month
    from betrokken.config.load import load_network

    politie = next(a for a in accounts if a.organisation == "politie-nh" and "regisseur" in a.roles)
    network = load_network(cluster.net.network_file)
    police = network.organisation(politie.organisation)
    ok &= notice_and_follow_up(
        out, addresses[politie.organisation], politie, police.name if police else "",
        addresses[zvh.organisation], zvh, "ZVH-2026-0160",
    )  # fmt: skip
    share = simulated_month(out, network, zvh.organisation, random.Random(20261207))
    ok &= share is not None
    lines = ["Portals (HTTP on loopback; log in with the account, password and TOTP code):"]
    for org, url in addresses.items():
        lines.append(f"   {org:<18} {url}/")
    lines.append("Demo accounts (the TOTP secret goes into an authenticator app; or run")
    lines.append("   python3 -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\" for a code):")
    for account in accounts:
        lines.append(
            f"   {account.organisation:<18} {account.name:<13} {','.join(account.roles):<10} "
            f"password {account.password}  TOTP secret {account.secret}"
        )
    return ok, lines
