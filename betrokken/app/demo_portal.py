"""The portal part of ``betrokken demo``: a portal per organisation, demo accounts (the GGZ's
professional among them), and a question asked through the ZVH's portal over HTTP, as a browser
would (log in with password and TOTP code, ask, read the answer)."""

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
    # the GGZ's professional: the network file's decided_by names the regisseur role
    ("ggz-kennemerland", "p.devries", ("regisseur",)),
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


def start_portals(out: Out, cluster: Cluster) -> tuple[dict[str, str], list[DemoAccount]]:
    """Start every organisation's portal and make the demo accounts."""
    out("\n== The web portals: one per organisation, personal login (password + TOTP code)")
    addresses = {org: cluster.start_portal(org) for org in cluster.net.portal_configs}
    accounts = [add_account(cluster, org, name, roles) for org, name, roles in ACCOUNTS]
    for account in accounts:
        out(
            f"   {account.organisation:<26} {account.name:<13} {','.join(account.roles)}"
            f"  {addresses[account.organisation]}/"
        )
    return addresses, accounts


def account(accounts: list[DemoAccount], organisation: str, role: str) -> DemoAccount:
    return next(a for a in accounts if a.organisation == organisation and role in a.roles)


def portal_question_step(
    out: Out, addresses: dict[str, str], accounts: list[DemoAccount], several: Bsn, case: str
) -> bool:
    """The ZVH's regisseur asks through the portal, on behalf of the gemeente that brought the
    case in (the ZVH has no basis of its own)."""
    zvh = account(accounts, "zvh-kennemerland", "regisseur")
    out(f"   {zvh.name} logs in at {addresses[zvh.organisation]} and asks about {several.masked()}")
    out("   for case " + case + " on behalf of the gemeente (the BSN is typed into the form, never")
    out("   in a URL):")
    text = ask_through_portal(addresses[zvh.organisation], zvh, several, case)
    found = re.search(r"Betrokken: [^.]*\.", text)
    complete = "Volledig antwoord" in text
    on_behalf = "Gemeente Haarlem" in text
    out(f"   the portal says: {found.group() if found else '(no hit shown)'}")
    ok = bool(found) and complete and several.masked() in text and several.digits not in text
    out(
        f"   [{'complete answer' if complete else 'INCOMPLETE answer'}, asked for the gemeente"
        f"{'' if on_behalf else ' (NOT named on the page)'}, no BSN on the page; "
        f"{'as expected' if ok else 'UNEXPECTED'}]"
    )
    return ok


def portal_lines(addresses: dict[str, str], accounts: list[DemoAccount]) -> list[str]:
    """The lines that tell a person how to log in."""
    lines = ["Portals (HTTP on loopback; log in with the account, password and TOTP code):"]
    for org, url in addresses.items():
        lines.append(f"   {org:<26} {url}/")
    lines.append("Demo accounts (the TOTP secret goes into an authenticator app; or run")
    lines.append("   python3 -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\" for a code):")
    for demo_account in accounts:
        lines.append(
            f"   {demo_account.organisation:<26} {demo_account.name:<13} "
            f"{','.join(demo_account.roles):<10} password {demo_account.password}  "
            f"TOTP secret {demo_account.secret}"
        )
    return lines
