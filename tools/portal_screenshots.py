"""Screenshots of the regisseur's portal pages, 1280 px wide: python tools/portal_screenshots.py

Builds a small development network (synthetic BSNs), starts it with the ZVH's portal, logs a
regisseur in with a headless Chromium and saves each page to docs/screenshots/ (the whole page
height). Used by docs/portal.md; run it again after changing a page.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyotp
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from betrokken.app.cluster import Cluster, betrokken_command
from betrokken.app.demo import ORGS, RECLASSERING, ZVH, synthetic_population, write_export
from betrokken.app.demo_portal import add_account
from betrokken.app.devnet import init_network

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
WIDTH = 1280


def _wait(driver: Any, old: Any) -> None:
    WebDriverWait(driver, 120).until(expected_conditions.staleness_of(old))
    WebDriverWait(driver, 120).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _submit(driver: Any, action: str) -> None:
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, f"form[action='{action}'] button[type=submit]").click()
    _wait(driver, old)


def _shot(driver: Any, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, max(700, int(height) + 20))
    path = OUT / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, 900)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="betrokken-screens-"))
    net = init_network(work / "net", ORGS, name="demo-kennemerland")
    truth, named = synthetic_population(random.Random(11), ORGS, 30)
    cluster = Cluster(net)
    cluster.start()
    driver = None
    try:
        exports = work / "exports"
        exports.mkdir()
        for org in ORGS:
            write_export(exports / f"{org}.csv", truth.registrations[org])
            subprocess.run(
                betrokken_command(
                    "node", "import", "--config", net.node_configs[org], exports / f"{org}.csv",
                    "--quiet",
                ),
                capture_output=True, check=False,
            )  # fmt: skip
        account = add_account(cluster, ZVH, "r.jansen", ("regisseur",))
        url = cluster.start_portal(ZVH)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         f"--window-size={WIDTH},900", "--hide-scrollbars", "--lang=nl-NL",
                         f"--user-data-dir={work / 'profile'}"):  # fmt: skip
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)

        driver.get(url + "/inloggen")
        _shot(driver, "inloggen")
        driver.find_element(By.ID, "gebruikersnaam").send_keys(account.name)
        driver.find_element(By.ID, "wachtwoord").send_keys(account.password)
        driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(account.secret).now())
        _submit(driver, "/inloggen")
        _shot(driver, "regisseur-vraag")

        def ask(digits: str, case: str) -> None:
            driver.get(url + "/vraag")
            driver.find_element(By.ID, "bsn").send_keys(digits)
            Select(driver.find_element(By.ID, "doel")).select_by_value("zvh-triage")
            driver.find_element(By.ID, "zaak").send_keys(case)
            _submit(driver, "/vraag")

        ask(named["several"].digits, "ZVH-2026-0142")
        _shot(driver, "regisseur-antwoord-betrokken")
        ask(named["nowhere"].digits, "ZVH-2026-0143")
        _shot(driver, "regisseur-antwoord-nergens")
        ask("123456780", "ZVH-2026-0145")
        _shot(driver, "regisseur-tikfout")

        lijst = work / "ochtendlijst.csv"
        rows = [
            (named["nowhere"], "ZVH-2026-0151"),
            (named["several"], "ZVH-2026-0150"),
            (named["one"], "ZVH-2026-0152"),
        ]
        lijst.write_text(
            "Zaaknummer;BSN;Geboortedatum\n"
            + "".join(f"{case};{bsn.digits};01-02-1990\n" for bsn, case in rows)
        )
        driver.get(url + "/lijst")
        _shot(driver, "regisseur-lijst")
        cluster.stop_node(RECLASSERING)
        try:
            driver.find_element(By.ID, "bestand").send_keys(str(lijst))
            _submit(driver, "/lijst")
        finally:
            lijst.unlink()
            cluster.start_node(RECLASSERING)
        _shot(driver, "regisseur-lijst-onvolledig")
        driver.get(url + "/mijn-vragen")
        _shot(driver, "regisseur-mijn-vragen")
        driver.get(url + "/taal/en?terug=/vraag")
        _shot(driver, "regisseur-vraag-english")
        driver.get(url + "/taal/nl?terug=/vraag")
    finally:
        if driver is not None:
            driver.quit()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
