"""A running network plus one organisation's portal, a user per role, and a real browser.

``portal`` starts ``betrokken portal serve`` for the ZVH (the organisation that asks) as its own
process on loopback, beside the network of tests/e2e/conftest.py, with one local account per role
(made with ``betrokken portal user add``, as a beheerder would). ``browser`` is a headless
Chromium driven by Selenium; :func:`log_in` logs a role in with password and TOTP code and
:func:`assert_accessible` runs axe-core on the page shown.

Without Chromium (``/usr/bin/chromium`` and ``/usr/bin/chromedriver``, Debian's ``chromium`` and
``chromium-driver``) the browser tests skip with the reason; under ``CI=true`` they fail.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

from betrokken.app.cluster import betrokken_command
from betrokken.app.demo import ZVH
from betrokken.audit.record import AuditEntry
from tests.conftest import require_or_skip
from tests.e2e.conftest import Running, ggz_only, running  # noqa: F401 - shared fixtures

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "correct horse battery staple"  # test accounts only
SERIOUS = ("serious", "critical")


@dataclass
class PortalAccount:
    name: str
    role: str
    password: str
    secret: str
    last_step: int = 0

    def code(self) -> str:
        """A TOTP code for a time step this account has not used yet (each code works once; the
        portal accepts the steps either side of now, so a third login within one step waits)."""
        totp = pyotp.TOTP(self.secret)
        while True:
            now = int(dt.datetime.now(dt.UTC).timestamp()) // totp.interval
            step = max(now, self.last_step + 1)
            if step <= now + 1:
                break
            time.sleep(1)
        self.last_step = step
        return totp.generate_otp(step)


@dataclass
class PortalRun:
    running: Running
    organisation: str
    url: str
    config: Path
    users: dict[str, PortalAccount] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.running.cluster.log_dir / f"portal-{self.organisation}.log"

    def add_user(self, name: str, *roles: str, purposes: tuple[str, ...] = ()) -> PortalAccount:
        args = ["portal", "user", "add", "--config", str(self.config), name]
        for role in roles:
            args += ["--role", role]
        for purpose in purposes:
            args += ["--purpose", purpose]
        done = subprocess.run(
            betrokken_command(*args),
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        secret = next(
            line.split()[2] for line in done.stdout.splitlines() if "TOTP secret:" in line
        )
        user = PortalAccount(name, roles[0], PASSWORD, secret)
        self.users[name] = user
        return user

    def user(self, role: str) -> PortalAccount:
        return next(u for u in self.users.values() if u.role == role)


@pytest.fixture(scope="session")
def portal(running: Running) -> Iterator[PortalRun]:  # noqa: F811 - the shared fixture
    config = running.net.portal_configs[ZVH]
    run = PortalRun(running, ZVH, "", config)
    run.add_user("r.jansen", "regisseur")
    run.add_user("d.devries", "dpo")
    run.add_user("b.bakker", "beheerder")
    run.url = running.cluster.start_portal(ZVH)
    try:
        yield run
    finally:
        running.cluster.stop_process(f"portal-{ZVH}")


def browser_problem() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return (
            f"no Chromium ({CHROMIUM}, {CHROMEDRIVER}); install Debian's chromium and "
            "chromium-driver (.ci/run does)"
        )
    try:
        import axe_selenium_python  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as exc:
        return f"Selenium or axe-selenium-python is not installed ({exc.name})"
    return None


@pytest.fixture(scope="session")
def browser_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The browser's profile folder (its cache and history): scanned for BSNs after the run."""
    return tmp_path_factory.mktemp("chromium-profile")


def start_browser(profile: Path) -> Any:
    require_or_skip(browser_problem())
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
        "--lang=nl-NL",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    return driver


@pytest.fixture
def browser(browser_profile: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its profile, cache and history, in ``browser_profile``)."""
    driver = start_browser(browser_profile)
    try:
        yield driver
    finally:
        driver.quit()


def _to_next_page(driver: Any, click: Any) -> None:
    """Click, then wait until the browser shows the next page, loaded.

    The old page is marked with a value on its ``window``; a navigation gives the next document a
    new ``window`` without it. Waiting for that (rather than for an old element to go stale)
    never reads the old page while the next one loads, and does not depend on how a WebDriver
    reports an element of a document that is gone.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__betrokkenOldPage = true;")
    click.click()
    WebDriverWait(driver, 120).until(
        lambda d: d.execute_script(
            "return window.__betrokkenOldPage === undefined && document.readyState === 'complete'"
        )
    )


def submit(driver: Any, form_action: str) -> None:
    """Press the submit button of the form posting to ``form_action``; wait for the next page."""
    from selenium.webdriver.common.by import By

    selector = f"form[action='{form_action}'] button[type=submit]"
    _to_next_page(driver, driver.find_element(By.CSS_SELECTOR, selector))


def follow(driver: Any, link_text: str) -> None:
    """Click the link with this text and wait for the next page."""
    from selenium.webdriver.common.by import By

    _to_next_page(driver, driver.find_element(By.LINK_TEXT, link_text))


def log_in(driver: Any, portal: PortalRun, user: PortalAccount) -> None:
    """Log ``user`` in through the login form, as a person would."""
    from selenium.webdriver.common.by import By

    driver.get(portal.url + "/inloggen")
    driver.find_element(By.ID, "gebruikersnaam").send_keys(user.name)
    driver.find_element(By.ID, "wachtwoord").send_keys(user.password)
    driver.find_element(By.ID, "code").send_keys(user.code())
    submit(driver, "/inloggen")
    text = driver.find_element(By.TAG_NAME, "body").text
    assert "Uitloggen" in text, text


def log_out(driver: Any) -> None:

    submit(driver, "/uitloggen")


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "main").text)


def assert_accessible(driver: Any) -> None:
    """axe-core on the page shown: no serious or critical violation of any of its rules (WCAG 2
    A/AA and best practices; the axe-core bundled with axe-selenium-python)."""
    from axe_selenium_python import Axe

    axe = Axe(driver)
    axe.inject()
    results = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, arguments[0])"
        ".then(r => done({violations: r.violations}))"
        ".catch(e => done({error: String(e)}));",
        {"resultTypes": ["violations"]},
    )
    assert "error" not in results, results
    serious = [v for v in results["violations"] if v.get("impact") in SERIOUS]
    assert not serious, driver.current_url + "\n" + axe.report(serious)


def files_under(*folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        if folder.exists():
            found += [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return found


def trail_entries(portal_config: Path) -> list[AuditEntry]:
    """Every record in the organisation's own trail (the node's database beside the portal)."""
    from betrokken.audit.access import with_entries
    from betrokken.audit.trail import open_trail
    from betrokken.config.load import load_node

    trail, _ = open_trail(load_node(portal_config.parent / "node.toml"))
    try:
        return [entry for _, entry in with_entries(trail.records()) if entry is not None]
    finally:
        trail.engine.dispose()
