"""Values that used to fail a whole file or slip in unnoticed: a non-finite number, a time
in year 9999 or 0001, a line that is not UTF-8. Each goes to the quarantine with its
reason, and the rest of the file loads."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from logfiles import Desk, request, write_jsonl, write_text

from app.cli import main


@pytest.mark.parametrize(
    ("value", "field", "shown"),
    [
        ("NaN", "latency_ms", "nan"),
        ("nan", "latency_ms", "nan"),
        ("Infinity", "cost_usd", "inf"),
        ("-Infinity", "quality_score", "-inf"),
    ],
)
def test_a_non_finite_number_in_jsonl_is_quarantined(desk: Desk, tmp_path: Path, value, field, shown):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), request(1, **{field: value}), request(2)])
    code, out = desk.ingest(path)
    assert code == 0 and (out["loaded"], out["quarantined"]) == (2, 1)
    assert desk.quarantine()[0][2].startswith(f"line 2: {field} '")
    assert desk.quarantine()[0][2].lower().endswith(f"{shown}' is not a finite number")
    assert desk.scalar("SELECT count(*) FROM requests WHERE NOT isfinite(cost_usd)") == 0


def test_bare_nan_and_1e400_in_jsonl_are_quarantined(desk: Desk, tmp_path: Path):
    line = json.dumps(request(1)).replace('"latency_ms": 101', '"latency_ms": NaN')
    huge = json.dumps(request(2)).replace('"latency_ms": 102', '"latency_ms": 1e400')
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), line, huge, request(3)])
    code, out = desk.ingest(path)
    assert code == 0 and (out["loaded"], out["quarantined"]) == (2, 2)
    assert [reason for _, _, reason in desk.quarantine()] == [
        "line 2: latency_ms 'nan' is not a finite number",
        "line 3: latency_ms 'inf' is not a finite number",
    ]


def test_non_finite_numbers_in_csv_are_quarantined_as_written(desk: Desk, tmp_path: Path):
    path = write_text(
        tmp_path / "a.csv",
        "timestamp,feature,latency_ms,cost_usd\n"
        "2026-03-02T10:00:00Z,chat,1,0.1\n"
        "2026-03-02T10:00:01Z,chat,NaN,0.1\n"
        "2026-03-02T10:00:02Z,chat,2,Infinity\n"
        "2026-03-02T10:00:03Z,chat,1e400,1\n"
        "2026-03-02T10:00:04Z,chat,3,0.2\n",
    )
    code, out = desk.ingest(path)
    assert code == 0 and (out["loaded"], out["quarantined"]) == (2, 3)
    assert [q[2] for q in desk.quarantine()] == [
        "row 2: latency_ms 'NaN' is not a finite number",
        "row 3: cost_usd 'Infinity' is not a finite number",
        "row 4: latency_ms '1e400' is not a finite number",
    ]


@pytest.mark.parametrize("when", ["9999-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2014-12-31T23:59:59Z"])
def test_an_implausible_time_is_quarantined_and_does_not_move_the_window(desk, tmp_path, when):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), request(1, timestamp=when), request(2)])
    code, out = desk.ingest(path)
    assert code == 0 and (out["loaded"], out["quarantined"]) == (2, 1)
    reason = desk.quarantine()[0][2]
    assert reason.startswith("line 2: timestamp '") and "outside the plausible range 2015-01-01" in reason
    assert desk.scalar("SELECT max(timestamp) FROM requests") < datetime(2027, 1, 1)


def test_a_time_a_day_ahead_of_the_load_is_quarantined_but_an_hour_ahead_is_not(desk, tmp_path):
    now = datetime.now(UTC)
    soon, late = (now + timedelta(hours=1)), (now + timedelta(hours=30))
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            request(0, timestamp=soon.strftime("%Y-%m-%dT%H:%M:%SZ"), request_id="soon"),
            request(1, timestamp=late.strftime("%Y-%m-%dT%H:%M:%SZ"), request_id="late"),
        ],
    )
    code, out = desk.ingest(path)
    assert (out["loaded"], out["quarantined"]) == (1, 1)
    assert desk.rows("SELECT request_id FROM requests") == [("soon",)]


def test_the_plausible_range_is_a_setting(desk, tmp_path, monkeypatch):
    monkeypatch.setenv("ROLLBACK_DESK_TIMESTAMP_NOT_BEFORE", "2026-03-02T10:00:01")
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), request(1)])
    code, out = desk.ingest(path)
    assert (out["loaded"], out["quarantined"]) == (1, 1)
    assert "outside the plausible range 2026-03-02" in desk.quarantine()[0][2]


def latin1(row: dict) -> bytes:
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("latin-1")


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz"])
@pytest.mark.parametrize("position", [1, 2])
def test_a_latin1_line_is_quarantined_and_the_rest_loads(desk, tmp_path, name, position):
    rows = [(json.dumps(request(i)) + "\n").encode() for i in range(3)]
    rows[position - 1] = latin1(request(position - 1, feature="café"))
    data = b"".join(rows)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    code, out = desk.ingest(path)
    assert code == 0 and out["files"][0]["error"] is None
    assert (out["loaded"], out["quarantined"]) == (2, 1)
    ((_, line, reason),) = desk.quarantine()
    assert (line, reason) == (position, f"line {position}: not UTF-8 text (re-encode the file as UTF-8)")


def test_a_latin1_csv_row_is_quarantined_with_a_readable_reason(desk, tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(
        "timestamp,feature\n2026-03-02T10:00:00Z,chat\n2026-03-02T10:00:01Z,café\n"
        "2026-03-02T10:00:02Z,chat\n".encode("latin-1")
    )
    code, out = desk.ingest(path)
    assert (out["loaded"], out["quarantined"]) == (2, 1)
    assert desk.quarantine()[0][1:] == (2, "row 2: not UTF-8 text (re-encode the file as UTF-8)")


def test_the_cli_exit_status_is_zero_when_bad_rows_are_quarantined(tmp_path, capsys):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), request(1, latency_ms="NaN")])
    assert main(["ingest", str(path), "--data-dir", str(tmp_path / "d")]) == 0


def test_broken_and_looping_links_in_a_folder_are_reported_in_the_summary(desk, tmp_path, capsys):
    folder = tmp_path / "logs"
    folder.mkdir()
    write_jsonl(folder / "good.jsonl", [request(0)])
    (folder / "loop.jsonl").symlink_to(folder / "loop.jsonl")
    (folder / "gone.jsonl").symlink_to(tmp_path / "deleted.jsonl")
    (folder / "linked.jsonl").symlink_to(folder / "good.jsonl")  # a link to a file loads
    code, out = desk.ingest(folder)
    errors = {Path(f["path"]).name: f["error"] for f in out["files"] if f["error"]}
    assert errors == {
        "loop.jsonl": f"{folder / 'loop.jsonl'}: symbolic link loop, skipped",
        "gone.jsonl": f"{folder / 'gone.jsonl'}: symbolic link to nothing (dangling), skipped",
    }
    assert out["loaded"] == 1 and code == 1
    main(["ingest", str(folder), "--data-dir", str(desk.data_dir)])
    assert "symbolic link loop, skipped" in capsys.readouterr().err
