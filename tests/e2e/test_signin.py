"""Sign-in for real: the npm `oidc-provider` on loopback, the console started with an [auth]
section pointing at it, and Chromium signing in through the provider's login page. A viewer
sees their name, presses the kill switch and is refused (on record); a responder's press is
verified; both are on the audit trail under their signed-in identity and role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from components import require

from app.cli import main
from app.demo.flags import write_demo_flags
from app.storage import trail

from .browser import launch, require_chromium, wait_rendered

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = {
    "vic": {"email": "vic@example.com", "name": "Vic Viewer"},
    "ana": {"email": "ana@example.com", "name": "Ana Responder", "groups": ["incident-responders"]},
}
ACCESS = "default_role: viewer\ngroups:\n  incident-responders: responder\n"

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def signin_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    import oidc_fixture

    missing = oidc_fixture.missing_components()
    require(not missing, ", ".join(missing))
    require_chromium()
    data_dir = tmp_path / "data"
    write_demo_flags(data_dir)
    (data_dir / "access.yaml").write_text(ACCESS)
    logs = tmp_path / "requests.jsonl"
    logs.write_text(
        "".join(
            json.dumps(
                {"timestamp": f"2026-11-20T10:{i:02d}:00Z", "feature": "support-reply", "latency_ms": 100 + i}
            )
            + "\n"
            for i in range(30)
        )
    )
    assert main(["ingest", str(logs), "--data-dir", str(data_dir), "--json"]) == 0
    port = oidc_fixture.free_port()
    provider = oidc_fixture.OidcProvider(f"http://127.0.0.1:{port}/oauth2callback", ACCOUNTS)
    provider.start()
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    (home / ".streamlit" / "secrets.toml").write_text(provider.secrets_toml())
    env = {**os.environ, "ROLLBACK_DESK_DATA": str(data_dir), "HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("ROLLBACK_DESK_UNAUTHENTICATED", None)
    app = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except requests.RequestException:
                pass
            if app.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the console did not start:\n{app.stdout.read().decode()}")
            time.sleep(0.2)
        yield url, data_dir
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
        provider.stop()


def sign_in(browser, url: str, login: str):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    wait_rendered(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector('input[name="login"]')  # the provider's own login page
    assert page.url.startswith("http://127.0.0.1:") and "/interaction/" in page.url
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', "any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent
    page.wait_for_url(f"{url}/**")
    wait_rendered(page)
    expect(page.get_by_text(f"Signed in as {ACCOUNTS[login]['name']}")).to_be_visible()
    return page


def press_kill(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/feature?feature=support-reply")
    wait_rendered(page)
    page.get_by_role("button", name="🛑 Kill switch (feature off)").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Acting as:")).to_be_visible()
    dialog.get_by_label("Reason").fill("sign-in drill")
    dialog.get_by_label("Reason").press("Tab")
    dialog.get_by_role("button", name="Confirm").click()


def kill_switch_state(data_dir: Path) -> str:
    return json.loads((data_dir / "flags.json").read_text())["flags"]["support-reply-enabled"]["state"]


def test_sign_in_through_the_provider_then_refused_as_viewer_and_verified_as_responder(signin_app):
    from playwright.sync_api import expect, sync_playwright

    url, data_dir = signin_app
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = sign_in(browser, url, "vic")
            expect(page.get_by_text("vic@example.com · viewer")).to_be_visible()
            press_kill(page, url)
            expect(page.get_by_text("vic@example.com is a viewer: may not act on a flag")).to_be_visible()
            page.screenshot(path="/tmp/signin-viewer-refused.png", full_page=True)
            assert kill_switch_state(data_dir) == "ENABLED"

            page = sign_in(browser, url, "ana")
            press_kill(page, url)
            expect(
                page.get_by_test_id("stAlertContentSuccess").filter(has_text="kill verified")
            ).to_be_visible()
            assert kill_switch_state(data_dir) == "DISABLED"

            # the audit page, as the responder reads it; then only the refused presses
            page.goto(f"{url}/audit")
            wait_rendered(page)
            expect(
                page.get_by_text("Latest press: ana@example.com (responder) · kill support-reply · verified")
            ).to_be_visible()
            page.get_by_role("combobox", name="Outcome").click()
            page.get_by_role("option", name="failed").click()
            expect(
                page.get_by_text("Latest press: vic@example.com (viewer) · kill support-reply · failed")
            ).to_be_visible()
            page.screenshot(path="/tmp/signin-audit.png", full_page=True)
        finally:
            browser.close()
    entries = trail.entries(data_dir)
    assert [(e.operator, e.operator_role, e.outcome, e.reason) for e in entries] == [
        ("ana@example.com", "responder", "verified", "sign-in drill"),
        ("vic@example.com", "viewer", "failed", "sign-in drill"),
    ]
