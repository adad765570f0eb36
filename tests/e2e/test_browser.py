"""One end-to-end run in a real browser (Playwright driving Debian's Chromium) against the app
started with `streamlit run` on loopback, on the demo data and its flagd-file flags:
feature -> incident -> canary playbook -> confirmed rollback -> verified -> post-mortem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.flags.flagd_file import FlagdFileBackend

from .browser import launch, require_chromium, served, wait_rendered

SHOTS = Path("/tmp")

pytestmark = pytest.mark.e2e


@pytest.fixture
def app_url(demo_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with served(demo_dir, tmp_path) as url:
        yield url, demo_dir


def test_canary_incident_from_feature_to_verified_rollback_and_post_mortem(app_url, tmp_path):
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    url, data_dir = app_url
    flags_before = json.loads((data_dir / "flags.json").read_text())
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        try:
            # the degraded feature
            page.goto(f"{url}/feature?feature=doc-summarizer")
            wait_rendered(page)
            expect(page.get_by_role("heading", name="📈 Feature timeline")).to_be_visible()
            expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
            page.screenshot(path=str(SHOTS / "e2e-1-feature.png"))

            # open an incident for it (same browser session: the feature carries over)
            page.get_by_role("link", name="Incidents").click()
            expect(page.get_by_role("heading", name="🧯 Incidents")).to_be_visible()
            # the page opens on the demo's own incident (INC-0001), the form folded
            page.get_by_text("➕ Open an incident").click()
            expect(page.get_by_text("change flag, scope partial")).to_be_visible()
            expect(page.get_by_role("textbox", name="Title")).to_have_value("doc-summarizer degraded")
            page.get_by_role("button", name="🧯 Open incident").click()
            expect(page.get_by_text("0 of 7 steps done or skipped")).to_be_visible()
            page.screenshot(path=str(SHOTS / "e2e-2-incident.png"), full_page=True)

            # follow the playbook to its rollback step and confirm the rollback
            expect(page.get_by_text("rollback: Roll the canary back to 0%")).to_be_visible()
            page.get_by_role("button", name="📉 Canary to 0%").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible()
            expect(dialog.get_by_text("Before:")).to_be_visible()
            expect(dialog.get_by_text("Acting as:")).to_be_visible()
            dialog.get_by_label("Reason").fill("canary errors at 11%")
            dialog.get_by_label("Reason").press("Tab")
            page.screenshot(path=str(SHOTS / "e2e-3-confirm.png"))
            dialog.get_by_role("button", name="Confirm").click()
            expect(
                page.get_by_test_id("stAlertContentSuccess").filter(has_text="rollout verified")
            ).to_be_visible()
            expect(page.get_by_text("rollout doc-summarizer-canary: verified").first).to_be_visible()
            page.screenshot(path=str(SHOTS / "e2e-4-verified.png"), full_page=True)

            canary = json.loads((data_dir / "flags.json").read_text())["flags"]["doc-summarizer-canary"]
            assert canary != flags_before["flags"]["doc-summarizer-canary"]
            served = FlagdFileBackend(data_dir / "flags.json").read("doc-summarizer-canary")
            assert served.environment("production").rollout_percentage == 0

            # export the post-mortem, once the reruns after the action have finished
            wait_rendered(page)
            page.get_by_role("tab", name="📝 Post-mortem").click()
            with page.expect_download() as download:
                page.get_by_role("button", name="⬇️ Download post-mortem (markdown)").click()
            target = tmp_path / "postmortem.md"
            download.value.save_as(target)
            page.screenshot(path=str(SHOTS / "e2e-5-postmortem.png"), full_page=True)
        finally:
            browser.close()

    text = target.read_text()
    timeline = text.split("## Timeline")[1].split("## Actions taken")[0]
    assert "| logs | Degradation of error_rate began in doc-summarizer" in timeline
    assert "Incident opened: doc-summarizer degraded (SEV2) from feature page" in timeline
    assert "rollout doc-summarizer-canary (production): 10% -> 0%: verified" in timeline
    assert "reason: canary errors at 11%" in timeline
    assert "| Scope | partial: variant = canary |" in text
    assert "| Time to mitigate (from opening) |" in text
