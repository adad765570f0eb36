"""Every accepted timestamp form, gzip for every format, and extra columns kept in `extra`."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from logfiles import Desk, request, write_jsonl, write_text

NOON = datetime(2026, 3, 2, 12, 0, 0)
TIMESTAMP_FORMS = {
    "iso-z": "2026-03-02T12:00:00Z",
    "iso-offset": "2026-03-02T14:00:00+02:00",
    "iso-negative-offset": "2026-03-02T07:00:00-05:00",
    "naive-is-utc": "2026-03-02 12:00:00",
    "naive-t": "2026-03-02T12:00:00",
    "epoch-seconds": 1772452800,
    "epoch-seconds-fraction": 1772452800.0,
    "epoch-ms": 1772452800000,
    "epoch-seconds-text": "1772452800",
}


@pytest.mark.parametrize("form", TIMESTAMP_FORMS)
def test_every_timestamp_form_in_jsonl_is_stored_as_utc(desk: Desk, tmp_path: Path, form: str):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0, timestamp=TIMESTAMP_FORMS[form])])
    code, out = desk.ingest(path)
    assert (code, out["loaded"]) == (0, 1)
    assert desk.scalar("SELECT timestamp FROM requests") == NOON


def test_every_timestamp_form_in_csv_is_stored_as_utc(desk: Desk, tmp_path: Path):
    lines = ["timestamp,feature"] + [f'"{v}",chat' for v in TIMESTAMP_FORMS.values()]
    path = write_text(tmp_path / "a.csv", "\n".join(lines) + "\n")
    code, out = desk.ingest(path)
    assert (code, out["loaded"], out["quarantined"]) == (0, len(TIMESTAMP_FORMS), 0)
    assert desk.rows("SELECT DISTINCT timestamp FROM requests") == [(NOON,)]


def test_seven_digit_fractions_keep_microseconds(desk: Desk, tmp_path: Path):
    path = write_text(tmp_path / "a.csv", "timestamp,feature\n2023-11-16 18:17:03.9799600,x\n")
    desk.ingest(path)
    assert desk.scalar("SELECT timestamp FROM requests") == datetime(2023, 11, 16, 18, 17, 3, 979960)


@pytest.mark.parametrize("unit", ["us", "ms", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin"])
def test_parquet_native_timestamps_are_stored_as_utc(desk: Desk, tmp_path: Path, unit: str, tz):
    ts = pl.Series([NOON]).cast(pl.Datetime(unit))
    if tz:
        ts = ts.dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
    path = tmp_path / "a.parquet"
    pl.DataFrame({"timestamp": ts, "feature": ["chat"]}).write_parquet(path)
    code, out = desk.ingest(path)
    assert (code, out["loaded"]) == (0, 1)
    assert desk.scalar("SELECT timestamp FROM requests") == NOON


def test_parquet_epoch_numbers_are_timestamps(desk: Desk, tmp_path: Path):
    path = tmp_path / "a.parquet"
    pl.DataFrame({"timestamp": [1772452800, 1772452800000], "feature": ["a", "b"]}).write_parquet(path)
    desk.ingest(path)
    assert desk.rows("SELECT DISTINCT timestamp FROM requests") == [(NOON,)]


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": ["2026-03-02T12:00:00Z", "2026-03-02T12:00:01Z", "2026-03-02T12:00:02Z"],
            "feature": ["chat", "chat", "search"],
            "request_id": ["a", "b", "c"],
            "latency_ms": [120.5, 80.0, 95.0],
            "input_tokens": [10, 20, 30],
            "tenant": ["acme", "globex", "acme"],
            "app_version": [3, 4, 4],
        }
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_gzip_files_load_like_plain_ones(desk: Desk, tmp_path: Path, fmt: str):
    plain = tmp_path / f"plain.{fmt}"
    getattr(_frame(), {"jsonl": "write_ndjson", "csv": "write_csv", "parquet": "write_parquet"}[fmt])(plain)
    zipped = tmp_path / f"zipped.{fmt}.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))

    code, out = desk.ingest(zipped)

    assert code == 0 and out["loaded"] == 3 and out["files"][0]["error"] is None
    assert desk.rows("SELECT request_id, latency_ms, input_tokens FROM requests ORDER BY 1") == [
        ("a", 120.5, 10),
        ("b", 80.0, 20),
        ("c", 95.0, 30),
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_extra_columns_are_kept_and_usable_as_split_dimensions(desk: Desk, tmp_path: Path, fmt: str):
    path = tmp_path / f"a.{fmt}"
    getattr(_frame(), {"jsonl": "write_ndjson", "csv": "write_csv", "parquet": "write_parquet"}[fmt])(path)
    desk.ingest(path)
    assert desk.rows("""SELECT extra->>'tenant' AS tenant, count(*) FROM requests
                        GROUP BY 1 ORDER BY 1""") == [("acme", 2), ("globex", 1)]
    assert desk.rows("SELECT DISTINCT CAST(extra->'app_version' AS INTEGER) FROM requests ORDER BY 1") == [
        (3,),
        (4,),
    ]
    from app.storage.store import Store

    assert {"tenant", "app_version"} <= set(Store(desk.data_dir).extra_columns())


def test_a_csv_extra_value_that_does_not_fit_its_column_type_is_kept_as_text(desk: Desk, tmp_path: Path):
    # The odd value comes after the rows DuckDB samples to detect the column's type.
    rows = ["timestamp,feature,build"] + [f"{1772452800 + i},chat,{i % 7}" for i in range(25_000)]
    path = write_text(tmp_path / "a.csv", "\n".join(rows + ["2026-03-02 12:01:00,chat,n/a"]) + "\n")
    code, out = desk.ingest(path)
    assert out["loaded"] == 25_001 and out["quarantined"] == 0
    assert desk.rows("SELECT extra->'build' FROM requests ORDER BY rowid")[-2:] == [("2",), ('"n/a"',)]


def test_nested_jsonl_values_are_kept_as_json(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0, tags=["a", "b"], meta={"k": 1})])
    desk.ingest(path)
    assert desk.rows("SELECT extra->'tags', extra->'meta'->>'k' FROM requests") == [('["a","b"]', "1")]


def test_jsonl_times_after_the_sampled_lines_may_change_form(desk: Desk, tmp_path: Path):
    # DuckDB detects the column's type from the first lines only; later lines with an
    # offset, or an epoch number, are still read as the time they mean.
    first = [request(0, request_id=f"n-{i}", timestamp="2026-03-02 12:00:00") for i in range(25_000)]
    path = write_jsonl(
        tmp_path / "a.jsonl",
        first
        + [
            request(0, request_id="offset", timestamp="2026-03-02T14:00:00+02:00"),
            request(0, request_id="epoch", timestamp=1772452800),
            request(0, request_id="bad", timestamp="soon"),
        ],
    )
    code, out = desk.ingest(path)
    assert (code, out["loaded"], out["quarantined"]) == (0, 25_002, 1)
    assert desk.rows("SELECT DISTINCT timestamp FROM requests") == [(NOON,)]
    assert desk.quarantine()[0][1:] == (25_003, "line 25003: timestamp 'soon' is not a time")
