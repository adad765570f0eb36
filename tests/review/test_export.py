"""`rollback-desk review`: the JSON contract, markdown checked with a markdown parser, the
HTML opened in Chromium with its charts drawn, and the summary posted to a webhook."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from components import require
from markdown_it import MarkdownIt

from app.cli import main

from .receiver import SECRET_PATH, Receiver

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(os.environ.get("ROLLBACK_DESK_TEST_OUTPUT", "/tmp"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_follows_the_contract(demo_dir: Path, capsys):
    code, out, _ = run(capsys, "review", "--data-dir", str(demo_dir), "--week", "2026-W44", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["period"] == {
        "since": "2026-10-26T00:00:00Z",
        "until": "2026-11-02T00:00:00Z",
        "week": "2026-W44",
    }
    by_name = {f["feature"]: f for f in doc["features"]}
    code_assistant = by_name["code-assistant"]
    assert set(code_assistant) >= {
        "feature",
        "requests",
        "cost_usd",
        "cost_per_request_usd",
        "slos",
        "week_over_week",
    }
    slo = next(s for s in code_assistant["slos"] if s["name"] == "availability")
    assert set(slo) >= {
        "name",
        "sli",
        "objective",
        "window_days",
        "attainment",
        "budget_total",
        "budget_spent",
        "budget_remaining",
        "alerts",
    }
    assert 0 <= slo["attainment"] <= 1 and slo["window_days"] == 28
    assert slo["budget_remaining"] == pytest.approx(slo["budget_total"] - slo["budget_spent"], abs=1e-3)
    assert "page-fast" in {a["rule"] for a in slo["alerts"]}
    assert by_name["search-answers"]["slos"] == []  # no objectives: none invented
    for pair in code_assistant["week_over_week"].values():
        assert len(pair) == 2
    model = doc["changes"]["by_kind"]["model"]
    assert set(model) == {"count", "failed", "failure_rate", "median_recovery_min"}
    [failed] = doc["changes"]["failed"]
    assert set(failed) >= {"change_id", "feature", "kind", "key", "from", "to", "timestamp", "why"}
    assert (failed["feature"], failed["kind"], failed["to"]) == (
        "code-assistant",
        "model",
        "gpt-4.1-2025-04-14",
    )
    assert model["failed"] == 1 and model["median_recovery_min"] == failed["recovery_min"]
    assert doc["incidents"] == [] and doc["still_open"] == []  # the demo's incident is in W45


def test_json_gives_the_incident_of_its_week_and_carries_it_while_it_is_open(demo_dir: Path, capsys):
    code, out, _ = run(capsys, "review", "--data-dir", str(demo_dir), "--week", "2026-W45", "--json")
    assert code == 0
    [incident] = json.loads(out)["incidents"]
    assert {k: incident[k] for k in ("id", "severity", "status", "rolled_back", "detected_by")} == {
        "id": "INC-0001",
        "severity": "SEV3",
        "status": "resolved",
        "rolled_back": True,
        "detected_by": "person",
    }
    # onset 13:00, opened 13:35, rolled back 16:30 (plus the seconds the action took), resolved 18:30
    assert incident["ttd_min"] == 35 and incident["ttr_min"] == 330
    assert incident["ttm_min"] == pytest.approx(210, abs=0.1)
    assert incident["open_action_items"] == 2 and incident["opened_at"] == "2026-11-04T13:35:00Z"
    code, out, _ = run(capsys, "review", "--data-dir", str(demo_dir), "--week", "2026-W47", "--json")
    doc = json.loads(out)
    assert doc["incidents"] == [] and [i["id"] for i in doc["still_open"]] == ["INC-0001"]
    code, out, _ = run(capsys, "review", "--data-dir", str(demo_dir), "--week", "2026-W47")
    assert "; 0 incident(s), 1 from earlier weeks still open" in out
    row = "| INC-0001 | support-reply answers got worse after prompt v7.1 | SEV3 | resolved | 35 min |"
    assert row in out.split("## Still open from earlier weeks")[1]


def test_markdown_is_tables_and_headings_without_html(demo_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "review.md"
    code, printed, _ = run(
        capsys, "review", "--data-dir", str(demo_dir), "--week", "2026-W45", "--output", str(out)
    )
    assert code == 0 and printed.startswith(f"wrote {out}")
    text = out.read_text()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[:2] == [
        "Weekly reliability review: 2026-W45 (2026-11-02 to 2026-11-08)",
        "Objectives and error budgets",
    ]
    assert {"Failed changes", "Incidents", "Top regressions", "Cost per feature and model"} <= set(headings)
    tables = [i for i, t in enumerate(tokens) if t.type == "table_open"]
    assert len(tables) >= 6
    # Every row of every table has as many cells as its header.
    for start in tables:
        end = next(i for i in range(start, len(tokens)) if tokens[i].type == "table_close")
        widths = []
        row = 0
        for t in tokens[start:end]:
            if t.type == "tr_open":
                row = 0
            elif t.type in ("th_open", "td_open"):
                row += 1
            elif t.type == "tr_close":
                widths.append(row)
        assert len(set(widths)) == 1, widths
    cells = [t.content for t in tokens if t.type == "inline"]
    assert "prompt_version: v7 → v7.1" in cells and "3.5 h" in cells


def test_html_is_one_offline_file_whose_charts_draw_in_chromium(demo_dir: Path, tmp_path: Path, capsys):
    require(Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    out = tmp_path / "review.html"
    assert (
        run(capsys, "review", "--data-dir", str(demo_dir), "--week", "2026-W44", "--output", str(out))[0] == 0
    )
    html = out.read_text()
    assert "<script src=" not in html  # plotly.js is inline: no download needed
    charts = html.count('class="plotly-graph-div"')
    assert charts >= 5
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requested.append(r.url))
            page.goto(out.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {charts}", timeout=30_000
            )
            drawn = page.evaluate("""() => [...document.querySelectorAll('.plotly-graph-div')]
                .map(d => d.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length)""")
            OUTPUT.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUTPUT / "review-export.png"), full_page=True)
        finally:
            browser.close()
    assert all(n >= 1 for n in drawn), drawn  # every chart has its lines or bars
    assert [u for u in requested if not u.startswith("file:")] == []  # works offline


def test_post_sends_the_summary_without_revealing_the_webhook(demo_dir: Path, capsys):
    receiver = Receiver()
    try:
        receiver.configure(demo_dir)
        code, out, err = run(
            capsys, "review", "--data-dir", str(demo_dir), "--post", "--output", str(demo_dir / "r.md")
        )
    finally:
        receiver.close()
    assert code == 0
    [message] = receiver.received
    assert message["text"].startswith("Weekly reliability review 2026-W47 (2026-11-16 to 2026-11-22)")
    assert "failed prompt change on support-reply: v7 → v8" in message["text"]
    assert SECRET_PATH not in out + err
    assert "posted to reliability: sent (HTTP 200)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-47"], "is not an ISO week like 2026-W47"),
        (["--week", "2026-W47", "--since", "2026-11-01"], "either --week or --since/--until"),
        (["--since", "2026-11-10"], "--since and --until go together"),
        (["--output", "review.pdf"], "expected a .md or .html file name"),
    ],
)
def test_bad_arguments_are_named(demo_dir: Path, capsys, args: list[str], message: str):
    code, _, err = run(capsys, "review", "--data-dir", str(demo_dir), *args)
    assert code == 2 and message in err


def test_an_empty_data_directory_says_what_to_do(empty_dir: Path, capsys):
    code, _, err = run(capsys, "review", "--data-dir", str(empty_dir))
    assert code == 2 and "no requests loaded" in err
