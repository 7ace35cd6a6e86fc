"""A running network plus one organisation's portal, a user per role, and a real browser.

``running`` is the portal tests' own network, made like tests/e2e's (:func:`start_running`) and
once in a run. ``portal`` serves the ZVH's portal (the organisation that asks) as its own process
on loopback, beside that network, through ``betrokken portal serve``'s own code with one
difference: its clock is :class:`PortalClock`, real time plus an offset the tests move on
(tests/portal/clocked_portal.py). A TOTP code works once and only in its time step (or one either
side), so a test that needs the next step moves the portal's clock on to it instead of waiting.
The accounts, one per role, are made with ``betrokken portal user add`` (in this process, as a
beheerder would on the command line).

``browser`` is one headless Chromium for the whole run (:class:`Chromium`), driven by Selenium,
given to each test as a new person's: no cookie of an earlier test, so no session, one window, a
blank page. Its cache and history stay in its profile on disk, which the P1 scan
(tests/portal/test_traces.py) reads after quitting it. :func:`log_in` logs a role in with password
and TOTP code and :func:`assert_accessible` runs axe-core on the page shown.

Without Chromium (``/usr/bin/chromium`` and ``/usr/bin/chromedriver``, Debian's ``chromium`` and
``chromium-driver``) the browser tests skip with the reason; under ``CI=true`` they fail.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

from betrokken.app.demo import ZVH
from betrokken.audit.record import AuditEntry
from betrokken.clock import utcnow
from betrokken.config.load import load_portal
from tests.cli import invoke
from tests.conftest import require_or_skip
from tests.e2e.conftest import Running, ggz_only, start_running  # noqa: F401 - ggz_only

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "correct horse battery staple"  # test accounts only
SERIOUS = ("serious", "critical")
# axe-core, vendored with its licence (docs/adr/0030-a-current-axe-core-vendored.md).
AXE_FILE = Path(__file__).with_name("axe") / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
CLOCKED_PORTAL = Path(__file__).with_name("clocked_portal.py")


@dataclass
class PortalClock:
    """The portal's time: real time plus ``offset`` seconds, which only the tests move on (and
    write to ``file`` for a portal running as its own process). With ``stopped_at`` time stands
    still there unless a test moves it on: an in-process portal's throttle and sessions then see
    exactly the time the test says, however slowly a loaded machine runs the test."""

    file: Path | None = None
    offset: float = 0.0
    stopped_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        self._write()

    def __call__(self) -> dt.datetime:
        now = self.stopped_at if self.stopped_at is not None else utcnow()
        return now + dt.timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self._write()

    def _write(self) -> None:
        if self.file is not None:
            new = self.file.with_name(self.file.name + ".new")
            new.write_text(repr(self.offset))
            new.replace(self.file)  # the portal reads a whole value, never half of one


@dataclass
class PortalAccount:
    name: str
    role: str
    password: str
    secret: str
    last_step: int = 0

    def code(self, clock: PortalClock) -> str:
        """A TOTP code for the portal's current time step, which this account has not used: each
        code works once, so when the account already used this step the portal's clock is moved
        on to the next one (a person would wait half a minute; a test does not)."""
        totp = pyotp.TOTP(self.secret)
        step = int(clock().timestamp()) // totp.interval
        if step <= self.last_step:
            clock.advance((self.last_step + 1 - step) * totp.interval)
            step = self.last_step + 1
        self.last_step = step
        return totp.generate_otp(step)


@dataclass
class PortalRun:
    running: Running
    organisation: str
    url: str
    config: Path
    clock: PortalClock = field(default_factory=PortalClock)
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
        done = invoke(*args, stdin=PASSWORD + "\n")
        assert done.code == 0, done.output
        secret = next(
            line.split()[2] for line in done.stdout.splitlines() if "TOTP secret:" in line
        )
        user = PortalAccount(name, roles[0], PASSWORD, secret)
        self.users[name] = user
        return user

    def user(self, role: str) -> PortalAccount:
        return next(u for u in self.users.values() if u.role == role)


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The portal tests' own network, made once in a run like tests/e2e's (and beside it: under
    `make test` the two are driven by the two workers, docs/adr/0031-two-test-workers.md)."""
    yield from start_running(tmp_path_factory, "portal")


@pytest.fixture(scope="session")
def portal(running: Running) -> Iterator[PortalRun]:
    config = running.net.portal_configs[ZVH]
    clock = PortalClock(running.net.directory / "portal-clock")
    run = PortalRun(running, ZVH, "", config, clock)
    run.add_user("r.jansen", "regisseur")
    run.add_user("d.devries", "dpo")
    run.add_user("b.bakker", "beheerder")
    listen = load_portal(config).portal.listen
    name = f"portal-{ZVH}"
    command = [sys.executable, str(CLOCKED_PORTAL), str(config), str(clock.file)]
    running.cluster.start_process(name, command, listen)
    run.url = f"http://{listen}"
    try:
        yield run
    finally:
        running.cluster.stop_process(name)


def browser_problem() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return (
            f"no Chromium ({CHROMIUM}, {CHROMEDRIVER}); install Debian's chromium and "
            "chromium-driver (.ci/run does)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError as exc:
        return f"Selenium is not installed ({exc.name})"
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


class Chromium:
    """One headless Chromium for the run, started when first asked for; :meth:`quit` ends it, so
    that what it keeps on disk (cache, history) is written before the P1 scan reads it."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self._driver: Any = None

    def fresh(self) -> Any:
        """The browser as a new person's: no cookie of an earlier test (so no session at any
        site), one window showing a blank page, the screen a desktop's. Cache and history stay."""
        if self._driver is None:
            self._driver = start_browser(self.profile)
        driver = self._driver
        for handle in driver.window_handles[1:]:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(driver.window_handles[0])
        driver.get("about:blank")
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        driver.set_window_size(1280, 900)
        return driver

    def quit(self) -> None:
        if self._driver is not None:
            self._driver.quit()
            self._driver = None


@pytest.fixture(scope="session")
def chromium(browser_profile: Path) -> Iterator[Chromium]:
    browser = Chromium(browser_profile)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def browser(chromium: Chromium) -> Any:
    """The run's Chromium, as a new person's (:meth:`Chromium.fresh`)."""
    return chromium.fresh()


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


def press(driver: Any, element: Any) -> None:
    """Click ``element`` (a button or link found on the page) and wait for the next page."""
    _to_next_page(driver, element)


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
    driver.find_element(By.ID, "code").send_keys(user.code(portal.clock))
    submit(driver, "/inloggen")
    text = driver.find_element(By.TAG_NAME, "body").text
    assert "Uitloggen" in text, text


def log_out(driver: Any) -> None:

    submit(driver, "/uitloggen")


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "main").text)


def axe_source() -> str:
    """The vendored axe-core (tests/portal/axe/axe.min.js), refused unless it is exactly the
    release the ADR names: its SHA-256 is checked on every read, so a changed file fails every
    browser test instead of testing against rules nobody chose."""
    data = AXE_FILE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == AXE_SHA256, (
        f"{AXE_FILE} is not axe-core {AXE_VERSION} (SHA-256 {digest}); see tests/portal/axe/SOURCE"
    )
    return data.decode("utf-8")


def assert_accessible(driver: Any) -> None:
    """axe-core on the page shown: no serious or critical violation of any of its rules (WCAG 2.0,
    2.1 and 2.2 A/AA and best practices), run by the vendored axe-core 4.14.1
    (docs/adr/0030-a-current-axe-core-vendored.md)."""
    driver.execute_script(axe_source())
    results = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, arguments[0])"
        ".then(r => done({version: axe.version, violations: r.violations}))"
        ".catch(e => done({error: String(e)}));",
        {"resultTypes": ["violations"]},
    )
    assert "error" not in results, results
    assert results["version"] == AXE_VERSION, results["version"]
    serious = [v for v in results["violations"] if v.get("impact") in SERIOUS]
    assert not serious, driver.current_url + "\n" + axe_report(serious)


def axe_report(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['impact']}: {violation['id']} - {violation['help']}")
        for node in violation.get("nodes", [])[:5]:
            lines.append(f"    {node.get('target')}: {node.get('failureSummary', '')}")
    return "\n".join(lines)


# What scrolls sideways on the page shown (WCAG 1.4.10 Reflow): the page's own width against the
# window's, and every element that sticks out on the right or scrolls sideways by itself.
OVERFLOW = """
const root = document.documentElement;
const wide = [];
for (const el of document.querySelectorAll('body *')) {
  const style = getComputedStyle(el);
  if (style.display === 'none' || style.visibility === 'hidden') continue;
  const box = el.getBoundingClientRect();
  if (box.width === 0 && box.height === 0) continue;
  const scrolls = ['auto', 'scroll'].includes(style.overflowX)
    && el.scrollWidth > el.clientWidth + 1;
  if (box.right > root.clientWidth + 1 || scrolls) {
    const cls = typeof el.className === 'string' && el.className
      ? '.' + el.className.split(' ').join('.') : '';
    wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls
      + ' right=' + Math.round(box.right) + (scrolls ? ' scrolls sideways' : ''));
  }
}
return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide: wide.slice(0, 8)};
"""


def sideways(driver: Any) -> list[str]:
    """What makes the page shown scroll sideways (empty: it reflows)."""
    found = driver.execute_script(OVERFLOW)
    problems = list(found["wide"])
    if found["scrollWidth"] > found["clientWidth"]:
        problems.insert(0, f"page {found['scrollWidth']} px wide in {found['clientWidth']} px")
    return problems


def phone(driver: Any, width: int = 390) -> None:
    """Show pages as a phone does (``width`` CSS px, mobile viewport)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )


def shot(driver: Any, name: str) -> None:
    """With BETROKKEN_SCREENSHOTS=<folder>: the whole page at the width shown, as <name>.png
    (docs/screenshots/ holds the ones docs/portal.md shows)."""
    folder = os.environ.get("BETROKKEN_SCREENSHOTS")
    if not folder:
        return
    width = driver.execute_script("return document.documentElement.clientWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    data = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    Path(folder, f"{name}.png").write_bytes(base64.b64decode(data["data"]))


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
