"""The demo's part after the hit, through the portals over HTTP as a browser would: the found
partner's notice, a defer partner's professional deciding, the asker's follow-up and the FG's
access-request letter; and a simulated month that shows the share of hits followed up within the
network's working days as a figure.

The simulation computes with the same code the DPO's report uses (:mod:`betrokken.audit.followup`)
on records made in memory; nothing simulated is written to any trail.
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


def _as_expected(ok: bool) -> str:
    return "as expected" if ok else "UNEXPECTED"


def notice_step(out: Out, found_url: str, found: _Account, case: str) -> bool:
    """The found partner reads and acknowledges its notice of the question."""
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
            out(f"   [no notice for case {case} at the police; UNEXPECTED]")
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
        out(f"   [notice read and acknowledged; {_as_expected(acknowledged)}]")
    return acknowledged


def decide_step(out: Out, url: str, professional: _Account, case: str, ground: str) -> bool:
    """The defer partner's professional opens "Beslissen over delen" and decides to share."""
    with _logged_in(url, professional) as client:
        # The GGZ's node keeps the request with the answer's trail record (its trail writer).
        deadline = time.monotonic() + 15
        while True:
            page = client.get("/beslissen")
            cards = page.text.split('<li class="follow-up"')[1:]
            card = next((c for c in cards if case in c), "")
            if card or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        token = re.search(r'name="verzoek" value="(\d+)"', card)
        if token is None:
            out(f"   [no request for case {case} on Beslissen over delen; UNEXPECTED]")
            return False
        facts = re.findall(r"<dt>([^<]*)</dt><dd>(.*?)</dd>", card)
        out(f"   {professional.name} opens Beslissen over delen: a request for case {case}")
        for term, value in facts[:7]:
            shown = " ".join(html.unescape(re.sub(r"<[^>]+>", "", value)).split())
            out(f"     {html.unescape(term):<22} {shown}")
        done = client.post(
            "/beslissen",
            data={"csrf": _csrf(page), "verzoek": token.group(1), "besluit": f"delen:{ground}"},
        )
        decided = next((c for c in done.text.split('<li class="follow-up"')[1:] if case in c), "")
        shown = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", decided)).split())
        recorded = "vastgelegd in het logboek" in _text(done) and "Delen: " in shown
        out(f"   {professional.name} decides: delen, on the ground '{ground}' (a 'decision'")
        out("   record in the GGZ's own trail; the asker hears it only when the term ends)")
        out(f"   [decision recorded; {_as_expected(recorded)}]")
    return recorded


def follow_up_step(out: Out, asker_url: str, asker: _Account, partner_name: str, case: str) -> bool:
    """The asker's regisseur records the follow-up of a hit."""
    with _logged_in(asker_url, asker) as client:
        page = client.get("/opvolging")
        cards = page.text.split('<li class="follow-up"')[1:]
        card = next((c for c in cards if case in c and partner_name in c), "")
        token = re.search(r'name="treffer" value="([^"]+)"', card)
        if token is None:
            out(f"   [no hit of case {case} on the follow-up page; UNEXPECTED]")
            return False
        done = client.post(
            "/opvolging",
            data={"csrf": _csrf(page), "treffer": html.unescape(token.group(1)),
                  "stand": "contact-gelegd"},
        )  # fmt: skip
        recorded = "De opvolging is vastgelegd" in _text(done)
        out(f"   {asker.name} records 'contact gelegd' with {partner_name} for case {case}: a")
        out("   'follow-up' record in the ZVH's own trail, under its own pseudonym of the person")
        out(f"   [follow-up recorded; {_as_expected(recorded)}]")
    return recorded


# The letter's elements of article 15, first paragraph, GDPR (a to h), as the Dutch letter
# names them; each must be there.
ARTICLE_15 = (
    "Doeleinden (artikel 15, eerste lid, onder a, AVG)",
    "Categorieën van gegevens (onder b)",
    "Ontvangers (onder c)",
    "Bewaartermijn (onder d)",
    "Uw rechten (onder e)",
    "Klacht (onder f)",
    "Bron (onder g)",
    "Geautomatiseerde besluiten (onder h)",
)


def letter_step(out: Out, url: str, dpo: _Account, bsn: str) -> bool:
    """The FG makes the access-request letter for the person in the portal (the person's BSN
    is typed into the form; the letter shows it masked)."""
    with _logged_in(url, dpo) as client:
        form = client.get("/dpo/inzage")
        page = client.post(
            "/dpo/inzage",
            data={
                "csrf": _csrf(form),
                "bsn": bsn,
                "salutation": "",
                "surname": "",
                "name": "De betrokkene",
                "address": "Voorbeeldstraat 1\n2000 AA Haarlem",
                "requested_on": dt.datetime.now(dt.UTC).strftime("%d-%m-%Y"),
                "reference": "INZ-2026-001",
                "own_text": "",
                "signer": "",
            },
        )
    labels = [html.unescape(t) for t in re.findall(r"<dt>([^<]*)</dt>", page.text)]
    present = [label for label in ARTICLE_15 if label in labels]
    for label in ARTICLE_15:
        out(f"     {'x' if label in present else ' '} {label}")
    text = _text(page)
    asked = "Wie naar u heeft gevraagd" in text
    ok = len(present) == len(ARTICLE_15) and bsn not in page.text and asked
    out(
        f"   [{len(present)} of {len(ARTICLE_15)} elements of art. 15 AVG in the letter, the BSN "
        f"only masked; {_as_expected(ok)}]"
    )
    return ok


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
        out("\n== 20. Follow-up: no purpose of this organisation has a partner that names itself")
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
    out("\n== 20. Follow-up in a simulated month (in memory; the DPO's report computes the same)")
    out(f"   {total.hits} hits, {total.followed} followed up, {total.waiting} still within term")
    out(
        f"   FIGURE: {shown} of hits followed up within {settings.follow_up_working_days} "
        f"working days (goal {goal}%: {'met' if met else 'NOT met'})"
    )
    for rate in found:
        part = percent(rate.share_in_time)
        out(f"     {rate.partner:<20} {rate.purpose:<24} {rate.hits:>4} hits  {part:>6} in time")
    return share
