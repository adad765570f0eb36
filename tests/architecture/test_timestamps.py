"""One time format for people and one for machines (app/timestamps.py), used everywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.timestamps import display, machine, parse

APP = Path(__file__).resolve().parents[2] / "app"

# Formats that are not output: text the ledger and the flag file store for their own order,
# a vendor's wire format, a file name, plotly's own hover syntax, and the detection evidence
# text of the `analyze --json` contract.
STORAGE_OR_WIRE = {
    "storage/trail.py",
    "rollout/ladder.py",
    "flags/flagd_file.py",
    "flags/unleash.py",
    "demo/scenario.py",
    "demo/telemetry.py",  # writes times the way Langfuse's export does
    "ui/charts.py",
    "detection/detect.py",
    "timestamps.py",
    "investigate/compare.py",  # a filter value in a shareable link
    "investigate/querylog.py",  # the ledger's stored form
    "ingest/validation.py",  # a quarantine reason DuckDB writes in SQL
    "detection/findings.py",  # a time range on one day: "13:10–13:55 UTC"
}


def test_times_read_the_same_for_people_and_for_machines():
    t = datetime(2026, 11, 20, 14, 5, 9, 123456)
    assert display(t) == "2026-11-20 14:05 UTC"
    assert display(t, seconds=True) == "2026-11-20 14:05:09 UTC"
    assert machine(t) == "2026-11-20T14:05:09Z"
    assert display(None) == "n/a" and display(None, missing="–") == "–" and machine(None) is None


def test_aware_times_are_shown_in_utc():
    t = datetime(2026, 11, 20, 15, 5, tzinfo=timezone(timedelta(hours=1)))
    assert display(t) == "2026-11-20 14:05 UTC"
    assert machine(t) == "2026-11-20T14:05:00Z"


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T14:05:09Z",
        "2026-11-20T14:05:09",
        "2026-11-20 14:05:09 UTC",
        "2026-11-20T15:05:09+01:00",
        "2026-11-20T14:05:09.000000Z",
    ],
)
def test_parse_reads_both_forms_and_older_iso_text(text: str):
    assert parse(text) == datetime(2026, 11, 20, 14, 5, 9)


def test_parse_refuses_what_is_not_a_time():
    assert parse("") is None and parse(None) is None
    with pytest.raises(ValueError):
        parse("yesterday")
    assert parse(machine(datetime.now(UTC))) is not None


def test_no_module_formats_a_time_by_hand():
    by_hand = re.compile(r"%Y-%m-%d|%m-%d %H|%H:%M")
    offenders = sorted(
        str(p.relative_to(APP))
        for p in APP.rglob("*.py")
        if str(p.relative_to(APP)) not in STORAGE_OR_WIRE and by_hand.search(p.read_text())
    )
    assert not offenders, f"format times with app.timestamps: {offenders}"
