"""A person's path through the console in a real browser: Debian's headless Chromium, the console as a real
server on 127.0.0.1, the real broker.

Open Models, tick two candidates, Compare them (the table, the verdicts, every example image loaded),
Select one through the form, and read the ModelActivated back from Kafka: key ``active``, the right
ref and the sha256 its manifest records. Search renders a result for a test item.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from infra.harness.console_stack import CANDIDATES, SERVED, build_registry, load_gallery, serve_worker_metrics
from model_store.datasets.fashion_mnist import CLASS_NAMES
from model_store.registry import WEIGHTS_FILE, ModelRegistry
from streams.events import ACTIVATION_KEY, ModelActivated
from tests.support.console import topic_records
from tests.support.console_fixture import console_on_own_topic
from tests.support.worker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@dataclass(frozen=True)
class Stack:
    url: str
    bootstrap: str
    topic: str
    registry: Path
    candidates: tuple[str, ...]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("console-browser")
    registry = work / "registry"
    chosen = CANDIDATES
    build_registry(registry, [SERVED, *chosen], log=work / "evaluate.log")
    load_gallery(str(work / "milvus.db"))
    metrics_port = free_port()
    metrics = serve_worker_metrics(metrics_port)
    extra_env = {"CATALOG_CONSOLE_WORKER_METRICS_URLS": f'["http://127.0.0.1:{metrics_port}/metrics"]'}
    try:
        with console_on_own_topic(kafka_bootstrap_servers, work, registry, extra_env) as (console, topic):
            yield Stack(console.url, kafka_bootstrap_servers, topic, registry, chosen)
    finally:
        metrics.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed (Debian chromium, chromium-driver: infra/bootstrap.sh)")
    os.environ["SE_OFFLINE"] = "true"  # selenium must never download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(300)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, css: str, timeout: float = 300) -> WebElement:
    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _images_loaded(driver: WebDriver, images: list[WebElement]) -> list[int]:
    """naturalWidth of every image once the browser finished loading it (0 = broken)."""
    WebDriverWait(driver, 60).until(lambda d: all(d.execute_script("return arguments[0].complete", i) for i in images))
    return [int(driver.execute_script("return arguments[0].naturalWidth", i)) for i in images]


def test_compare_two_candidates_and_select_one(stack: Stack, browser: WebDriver) -> None:
    first, second = stack.candidates
    browser.get(stack.url + "/")
    table = _wait(browser, "table#models")
    rows = {r.get_attribute("data-ref"): r for r in table.find_elements(By.CSS_SELECTOR, "tr[data-ref]")}
    assert {SERVED, first, second} <= set(rows)
    assert rows[SERVED].find_element(By.CSS_SELECTOR, ".badge").text == "active"
    assert rows[first].find_element(By.CSS_SELECTOR, ".badge").text == "candidate"
    assert "not evaluated" not in rows[first].text  # its stored figures are shown

    for ref in (first, second):
        browser.find_element(By.CSS_SELECTOR, f'input[name="ref"][value="{ref}"]').click()
    browser.find_element(By.ID, "compare-button").click()

    metrics = _wait(browser, "table#metrics")
    headers = [th.text for th in metrics.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers[1:] == [first, second]
    body_rows = metrics.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(body_rows) >= 10 and any("fine accuracy" in r.text for r in body_rows)
    verdicts = browser.find_elements(By.CSS_SELECTOR, "#verdict li.paired")
    assert len(verdicts) == 2 and all("95 % interval" in v.text for v in verdicts)  # seller and plain, vs the first
    examples = browser.find_elements(By.CSS_SELECTOR, "#examples img")
    assert examples, "no example images"
    assert all(width > 0 for width in _images_loaded(browser, examples))
    for wrong in browser.find_elements(By.CSS_SELECTOR, "#examples li.neighbour.wrong"):
        assert "wrong category" in wrong.text  # marked in words, not by colour alone

    browser.find_element(By.CSS_SELECTOR, f'#columns a.button[href="/select?ref={second.replace("@", "%40")}"]').click()
    _wait(browser, "#select-form")
    assert "switches partition by partition" in browser.find_element(By.ID, "rollout-note").text
    assert f"serves {SERVED}" in browser.find_element(By.ID, "workers").text
    by = browser.find_element(By.ID, "by")
    by.clear()
    by.send_keys("browser-test")
    browser.find_element(By.ID, "activate-button").click()

    published = _wait(browser, "#published").text
    match = re.search(rf"activation published to {re.escape(stack.topic)} at offset (\d+)", published)
    assert match, published
    records = asyncio.run(topic_records(stack.bootstrap, stack.topic))
    last = records[-1]
    assert last.offset == int(match.group(1)) and last.key == ACTIVATION_KEY
    event = ModelActivated.model_validate_json(last.value)
    assert event.model_ref == second and event.activated_by == "browser-test" and event.previous_ref == SERVED
    assert event.sha256 == ModelRegistry(stack.registry).load_manifest(second).files[WEIGHTS_FILE]

    browser.get(stack.url + "/")
    assert second in _wait(browser, "#serving").text
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-ref="{SERVED}"]')
    assert row.find_element(By.CSS_SELECTOR, ".badge").text == "retired"


def test_search_shows_a_result_for_a_test_item(stack: Stack, browser: WebDriver) -> None:
    browser.get(stack.url + "/search")
    Select(_wait(browser, "#item-ref")).select_by_value(SERVED)  # the model whose gallery was loaded
    item = browser.find_element(By.ID, "item")
    item.clear()
    item.send_keys("7")
    browser.find_element(By.ID, "item-button").click()

    label = _wait(browser, "#voted-label").text
    assert label in CLASS_NAMES
    assert re.fullmatch(r"\d+ %", browser.find_element(By.ID, "vote-share").text)
    similar = browser.find_elements(By.CSS_SELECTOR, "#similar img")
    assert len(similar) >= 5 and all(width > 0 for width in _images_loaded(browser, similar))
    assert browser.find_elements(By.CSS_SELECTOR, "svg#photo rect.box"), "the quality block's position box"
    assert "total" in browser.find_element(By.ID, "quality").text
