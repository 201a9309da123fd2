"""The portal in a real browser: headless Chromium (Debian's ``chromium`` and ``chromedriver``)
driven by Selenium against ``prosima serve`` running as a process on a free loopback port. A real
anchored slice and a tampered copy are uploaded through the page's form and their verdicts read off
the page, with JavaScript on and off; the proof is downloaded from the verdict page and checked
offline; the page loads nothing the Content-Security-Policy refuses. A screenshot of each page is
saved under a folder the test prints (and copied to ``$PROSIMA_SCREENSHOTS`` when it is set).

Skipped, with the reason, only where Chromium, its driver or Selenium is not installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from prosima.app.ledger_queries import check_proof
from prosima.imaging.io import read_image
from prosima.imaging.shards import plan_shards

READY_SECONDS = 180.0
WAIT_SECONDS = 120.0
WINDOW = (1366, 900)  # a laptop screen
SCREENSHOTS_ENV = "PROSIMA_SCREENSHOTS"


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None
    )
    if browser is None or driver is None:
        pytest.skip(
            "headless Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does): "
            f"chromium {'found' if browser else 'missing'}, chromedriver {'found' if driver else 'missing'}"
        )
    pytest.importorskip("selenium", reason="Selenium is not installed (pip install -e '.[test]')")
    return browser, driver


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    return _chromium()


@pytest.fixture(scope="module")
def portal(service_ledger, chromium) -> Iterator[str]:
    """``prosima serve`` on the shared test ledger, as a process; its base URL once it is ready."""
    ledger = service_ledger[0]
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # two test processes share two cores
    command = [sys.executable, "-m", "prosima.cli", "serve", "--ledger", str(ledger), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert found, line
        base = found.group(1)
        deadline = time.monotonic() + READY_SECONDS
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the service did not get ready"
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
        assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("portal-screenshots")
    print(
        f"\nportal screenshots: {folder}"
        + (f" (copied to ${SCREENSHOTS_ENV})" if os.environ.get(SCREENSHOTS_ENV) else "")
    )
    return folder


def _save(driver, folder: Path, name: str) -> Path:
    """A screenshot of the whole page (the window stretched to its height) as ``name``.png."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WINDOW[0], max(WINDOW[1], min(height, 6000)))
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    driver.set_window_size(*WINDOW)
    copy_to = os.environ.get(SCREENSHOTS_ENV)
    if copy_to:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(copy_to) / path.name)
    print(f"saved {path}")
    return path


def _browser(chromium: tuple[str, str], profile: Path, downloads: Path, *, javascript: bool):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the test may run as root, as CI does
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(WAIT_SECONDS)
    session.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return session


@pytest.fixture
def browser(chromium, tmp_path) -> Iterator:
    session = _browser(chromium, tmp_path / "profile", tmp_path / "downloads", javascript=True)
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture
def browser_without_javascript(chromium, tmp_path) -> Iterator:
    session = _browser(chromium, tmp_path / "profile-nojs", tmp_path / "downloads-nojs", javascript=False)
    try:
        yield session
    finally:
        session.quit()


def _verify_through_the_page(driver, portal: str, image: Path) -> str:
    """Open the verify page, choose ``image`` in its file field, submit, and read the verdict's
    heading off the page it answers."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{portal}/portal")
    driver.find_element(By.ID, "file").send_keys(str(image))
    driver.find_element(By.CSS_SELECTOR, "form.upload button[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS).until(ec.presence_of_element_located((By.ID, "verdict-title")))
    return " ".join(driver.find_element(By.ID, "verdict-title").text.split())


def _wait_for(driver, condition) -> None:
    """Wait (up to WAIT_SECONDS) until ``condition(driver)`` holds: a click that navigates may return
    before the next page is there on a loaded machine."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_SECONDS).until(condition)


def _expected_changed_shards(original: Path, tampered: Path, k: int) -> list[int]:
    """The shards the tampered copy's changed pixels fall in, from the pixels themselves."""
    a, b = read_image(original).array, read_image(tampered).array
    rows, columns = np.nonzero(a != b)
    grid = plan_shards(a.shape, k)
    hit = []
    for shard in grid.shards:
        (r0, r1), (c0, c1) = shard.core
        if ((rows >= r0) & (rows < r1) & (columns >= c0) & (columns < c1)).any():
            hit.append(shard.index)
    return hit


def _words(shards: list[int]) -> str:
    *first, last = (str(i) for i in shards)
    return f"shards {', '.join(first)} and {last}" if first else f"shard {last}"


def _console_problems(driver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]


def test_chromium_reads_the_verdicts_of_a_real_slice_and_a_tampered_copy(
    browser, portal, service_ledger, screenshots
):
    from selenium.webdriver.common.by import By

    _, originals, _, tampered = service_ledger
    title = _verify_through_the_page(browser, portal, originals[0])
    assert title == "Verified Exact original"
    heatmap = browser.find_element(By.CSS_SELECTOR, "img.heatmap")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", heatmap) > 0
    assert "Checked: the inclusion proof holds." in browser.page_source
    _save(browser, screenshots, "verdict-anchored-slice")

    with httpx.Client(base_url=portal, timeout=60) as client:
        api = client.post("/v1/verify", files={"file": (tampered.name, tampered.read_bytes())}).json()
    expected = _expected_changed_shards(originals[0], tampered, len(api["shard_cosines"]))
    assert api["differing_shards"] == expected
    title = _verify_through_the_page(browser, portal, tampered)
    assert title == f"Not verified Changed: {_words(expected)} differ"
    rows = browser.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=shards-title] tbody tr")
    assert [int(r.find_elements(By.TAG_NAME, "td")[0].text) for r in rows] == expected
    alt = browser.find_element(By.CSS_SELECTOR, "img.heatmap").get_attribute("alt")
    assert f"{_words(expected)} shaded red" in alt
    _save(browser, screenshots, "verdict-tampered-copy")
    assert _console_problems(browser) == []


def test_the_upload_works_with_javascript_off(
    browser_without_javascript, portal, service_ledger, screenshots
):
    _, originals, _, tampered = service_ledger
    assert (
        _verify_through_the_page(browser_without_javascript, portal, originals[1])
        == "Verified Exact original"
    )
    _save(browser_without_javascript, screenshots, "verdict-without-javascript")
    assert _verify_through_the_page(browser_without_javascript, portal, tampered).startswith(
        "Not verified Changed:"
    )


def test_the_proof_downloaded_from_the_verdict_page_checks_offline(
    browser, portal, service_ledger, screenshots, tmp_path
):
    from selenium.webdriver.common.by import By

    ledger, originals, _, _ = service_ledger
    _verify_through_the_page(browser, portal, originals[0])
    browser.find_element(By.PARTIAL_LINK_TEXT, "Check this proof offline").click()
    downloads = tmp_path / "downloads"
    deadline = time.monotonic() + WAIT_SECONDS
    while not (found := [p for p in downloads.glob("proof-*.json")]):
        assert time.monotonic() < deadline, (
            list(downloads.iterdir()) if downloads.exists() else "no downloads"
        )
        time.sleep(0.1)
    result = check_proof(found[0], registry=ledger / "registry.cbor")
    assert result.ok and result.pinned, result.problems

    browser.find_element(By.LINK_TEXT, "Ledger").click()
    _wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Ledger")
    assert browser.find_elements(By.CSS_SELECTOR, "a[href^='/portal/blocks/']")
    _save(browser, screenshots, "ledger")
    record_tx = json.loads(found[0].read_text())["tx_id"]
    browser.find_element(By.ID, "q").send_keys(record_tx)
    browser.find_element(By.CSS_SELECTOR, "form.search button[type=submit]").click()
    _wait_for(browser, lambda d: d.current_url.endswith(f"/portal/records/{record_tx}"))
    assert "Checked: the inclusion proof holds." in browser.page_source
    _save(browser, screenshots, "record")
    browser.find_element(By.LINK_TEXT, "Audit report").click()
    _wait_for(browser, lambda d: "The chain verifies" in d.page_source)
    assert browser.find_element(By.CSS_SELECTOR, "button[data-print]").is_displayed()  # the script ran
    _save(browser, screenshots, "audit-report")
    assert _console_problems(browser) == []
