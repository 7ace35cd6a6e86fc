"""The portal's security rules, against the real application (in this process, through its ASGI
interface) on the running network: roles, CSRF, session expiry, lock-out, headers, and that the
logged-in user and role (never a typed name) go into the question and every record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from betrokken.app.demo import GEMEENTE
from betrokken.clock import utcnow
from betrokken.config.load import load_portal
from betrokken.portal.app import build_portal, create_app
from betrokken.portal.auth import current_user
from betrokken.portal.web import Portal
from tests.cli import Done, invoke
from tests.harness import trail_written
from tests.portal.conftest import PASSWORD, PortalAccount, PortalClock, PortalRun, trail_entries


@dataclass
class InProcess:
    portal: Portal
    client: TestClient
    run: PortalRun
    clock: PortalClock

    def csrf(self, path: str = "/inloggen") -> str:
        page = self.client.get(path)
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found, page.text
        return found.group(1)

    def log_in(self, user: PortalAccount, password: str | None = None) -> Any:
        token = self.csrf()
        return self.client.post(
            "/inloggen",
            data={
                "csrf": token,
                "gebruikersnaam": user.name,
                "wachtwoord": password or user.password,
                "code": user.code(self.clock),
            },
            follow_redirects=True,
        )


async def _dpo_only(request: Request) -> PlainTextResponse:
    user = current_user(request, role="dpo")
    return PlainTextResponse(f"dpo page for {user.name}")


@pytest.fixture
def inprocess(portal: PortalRun) -> Iterator[InProcess]:
    """The portal's application in this process, on a clock of its own that only the test moves
    (a wait between two attempts, a second of a throttle, is the test's to decide)."""
    clock = PortalClock(stopped_at=utcnow())
    state = build_portal(load_portal(portal.config), clock)
    app = create_app(state)
    app.router.routes.append(Route("/proef-dpo", _dpo_only))  # a page behind the dpo role
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield InProcess(state, client, portal, clock)
    state.trail.engine.dispose()


@pytest.fixture(scope="module")
def accounts(portal: PortalRun) -> dict[str, PortalAccount]:
    return {
        "regisseur": portal.add_user("s.veilig", "regisseur"),
        "dpo": portal.add_user("p.privacy", "dpo"),
        "lockout": portal.add_user("l.slot", "regisseur"),
        "expiry": portal.add_user("v.verloop", "regisseur"),
    }


def test_a_regisseur_cannot_open_pages_of_the_dpo_role(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    assert "Uitloggen" in inprocess.log_in(accounts["regisseur"]).text
    page = inprocess.client.get("/proef-dpo")
    assert page.status_code == 403
    assert "Geen toegang tot deze pagina" in page.text
    assert "functionaris gegevensbescherming" in page.text
    assert "dpo page" not in page.text
    # every page a DPO or beheerder module registered is closed to this regisseur too
    for module in inprocess.portal.modules:
        if module.role != "regisseur":
            for item in module.nav:
                assert inprocess.client.get(item.path).status_code == 403, item.path


def test_a_dpo_cannot_ask_about_persons(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    inprocess.log_in(accounts["dpo"])
    assert inprocess.client.get("/proef-dpo").text == "dpo page for p.privacy"
    assert inprocess.client.get("/vraag").status_code == 403
    before = len(trail_entries(inprocess.run.config))
    token = _session_csrf(inprocess)
    asked = inprocess.client.post(
        "/vraag",
        data={
            "csrf": token,
            "bsn": inprocess.run.running.named["one"].digits,
            "doel": "zvh-triage",
            "zaak": "X-1",
        },
    )
    inprocess.run.running.typed.add(inprocess.run.running.named["one"].digits)
    assert asked.status_code == 403 and "Geen toegang" in asked.text
    assert len(trail_entries(inprocess.run.config)) == before


def _session_csrf(inprocess: InProcess) -> str:
    return inprocess.portal.sessions.csrf_token(
        next(iter(inprocess.portal.sessions._sessions.values()))
    )


def test_a_form_without_this_sessions_csrf_token_is_refused_and_nothing_is_asked(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    inprocess.log_in(accounts["regisseur"])
    several = inprocess.run.running.named["several"].digits
    inprocess.run.running.typed.add(several)
    before = len(trail_entries(inprocess.run.config))
    form = {"bsn": several, "doel": "zvh-triage", "zaak": "X-2"}
    for token in (None, "0" * 64):
        data = form if token is None else {**form, "csrf": token}
        refused = inprocess.client.post("/vraag", data=data)
        assert refused.status_code == 403
        assert "Het formulier is verlopen" in refused.text
        assert "Er is niets gedaan" in refused.text
    assert len(trail_entries(inprocess.run.config)) == before
    logout = inprocess.client.post("/uitloggen", data={}, follow_redirects=False)
    assert logout.status_code == 403  # logging out is a form too
    assert "Uitloggen" in inprocess.client.get("/vraag").text


def test_a_session_ends_after_the_idle_time_and_the_end_is_recorded(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    user = accounts["expiry"]
    assert "Uitloggen" in inprocess.log_in(user).text
    inprocess.clock.advance(inprocess.portal.sessions.idle_seconds + 1)
    page = inprocess.client.get("/vraag", follow_redirects=True)
    assert page.url.path == "/inloggen"
    assert "Uw sessie is afgelopen. Log opnieuw in." in page.text
    assert "Uitloggen" not in page.text
    ends = [
        e
        for e in trail_entries(inprocess.run.config)
        if e.event.value == "logout" and e.user == user.name
    ]
    assert [e.reason for e in ends] == ["expired"]


def _attempt(inprocess: InProcess, name: str, password: str, code: str = "000000") -> Any:
    """One login attempt without using up a TOTP step (the portal's clock stays where it is)."""
    data = {"csrf": inprocess.csrf(), "gebruikersnaam": name, "wachtwoord": password}
    return inprocess.client.post("/inloggen", data=data | {"code": code})


def test_every_failed_login_gets_the_same_page_and_guessing_is_slowed_never_locked(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    """The attacker's moves: learn which accounts exist from the login page, and lock the
    regisseur out by guessing. Unknown account, wrong password and wrong code get one page (the
    name as typed, the same sentence); after the free failures every further attempt from that
    source or for that name waits a doubling delay, checked without trying the password."""
    import pyotp

    user = accounts["lockout"]
    free = inprocess.portal.loaded.portal.max_failed_logins
    pages = []
    for name, password in ((user.name, "not the password at all"), ("n.iemand", user.password)):
        failed = _attempt(inprocess, name, password)
        assert failed.status_code == 400
        assert "De gebruikersnaam, het wachtwoord of de code klopt niet" in failed.text
        assert f'value="{name}"' in failed.text  # echoed whether or not it exists
        pages.append(re.sub(r'value="[^"]*"', 'value=""', failed.text))
    assert pages[0] == pages[1]
    for _ in range(free - 2):
        assert _attempt(inprocess, user.name, user.password).status_code == 400  # wrong code
    right = pyotp.TOTP(user.secret).at(inprocess.clock())
    slowed = _attempt(inprocess, user.name, user.password, right)  # all right, during the delay
    assert slowed.status_code == 429 and "Uitloggen" not in slowed.text
    assert "Te veel mislukte pogingen vanaf hier of voor deze gebruikersnaam" in slowed.text
    assert _attempt(inprocess, "n.iemand", "whatever").status_code == 429  # a made-up name too
    inprocess.clock.advance(2)  # the delay (1 s after the free failures) has passed
    assert "Uitloggen" in inprocess.log_in(user).text  # no lock, no beheerder needed
    failures = [
        e.reason
        for e in trail_entries(inprocess.run.config)
        if e.event.value == "login-failed" and e.user == user.name
    ]
    assert failures[-free:] == ["password"] + ["code"] * (free - 2) + ["throttled"]
    for line in (PASSWORD, "not the password"):
        assert all(line not in e.canonical().decode() for e in trail_entries(inprocess.run.config))


def test_the_logged_in_user_and_role_are_signed_into_the_question_and_every_record(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    user = accounts["regisseur"]
    inprocess.log_in(user)
    several = inprocess.run.running.named["several"]
    inprocess.run.running.typed.add(several.digits)
    answer = inprocess.client.post(
        "/vraag",
        data={
            "csrf": _session_csrf(inprocess),
            "bsn": several.digits,
            "doel": "zvh-triage",
            "zaak": "ZVH-SEC-1",
            "gebruiker": "iemand-anders",  # a typed name is ignored
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/antwoord/")
    assert several.digits not in answer.headers["location"]
    answer = inprocess.client.get(answer.headers["location"])
    assert answer.status_code == 200
    assert several.masked() in answer.text and several.digits not in answer.text
    headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    assert several.digits not in headers
    assert answer.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    own = [
        e
        for e in trail_entries(inprocess.run.config)
        if e.event.value == "own-query" and any(s.case == "ZVH-SEC-1" for s in e.subjects)
    ]
    assert [(e.user, e.role) for e in own] == [("s.veilig", "regisseur")]
    # the node that disclosed a hit recorded the same user and role from the sealed question
    trail_written(inprocess.run.running.net.node_configs[GEMEENTE].parent / "node.db")
    disclosed = [
        e
        for e in trail_entries(inprocess.run.running.net.portal_configs[GEMEENTE])
        if e.event.value == "disclosure" and e.answer_id == own[0].answer_id
    ]
    assert [(e.user, e.role) for e in disclosed] == [("s.veilig", "regisseur")]
    assert "iemand-anders" not in str([e.to_json() for e in own + disclosed])


def test_a_question_asked_for_a_partner_records_the_aanmelder_and_no_other_is_accepted(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    """The form offers only the aanmelders the network file lists; a posted one it does not
    list (the attacker edits the form) is refused and nothing is asked."""
    from betrokken.app.demo import POLITIE

    inprocess.log_in(accounts["regisseur"])
    form = inprocess.client.get("/vraag")
    assert 'id="namens"' in form.text and f'value="{POLITIE}"' in form.text
    assert 'value="ggz-kennemerland"' not in form.text
    several = inprocess.run.running.named["several"]
    inprocess.run.running.typed.add(several.digits)
    for namens, case in ((POLITIE, "ZVH-NAMENS-1"), ("ggz-kennemerland", "ZVH-NAMENS-2")):
        inprocess.client.post(
            "/vraag",
            data={
                "csrf": _session_csrf(inprocess),
                "bsn": several.digits,
                "doel": "zvh-triage",
                "zaak": case,
                "namens": namens,
            },
        )
    own = {
        s.case: e
        for e in trail_entries(inprocess.run.config)
        if e.event.value == "own-query"
        for s in e.subjects
        if s.case.startswith("ZVH-NAMENS-")
    }
    assert own["ZVH-NAMENS-1"].details["on_behalf_of"] == POLITIE
    assert "ZVH-NAMENS-2" not in own  # refused before anything was asked (no pseudonyms)
    refused = [
        e
        for e in trail_entries(inprocess.run.config)
        if e.event.value == "own-query" and e.details.get("on_behalf_of") == "ggz-kennemerland"
    ]
    assert refused and "does not list as an aanmelder" in refused[-1].details["message"]


def test_a_list_under_one_case_number_is_asked_only_as_one_household(
    inprocess: InProcess, accounts: dict[str, PortalAccount]
) -> None:
    inprocess.log_in(accounts["regisseur"])
    named = inprocess.run.running.named
    people = [named["several"].digits, named["nowhere"].digits, named["one"].digits]
    inprocess.run.running.typed.update(people)
    listing = ("bsn\n" + "".join(f"{b}\n" for b in people)).encode()

    def upload(case: str, gezin: bool) -> Any:
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', inprocess.client.get("/lijst").text)
        assert csrf
        data = {"csrf": csrf.group(1), "doel": "zvh-triage", "zaak": case}
        return inprocess.client.post(
            "/lijst",
            data=data | ({"gezin": "ja"} if gezin else {}),
            files={"bestand": ("gezin.csv", listing, "text/csv")},
        )

    refused = upload("ZVH-GEZIN-1", gezin=False)
    assert "Eén zaaknummer mag niet voor zoveel personen worden gebruikt" in refused.text
    together = upload("ZVH-GEZIN-2", gezin=True)
    assert "Antwoord op uw lijst" in together.text and "3 personen" in together.text
    kinds = [
        e.details.get("kind")
        for e in trail_entries(inprocess.run.config)
        if e.event.value == "own-query" and any(s.case == "ZVH-GEZIN-2" for s in e.subjects)
    ]
    assert kinds == ["gezin"]


def test_every_page_carries_the_security_headers_and_none_is_cached(inprocess: InProcess) -> None:
    for path in ("/inloggen", "/vraag", "/niet-bestaand", "/taal/nl?terug=/inloggen"):
        page = inprocess.client.get(path, follow_redirects=False)
        assert page.headers["cache-control"] == "no-store", path
        assert page.headers["content-security-policy"].startswith("default-src 'self'"), path
        assert page.headers["x-content-type-options"] == "nosniff", path
        assert page.headers["referrer-policy"] == "no-referrer", path
    style = inprocess.client.get("/static/portal.css")
    assert style.status_code == 200 and "no-store" not in style.headers.get("cache-control", "")
    missing = inprocess.client.get("/niet-bestaand")
    assert missing.status_code == 404 and "Pagina niet gevonden" in missing.text


def test_the_language_switch_shows_english_and_keeps_to_this_site(inprocess: InProcess) -> None:
    switched = inprocess.client.get("/taal/en?terug=/inloggen", follow_redirects=True)
    assert '<html lang="en">' in switched.text and "Log in" in switched.text
    away = inprocess.client.get("/taal/nl?terug=//example.org/", follow_redirects=False)
    assert away.headers["location"] == "/"


def test_a_disabled_account_cannot_log_in_and_the_list_shows_no_secret(
    inprocess: InProcess, portal: PortalRun
) -> None:
    user = portal.add_user("o.uitdienst", "regisseur", purposes=("zvh-triage",))

    def cli(*args: str) -> Done:
        return invoke("portal", "user", *args, "--config", portal.config)

    assert cli("disable", user.name).code == 0
    refused = inprocess.log_in(user)
    assert refused.status_code == 400 and "Uitloggen" not in refused.text
    listed = cli("list")
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith(user.name))
    assert "disabled" in line and "zvh-triage" in line
    assert user.secret not in listed.stdout and "$argon2" not in listed.stdout
    unknown = cli("disable", "niemand")
    assert unknown.code == 2 and "there is no account 'niemand'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    reasons = [
        e.reason
        for e in trail_entries(portal.config)
        if e.event.value == "login-failed" and e.user == user.name
    ]
    assert reasons == ["disabled"]


def test_a_bsn_in_the_address_of_a_question_page_is_refused_and_reaches_no_file(
    portal: PortalRun,
) -> None:
    """P1 in every log: an address is written to the access log (and proxies and browser
    history keep it), so a question page refuses any query string unread, and the access log
    keeps no query string of any page. The attacker's move: ``GET /vraag?bsn=...``."""
    import random
    import time

    import httpx

    from betrokken.crypto.bsn import generate_bsn
    from tests.portal.conftest import files_under

    bsn = generate_bsn(random.Random()).digits
    portal.running.typed.add(bsn)  # the P1 scan of every file (test_traces.py) looks for it too
    refused = httpx.get(f"{portal.url}/vraag?bsn={bsn}", follow_redirects=False)
    assert refused.status_code == 400
    assert "nemen niets uit het adres" in refused.text and bsn not in refused.text
    for page in (f"/lijst?bsn={bsn}", f"/antwoord/x?bsn={bsn}", f"/mijn-vragen?q={bsn}"):
        assert httpx.get(portal.url + page, follow_redirects=False).status_code == 400
    # Another page with the number in its address: served, but its address is logged without it.
    assert httpx.get(f"{portal.url}/inloggen?bsn={bsn}").status_code == 200
    time.sleep(0.5)  # the access log line is written after the response
    log = portal.log.read_text(errors="replace")
    assert "/vraag?..." in log and "/inloggen?..." in log  # the requests were logged...
    offenders = [
        p for p in files_under(portal.running.net.directory) if bsn.encode() in p.read_bytes()
    ]
    assert not offenders, offenders  # ...and the number reached no file
