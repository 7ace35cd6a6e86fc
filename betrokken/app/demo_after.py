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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import httpx
import pyotp

from betrokken.audit.followup import follow_up_entry, hits_in, overall, rates
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import Network

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
    with httpx.Client(base_url=url, follow_redirects=True, timeout=60) as client:
        login = client.get("/inloggen")
        client.post(
            "/inloggen",
            data={
                "csrf": _csrf(login),
                "gebruikersnaam": account.name,
                "wachtwoord": account.password,
                "code": pyotp.TOTP(account.secret).now(),
            },
        )
        try:
            yield client
        finally:
            client.post("/uitloggen", data={"csrf": _csrf(client.get("/"))})


def notice_and_follow_up(
    out: Out, found_url: str, found: _Account, asker_url: str, asker: _Account, case: str
) -> bool:
    """The found partner reads and acknowledges its notice; the asker records the follow-up."""
    out("\n== 13. Both professionals told: the police see a notice of the ZVH's question")
    with _logged_in(found_url, found) as client:
        listing = client.get("/meldingen")
        link = re.search(
            r'<a href="(/meldingen/\d+)">([^<]*' + re.escape(case) + ")</a>", listing.text
        )
        if link is None:
            out(f"   no notice for case {case} at the police (UNEXPECTED)")
            return False
        out(f"   {found.name} opens Meldingen: {html.unescape(link.group(2))}")
        page = client.get(link.group(1))
        facts = re.findall(r"<dt>([^<]*)</dt><dd>(.*?)</dd>", page.text)
        for term, value in facts[:7]:
            shown = " ".join(html.unescape(re.sub(r"<[^>]+>", "", value)).split())
            out(f"     {html.unescape(term):<22} {shown}")
        done = client.post(link.group(1) + "/bevestigen", data={"csrf": _csrf(page)})
        acknowledged = "Bevestigd" in _text(done) and "nog niet bevestigd" not in _text(done)
        out(f"   acknowledged by {found.name}: a 'notice' record in the police's own trail")

    out("\n== 14. Regie: the ZVH's regisseur records the follow-up of the hit")
    with _logged_in(asker_url, asker) as client:
        page = client.get("/opvolging")
        card = re.search(
            r'<li class="follow-up" id="treffer-\d+">.*?' + re.escape(case) + r".*?</li>",
            page.text,
            re.S,
        )
        token = re.search(r'name="treffer" value="([^"]+)"', card.group()) if card else None
        if token is None:
            out(f"   no hit of case {case} on the follow-up page (UNEXPECTED)")
            return False
        done = client.post(
            "/opvolging",
            data={"csrf": _csrf(page), "treffer": html.unescape(token.group(1)),
                  "stand": "contact-gelegd"},
        )  # fmt: skip
        recorded = "De opvolging is vastgelegd" in _text(done)
        out(f"   {asker.name} records 'contact gelegd' for case {case}: a 'follow-up' record")
        out("   in the ZVH's own trail (under its own pseudonym of the person; nothing central)")
    return acknowledged and recorded


def simulated_month(
    out: Out, network: Network, rng: random.Random, hits: int = 240, today: dt.date | None = None
) -> float | None:
    """A month of hits and their follow-up, simulated in memory; the share in time, printed."""
    settings = network.after_the_hit
    today = today or dt.datetime.now(dt.UTC).date()
    start = dt.datetime.combine(today - dt.timedelta(days=45), dt.time(8), dt.UTC)
    partners = [o.id for o in network.organisations if o.node_address][:4] or ["partner"]
    purposes = [p.id for p in network.purposes]
    entries: list[AuditEntry] = []
    for number in range(hits):
        asked = start + dt.timedelta(days=rng.randrange(0, 30), hours=rng.randrange(0, 10))
        subject = Subject(f"{number:064x}", "simulated", f"sim-{number}", f"SIM-{number:04d}")
        entries.append(
            AuditEntry(
                event=Event.OWN_QUERY,
                at=asked,
                answer_id=f"sim-{number}",
                organisation="simulated",
                user="regisseur",
                purpose=rng.choice(purposes),
                subjects=(subject,),
                outcomes={subject.fingerprint: {rng.choice(partners): "involved"}},
                reason="answered",
            )
        )
    # A working practice: most hits are followed up within days, some late, a few never.
    for hit in hits_in(entries):
        draw = rng.random()
        if draw < 0.04:
            continue
        delay = rng.randrange(0, 9) if draw < 0.93 else rng.randrange(14, 30)
        entries.append(
            follow_up_entry(
                "simulated",
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
    shown = "–" if share is None else f"{round(share * 100)}%"
    goal = settings.follow_up_goal_percent
    met = share is not None and share * 100 >= goal
    out("\n== 15. Follow-up in a simulated month (in memory; the DPO's report computes the same)")
    out(f"   {total.hits} hits, {total.followed} followed up, {total.waiting} still within term")
    out(
        f"   FIGURE: {shown} of hits followed up within {settings.follow_up_working_days} "
        f"working days (goal {goal}%: {'met' if met else 'NOT met'})"
    )
    for rate in found:
        part = "–" if rate.share_in_time is None else f"{round(rate.share_in_time * 100)}%"
        out(f"     {rate.partner:<20} {rate.purpose:<24} {rate.hits:>4} hits  {part:>4} in time")
    return share
