"""The Detect page in a real browser (Playwright driving Debian's Chromium against
`streamlit run` on loopback) on the demo data: the demo's canary finding is shown with its
scope, the slice it sits in and the canary's flag as its first suspect, and picking the
feature narrows the page to that feature's findings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import launch, require_chromium, served, wait_rendered

pytestmark = pytest.mark.e2e


@pytest.fixture
def app_url(demo_dir: Path, tmp_path: Path) -> Iterator[str]:
    with served(demo_dir, tmp_path) as url:
        yield url


def finding_headings(page) -> list[str]:
    return [t.strip() for t in page.locator("h3").all_inner_texts() if t.strip().startswith("🔴")]


def test_detect_shows_the_demo_canary_finding_and_narrows_to_a_feature(app_url: str):
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a loaded machine draws the page slowly

    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        try:
            page.goto(f"{app_url}/detect")
            wait_rendered(page)
            expect(page.get_by_role("heading", name="🚨 Detect")).to_be_visible()
            canary = page.get_by_role("heading", name="🔴 doc-summarizer: error_rate")
            expect(canary).to_be_visible()
            # the finding's bordered box: the innermost block holding its heading
            box = page.locator('[data-testid="stVerticalBlock"]').filter(has=canary).last
            expect(box.get_by_text("🧩 partial")).to_be_visible()
            tables = box.get_by_test_id("stTable")
            expect(tables).to_have_count(2, timeout=60_000)  # drawn after the heading: wait for both
            sits, changed = tables.all()
            expect(sits).to_contain_text("variant")
            expect(sits).to_contain_text("canary")
            expect(changed).to_contain_text("doc-summarizer-rollout")  # the canary's flag, first
            assert "doc-summarizer-rollout" in changed.locator("tbody tr").first.inner_text()
            expect(box.get_by_role("link", name="the rest against variant = canary")).to_be_visible()
            every = finding_headings(page)
            assert len(every) > 2 and any("support-reply" in h for h in every)
            page.screenshot(path="/tmp/e2e-detect.png", full_page=True)

            page.get_by_test_id("stSelectbox").filter(has_text="Feature").click()
            page.get_by_role("option", name="doc-summarizer", exact=True).click()
            expect(page.get_by_role("heading", name="🔴 support-reply: quality_score")).to_have_count(0)
            wait_rendered(page)
            shown = finding_headings(page)
            assert shown == [h for h in every if h.startswith("🔴 doc-summarizer:")]
        finally:
            browser.close()
