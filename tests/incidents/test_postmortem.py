"""The post-mortem: numbers checked against a direct computation on the same logs, every
section present, corrections kept, and the file rendering cleanly as GitHub markdown."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from markdown_it import MarkdownIt

from app.incidents import postmortem
from app.incidents.log import IncidentLog
from app.incidents.timeline import assemble, format_duration
from app.rollback.actions import execute

from .conftest import CANARY_ONSET

SECTIONS = [
    "Summary",
    "Impact",
    "Detection",
    "Response",
    "Trigger and root cause",
    "Investigation",
    "Timeline",
    "Actions taken",
    "Communications",
    "What went well",
    "What went wrong",
    "Where we got lucky",
    "Action items",
]


def logs(data_dir: Path) -> pl.DataFrame:
    """The demo's raw log files, read without the console's store."""
    return pl.read_parquet(sorted((data_dir / "demo").glob("requests-*.parquet")))


def row(markdown: str, label: str) -> str:
    [line] = [ln for ln in markdown.splitlines() if ln.startswith(f"| {label} |")]
    return line.split("|")[2].strip()


def test_the_post_mortem_numbers_match_a_direct_computation_on_the_logs(flag_demo_dir, canary_incident):
    result = execute(
        flag_demo_dir,
        "doc-summarizer",
        "rollout",
        0,
        operator="ana",
        reason="canary errors",
        incident_id=canary_incident.id,
    )
    assert result.verified
    IncidentLog(flag_demo_dir).set_status(canary_incident.id, "resolved", actor="ana")
    text = postmortem.export(flag_demo_dir, canary_incident.id)

    df = logs(flag_demo_dir).filter(pl.col("feature") == "doc-summarizer")
    base = df.filter(
        (pl.col("timestamp") >= CANARY_ONSET - timedelta(hours=24)) & (pl.col("timestamp") < CANARY_ONSET)
    )
    hit = df.filter((pl.col("timestamp") >= CANARY_ONSET) & (pl.col("variant") == "canary"))
    n, errors = hit.height, hit["error"].is_not_null().sum()
    base_rate = base["error"].is_not_null().sum() / base.height
    quality_delta = hit["quality_score"].mean() - base["quality_score"].mean()
    extra_cost = hit["cost_usd"].sum() - n * base["cost_usd"].mean()

    assert row(text, "Scope") == "partial: variant = canary"
    assert row(text, "Requests affected") == f"{n:,}"
    assert row(text, "Users affected") == f"{hit['user_id'].n_unique():,}"
    assert row(text, "Errors") == f"{errors:,} ({100 * errors / n:.2f}% against {100 * base_rate:.2f}%)"
    assert row(text, "Extra errors") == f"{round(errors - n * base_rate):,}"
    assert row(text, "Quality").endswith(f"({quality_delta:+.3f})")
    money = f"${abs(extra_cost):,.2f}"
    assert row(text, "Extra cost") == (f"-{money}" if extra_cost < 0 else money)
    last = df["timestamp"].max()
    assert row(text, "Duration") == format_duration(last + timedelta(microseconds=1) - CANARY_ONSET)

    opened = datetime(2026, 11, 23, 8, 30)
    assert row(text, "First degraded bucket") == "2026-11-21 09:00 UTC"
    assert row(text, "Time to detect") == format_duration(opened - CANARY_ONSET)
    incident = IncidentLog(flag_demo_dir).get(canary_incident.id)
    [action] = [e for e in assemble(flag_demo_dir, None, incident, incident.opened_at) if e.source == "audit"]
    assert row(text, "Time to mitigate (from onset)") == format_duration(action.time - CANARY_ONSET)
    resolved = incident.first_time_in("resolved")
    assert row(text, "Time to resolve (from onset)") == format_duration(resolved - CANARY_ONSET)
    assert "**Trigger:** flag doc-summarizer-rollout 0% -> 10% at 2026-11-21 09:00 UTC" in text


def test_every_section_is_there_and_the_markdown_renders_cleanly(flag_demo_dir, canary_incident):
    log = IncidentLog(flag_demo_dir)
    log.set_section(canary_incident.id, "went_well", "The rollback | took seconds.\n\nNobody paged twice.")
    log.set_section(canary_incident.id, "root_cause", "Claude's summaries exceed the parser's length limit.")
    log.set_action_item(
        canary_incident.id, "Roll canaries back automatically on error rate", "lee", "prevent"
    )
    log.add_note(canary_incident.id, "A note with | a pipe and *emphasis*")
    text = postmortem.export(flag_demo_dir, canary_incident.id)

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    h2 = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"]
    assert h2 == SECTIONS
    html = md.render(text)
    assert html.count("<table>") == 6  # header, impact, detection, response, timeline, action items
    # no table row was broken by a pipe in someone's text: every row has its header's cell count
    for table in html.split("<table>")[1:]:
        body = table.split("</table>")[0]
        header_cells = body.split("</thead>")[0].count("<th>")
        for tr in body.split("<tbody>")[-1].split("<tr>")[1:]:
            assert tr.count("<td>") == header_cells
    assert "A note with | a pipe and *emphasis*" in text.replace("\\|", "|")
    assert "| Roll canaries back automatically on error rate | lee | prevent |" in text
    assert "**Root cause:** Claude's summaries exceed" in text


def test_a_corrected_timeline_entry_keeps_its_history_and_shows_as_corrected(flag_demo_dir, canary_incident):
    log = IncidentLog(flag_demo_dir)
    log.correct(
        canary_incident.id,
        "onset",
        time=datetime(2026, 11, 21, 9, 5),
        text="Canary errors began (first 5-minute bucket over threshold)",
        reason="finer buckets",
        actor="ana",
    )
    incident = log.get(canary_incident.id)
    [onset] = [e for e in assemble(flag_demo_dir, None, incident, incident.opened_at) if e.key == "onset"]
    assert onset.time == datetime(2026, 11, 21, 9, 5) and onset.corrected
    assert [r.time for r in onset.history] == [CANARY_ONSET, datetime(2026, 11, 21, 9, 5)]
    assert onset.history[1].actor == "ana" and onset.history[1].reason == "finer buckets"
    text = postmortem.export(flag_demo_dir, canary_incident.id)
    assert (
        "| 2026-11-21 09:05:00 UTC | logs | Canary errors began (first 5-minute bucket over threshold) "
        "(corrected) |"
    ) in text


def test_an_incident_without_logs_still_exports(empty_dir):
    incident = IncidentLog(empty_dir).open("Provider down", ["search-answers"], "SEV1")
    text = postmortem.export(empty_dir, incident.id)
    assert "No numbers: the incident has no onset or no logs" in text
    assert "| Time to detect | n/a |" in text


TWO_FEATURES = ("doc-summarizer", "support-reply")


def test_an_incident_over_two_features_reports_each_and_the_degraded_ones_total(flag_demo_dir):
    # The canary broke doc-summarizer's error rate; support-reply, named on the incident
    # too, shows no such degradation. Each gets its own row, checked against the logs; the
    # total holds the degraded feature only.
    log = IncidentLog(flag_demo_dir)
    incident = log.open(
        "Summaries and replies failing",
        list(TWO_FEATURES),
        "SEV2",
        metric="error_rate",
        onset=CANARY_ONSET,
        actor="ana",
        at=datetime(2026, 11, 23, 8, 30),
    )
    text = postmortem.export(flag_demo_dir, incident.id)

    df = logs(flag_demo_dir).filter(pl.col("timestamp") >= CANARY_ONSET)
    cells = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in text.split("## Impact")[1].split("## Detection")[0].splitlines()
        if line.startswith("| ") and not line.startswith("| Feature")
    }
    hit = {}
    for feature in TWO_FEATURES:
        scope, _, requests, users, errors, *_ = cells[feature]
        rows = df.filter(pl.col("feature") == feature)
        if scope.startswith("partial: "):
            dim, value = scope.removeprefix("partial: ").split(" = ")
            rows = rows.filter(pl.col(dim) == value)
        assert requests == f"{rows.height:,}"
        assert users == f"{rows['user_id'].n_unique():,}"
        assert errors.startswith(f"{rows['error'].is_not_null().sum():,} (")
        hit[feature] = rows
    assert cells["doc-summarizer"][0] == "partial: variant = canary"
    assert cells["support-reply"][0] == "no significant degradation in the window"
    canary = hit["doc-summarizer"]
    total = cells["total: 1 of 2 features"]
    assert total[2:5] == [
        f"{canary.height:,}",
        f"{canary['user_id'].n_unique():,}",
        f"{canary['error'].is_not_null().sum():,}",
    ]
    assert (
        f"affecting {canary.height:,} requests from {canary['user_id'].n_unique():,} "
        "users across 1 of 2 features"
    ) in text
