"""The demo's part after the hit: the found partner's notice, the asker's follow-up, and a simulated
month that shows the share of hits followed up within the network's working days as a figure.

The first two go through the portals over HTTP, as a browser would. The simulation computes with
the same code the DPO's report uses (:mod:`betrokken.audit.followup`) on records made in memory;
nothing simulated is written to any trail.
"""

from __future__ import annotations

import datetime as dt
import html
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import httpx
import pyotp

from betrokken import rules
from betrokken.audit.followup import follow_up_entry, hits_in, overall, percent, rates
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import DisclosureLevel, Network

Out = Callable[[str], None]


class _Account(Protocol):  # what demo_portal.DemoAccount holds
    @property
    def name(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def secret(self) -> str: ...


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    if not found:
        raise RuntimeError(f"no form on {page.url}")
    return found.group(1)


def _text(page: httpx.Response) -> str:
    main = page.text.split("<main", 1)[-1].split("</main>", 1)[0]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


@contextmanager
def _logged_in(url: str, account: _Account) -> Iterator[httpx.Client]:
    """A session of ``account``. A TOTP code works once: when the account logged in within this
    time step already, wait for the next step, as a person would."""
    with httpx.Client(base_url=url, follow_redirects=True, timeout=60) as client:
        totp = pyotp.TOTP(account.secret)
        for _attempt in range(2):
            login = client.get("/inloggen")
            page = client.post(
                "/inloggen",
                data={
                    "csrf": _csrf(login),
                    "gebruikersnaam": account.name,
                    "wachtwoord": account.password,
                    "code": totp.now(),
                },
            )
            if "/uitloggen" in page.text:
                break
            time.sleep(totp.interval - time.time() % totp.interval + 0.5)
        else:
            raise RuntimeError(f"{account.name} could not log in at {url}")
        try:
            yield client
        finally:
            client.post("/uitloggen", data={"csrf": _csrf(client.get("/"))})


def notice_and_follow_up(
    out: Out,
    found_url: str,
    found: _Account,
    partner_name: str,
    asker_url: str,
    asker: _Account,
    case: str,
) -> bool:
    """The found partner reads and acknowledges its notice; the asker records the follow-up."""
    out("\n== 13. Both professionals told: the police see a notice of the ZVH's question")
    with _logged_in(found_url, found) as client:
        # The police's node writes the notice with the answer's trail record, within a second or
        # so of answering (its trail writer): look again for a while before calling it missing.
        pattern = re.compile(r'<a href="(/meldingen/\d+)">([^<]*' + re.escape(case) + ")</a>")
        deadline = time.monotonic() + 15
        while (link := pattern.search(client.get("/meldingen").text)) is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if link is None:
            out(f"   no notice for case {case} at the police (UNEXPECTED)")
            return False
        out(f"   {found.name} opens Meldingen: {html.unescape(link.group(2))}")
        page = client.get(link.group(1))
        facts = re.findall(r"<dt>([^<]*)</dt><dd>(.*?)</dd>", page.text)
        for term, value in facts[:8]:
            shown = " ".join(html.unescape(re.sub(r"<[^>]+>", "", value)).split())
            out(f"     {html.unescape(term):<22} {shown}")
        done = client.post(link.group(1) + "/bevestigen", data={"csrf": _csrf(page)})
        acknowledged = "Bevestigd" in _text(done) and "nog niet bevestigd" not in _text(done)
        out(f"   acknowledged by {found.name}: a 'notice' record in the police's own trail")

    out("\n== 14. Regie: the ZVH's regisseur records the follow-up of the hit")
    with _logged_in(asker_url, asker) as client:
        page = client.get("/opvolging")
        cards = page.text.split('<li class="follow-up"')[1:]
        card = next((c for c in cards if case in c and partner_name in c), "")
        token = re.search(r'name="treffer" value="([^"]+)"', card)
        if token is None:
            out(f"   no hit of case {case} on the follow-up page (UNEXPECTED)")
            return False
        done = client.post(
            "/opvolging",
            data={"csrf": _csrf(page), "treffer": html.unescape(token.group(1)),
                  "stand": "contact-gelegd"},
        )  # fmt: skip
        recorded = "De opvolging is vastgelegd" in _text(done)
        out(f"   {asker.name} records 'contact gelegd' with {partner_name} for case {case}: a")
        out("   'follow-up' record in the ZVH's own trail, under its own pseudonym of the person")
    return acknowledged and recorded


def simulated_month(
    out: Out,
    network: Network,
    asker: str,
    rng: random.Random,
    hits: int = 240,
    today: dt.date | None = None,
) -> float | None:
    """A month of ``asker``'s hits and their follow-up, simulated in memory; the share of hits
    followed up in time, printed as the figure, and per partner and purpose."""
    settings = network.after_the_hit
    today = today or dt.datetime.now(dt.UTC).date()
    start = dt.datetime.combine(today - dt.timedelta(days=45), dt.time(8), dt.UTC)
    purposes = [p.id for p in network.purposes if asker in p.allowed_organisations]
    # Who a hit names, as the asker's trail records it: the organisation, or only its field.
    partners: dict[str, list[str]] = {}
    for purpose in purposes:
        for organisation in rules.nodes_to_ask(network, purpose, asker):
            level = rules.level(network, organisation.id, purpose)
            if level is DisclosureLevel.ORGANISATION:
                partners.setdefault(purpose, []).append(organisation.id)
            elif level is DisclosureLevel.DOMAIN:
                partners.setdefault(purpose, []).append(rules.DOMAIN_LABEL + organisation.domain)
    purposes = [p for p in purposes if partners.get(p)]
    if not purposes:
        out("\n== 15. Follow-up: no purpose of this organisation has a partner that names itself")
        return None
    entries: list[AuditEntry] = []
    for number in range(hits):
        asked = start + dt.timedelta(days=rng.randrange(0, 30), hours=rng.randrange(0, 10))
        purpose = rng.choice(purposes)
        subject = Subject(f"{number:064x}", "simulated", f"sim-{number}", f"SIM-{number:04d}")
        entries.append(
            AuditEntry(
                event=Event.OWN_QUERY,
                at=asked,
                answer_id=f"sim-{number}",
                organisation=asker,
                user="regisseur",
                purpose=purpose,
                subjects=(subject,),
                outcomes={subject.fingerprint: {rng.choice(partners[purpose]): "involved"}},
                reason="answered",
            )
        )
    # A network working to its goal: most hits are followed up within a week, about 3 in 100
    # late (after two to four weeks), about 2 in 100 never.
    for hit in hits_in(entries):
        draw = rng.random()
        if draw < 0.02:
            continue
        delay = rng.randrange(0, 8) if draw < 0.97 else rng.randrange(15, 30)
        entries.append(
            follow_up_entry(
                asker,
                hit,
                hit.user,
                "regisseur",
                rng.choice(("contact-gelegd", "casusoverleg-gepland")),
                at=hit.asked_at + dt.timedelta(days=delay, hours=2),
            )
        )
    found = rates(hits_in(entries), settings.follow_up_working_days, today)
    total = overall(found)
    share = total.share_in_time
    shown = percent(share)
    goal = settings.follow_up_goal_percent
    met = share is not None and share * 100 >= goal
    out("\n== 15. Follow-up in a simulated month (in memory; the DPO's report computes the same)")
    out(f"   {total.hits} hits, {total.followed} followed up, {total.waiting} still within term")
    out(
        f"   FIGURE: {shown} of hits followed up within {settings.follow_up_working_days} "
        f"working days (goal {goal}%: {'met' if met else 'NOT met'})"
    )
    for rate in found:
        part = percent(rate.share_in_time)
        out(f"     {rate.partner:<20} {rate.purpose:<24} {rate.hits:>4} hits  {part:>6} in time")
    return share
