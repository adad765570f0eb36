"""A Compare view shared as a link: built in one browser session, opened in a fresh one
(Playwright driving Debian's Chromium against `streamlit run` on loopback), same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.storage.store import Store

from .test_browser import CHROMIUM, free_port, require_chromium, wait_rendered

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture
def known_app(tmp_path: Path) -> Iterator[str]:
    from investigate.conftest import known_rows

    from app.ingest.pipeline import ingest_paths

    logs = tmp_path / "known.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in known_rows()))
    data = tmp_path / "data"
    assert ingest_paths(Store(data), [str(logs)]).loaded == 3000
    port = free_port()
    env = {**os.environ, "ROLLBACK_DESK_DATA": str(data), "HOME": str(tmp_path)}
    streamlit = Path(sys.executable).with_name("streamlit")
    proc = subprocess.Popen(
        [
            str(streamlit),
            "run",
            "app/ui/streamlit_app.py",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"streamlit did not become healthy:\n{out}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_shared_compare_link_opens_the_same_numbers_in_a_fresh_page(known_app: str):
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        try:
            # one person builds the comparison by hand
            first = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            first.set_default_timeout(60_000)
            first.goto(f"{known_app}/compare?feature=support-bot")
            wait_rendered(first)
            expect(first.get_by_role("heading", name="⚖️ Compare")).to_be_visible()
            for label, value in (("Arm a (baseline)", "prompt_version=v7"), ("Arm b", "prompt_version=v8")):
                box = first.get_by_role("textbox", name=label, exact=True)
                box.fill(value)
                box.press("Enter")
                wait_rendered(first)
            table = first.get_by_test_id("stTable")
            expect(table).to_contain_text("12.50%")
            expect(table).to_contain_text("2.50%")
            shown = table.inner_text()
            expect(first.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
            shared = first.url
            assert "a=prompt_version" in shared and "b=prompt_version" in shared
            first.screenshot(path="/tmp/e2e-compare-built.png", full_page=True)

            # a colleague opens the link in a fresh session
            second = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            second.set_default_timeout(60_000)
            second.goto(shared)
            wait_rendered(second)
            again = second.get_by_test_id("stTable")
            expect(again).to_contain_text("12.50%")
            assert again.inner_text() == shown
            expect(second.get_by_role("textbox", name="Arm a (baseline)")).to_have_value("prompt_version=v7")
            expect(second.get_by_role("textbox", name="Arm b", exact=True)).to_have_value("prompt_version=v8")
            second.screenshot(path="/tmp/e2e-compare-shared.png", full_page=True)
        finally:
            browser.close()
