"""A Compare view shared as a link: built in one browser session, opened in a fresh one
(Playwright driving Debian's Chromium against `streamlit run` on loopback), same numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.storage.store import Store

from .browser import launch, require_chromium, served, wait_rendered

pytestmark = pytest.mark.e2e


@pytest.fixture
def known_app(tmp_path: Path) -> Iterator[str]:
    from investigate.conftest import known_rows

    from app.ingest.pipeline import ingest_paths

    logs = tmp_path / "known.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in known_rows()))
    data = tmp_path / "data"
    assert ingest_paths(Store(data), [str(logs)]).loaded == 3000
    with served(data, tmp_path) as url:
        yield url


def test_a_shared_compare_link_opens_the_same_numbers_in_a_fresh_page(known_app: str):
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
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
