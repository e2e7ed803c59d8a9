"""The dashboard in a real browser: Debian's headless Chromium through its chromedriver.

A person signs in with the form, walks overview → pull request → change request → flag
history by following links, and the browser logs no console error on the way (a page that
broke the Content-Security-Policy would log one). Each page is checked by axe-core for
serious or critical accessibility violations, and keyboard focus starts at the skip link.
Screenshots go to `RECONCILER_TEST_SCREENSHOTS` if set, else the test's temporary folder.

`.ci/run` installs chromium, chromium-driver (apt) and axe-core (npm, into `.ci/.tools`);
under CI=true a missing one fails the test instead of skipping it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from reconciler.api import create_app
from reconciler.store import Store
from tests.support.apiclient import SETTINGS
from tests.support.apiseed import PENDING, seed
from tests.support.live import serve
from tests.support.paths import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = ROOT / ".ci" / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = {"serious", "critical"}


def missing(what: str) -> None:
    message = f"{what} is missing: `bash .ci/run` installs it"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            missing(str(path))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RECONCILER_TEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def console_errors(driver: Chrome) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry for entry in entries if entry.get("level") == "SEVERE"]


def accessibility_violations(driver: Chrome) -> list[str]:
    """axe-core's serious and critical violations on the current page, one line each."""
    if not AXE.exists():
        missing(str(AXE))
    driver.execute_script(AXE.read_text())
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done([String(e)]));"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in violations
        if isinstance(v, dict) and v.get("impact") in SERIOUS
    ]


def check_page(driver: Chrome, folder: Path, name: str) -> None:
    driver.save_screenshot(str(folder / f"{name}.png"))
    assert (folder / f"{name}.png").stat().st_size > 1000
    assert accessibility_violations(driver) == [], name
    assert console_errors(driver) == [], name


def navigate(driver: Chrome, element: WebElement) -> None:
    """Click `element` and wait until the next page has replaced this one (a click returns
    before the browser has loaded where it leads)."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(page))


def follow(driver: Chrome, text: str) -> None:
    navigate(driver, driver.find_element(By.LINK_TEXT, text))


def test_a_person_signs_in_and_walks_to_a_flags_history(
    browser: Chrome, sqlite_store: Store, screenshots: Path
) -> None:
    tokens = seed(sqlite_store)
    app = create_app(sqlite_store, settings=SETTINGS)
    with serve(app) as base:
        driver = browser
        driver.get(f"{base}/ui/")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in"
        assert "OutOfSync" not in driver.page_source
        check_page(driver, screenshots, "01-sign-in")

        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        assert driver.switch_to.active_element.text == "Skip to content"

        driver.find_element(By.ID, "token").send_keys(tokens.full)
        navigate(driver, driver.find_element(By.CSS_SELECTOR, "form.signin button"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
        assert "OutOfSync" in driver.page_source
        check_page(driver, screenshots, "02-overview")

        follow(driver, "Pull requests")
        check_page(driver, screenshots, "03-pull-requests")
        follow(driver, f"#{PENDING.pull_request_number}")
        assert driver.find_element(By.TAG_NAME, "h1").text == f"Pull request #{PENDING.pull_request_number}"
        check_page(driver, screenshots, "04-pull-request")

        follow(driver, PENDING.name)
        assert driver.current_url.endswith(f"/ui/changes/{PENDING.id}")
        check_page(driver, screenshots, "05-change-request")

        follow(driver, PENDING.resource_id)
        assert driver.current_url.endswith(f"/ui/flags/production/{PENDING.resource_id}")
        assert "History" in driver.page_source
        check_page(driver, screenshots, "06-flag-history")

        driver.get(f"{base}/ui/flags/production/checkout")
        check_page(driver, screenshots, "07-flag-with-diff")
        for name, path in (("08-changes", "/ui/changes"), ("09-rules", "/ui/rules")):
            driver.get(base + path)
            check_page(driver, screenshots, name)

        navigate(driver, driver.find_element(By.CSS_SELECTOR, "form.signout button"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in"
        driver.get(f"{base}/ui/changes")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in"
        assert "ramp-checkout" not in driver.page_source


def test_the_accessibility_check_finds_what_it_should(browser: Chrome) -> None:
    """The check above can fail: on a page with an image without text it reports it."""
    browser.get("data:text/html,<!doctype html><html><body><main><img src='x.png'></main></body></html>")
    found = accessibility_violations(browser)
    assert any(line.startswith("image-alt") for line in found), found
