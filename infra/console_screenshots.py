"""``python -m infra.console_screenshots``: the four console pages as PNGs for the README (docs/console/).

Builds what the pages show in a temporary folder (a registry with the served student, the fused
candidates and their shipped evaluations; a small Milvus Lite gallery), starts a local Kafka broker
unless ``--bootstrap`` names one, starts ``catalog console`` on a free loopback port, and drives
Debian's headless Chromium through Models, Compare, Select (the confirmation: nothing is activated)
and Search. Everything it starts is stopped by PID; the repository's registry is only read.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from infra.harness.console_stack import (
    CANDIDATES,
    SERVED,
    ConsoleServer,
    build_registry,
    load_gallery,
)

OUT = Path(__file__).resolve().parent.parent / "docs" / "console"
WIDTH = 1400


@contextlib.contextmanager
def _broker(bootstrap: str | None, work: Path) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from infra.kafka.runner import BrokerConfig, KafkaBroker

    with KafkaBroker(BrokerConfig(data_dir=work / "kafka", stop_with_parent=True)) as broker:
        yield broker.bootstrap_servers


def _browser():  # noqa: ANN202 - selenium's WebDriver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={WIDTH},900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def _shoot(driver, url: str, wait_css: str, path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_window_size(WIDTH, 900)
    driver.get(url)
    WebDriverWait(driver, 300).until(ec.presence_of_element_located((By.CSS_SELECTOR, wait_css)))
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)")
    )
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    chrome = driver.get_window_size()["height"] - int(driver.execute_script("return window.innerHeight"))
    driver.set_window_size(WIDTH, min(height, 4000) + chrome)  # the whole page, not the first screen
    driver.save_screenshot(str(path))
    print(f"{path} ({path.stat().st_size:,} bytes)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.console_screenshots", description=__doc__)
    parser.add_argument("--bootstrap", help="an existing Kafka broker (default: start a local one)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--gallery", type=int, default=2000, help="train items in the Search page's gallery")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = CANDIDATES
    with tempfile.TemporaryDirectory(prefix="console-shots-") as tmp:
        work = Path(tmp)
        how = build_registry(work / "registry", [SERVED, *chosen], log=work / "evaluate.log")
        print(f"registry: {SERVED}, {', '.join(chosen)} ({how})", flush=True)
        print(f"gallery: {load_gallery(str(work / 'milvus.db'), args.gallery)} rows", flush=True)
        with _broker(args.bootstrap, work) as bootstrap:
            env = {
                "CATALOG_KAFKA_BOOTSTRAP": bootstrap,
                "CATALOG_TOPIC_MODELS": "console-screenshots.models.v1",
                "CATALOG_REGISTRY_DIR": str(work / "registry"),
                "CATALOG_ACTIVATION_LOG": str(work / "activations.jsonl"),
                "CATALOG_MILVUS_URI": str(work / "milvus.db"),
            }
            with ConsoleServer(env, work / "console") as console:
                driver = _browser()
                try:
                    refs = "&".join(f"ref={r}" for r in (SERVED, *chosen))
                    _shoot(driver, console.url + "/", "table#models", args.out / "models.png")
                    _shoot(driver, f"{console.url}/compare?{refs}", "table#metrics", args.out / "compare.png")
                    _shoot(driver, f"{console.url}/select?ref={chosen[-1]}", "#select-form", args.out / "select.png")
                    search = f"{console.url}/search?ref={SERVED}&item=0&style=seller"
                    _shoot(driver, search, "#result", args.out / "search.png")
                finally:
                    driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
