"""Bad input never stops a load: bad lines and rows go to the quarantine with file, position
and reason; good rows of the same file load; an unreadable file is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from logfiles import Desk, request, write_jsonl, write_text

BAD_CASES = [
    ('{"timestamp": "2026-03-02T10:00:00Z", "feature": "x"', "broken JSON"),
    ("[1, 2, 3]", "not a JSON object"),
    (request(3, latency_ms="fast"), "latency_ms 'fast' is not a number"),
    (request(4, input_tokens="many"), "input_tokens 'many' is not an integer"),
    (request(5, timestamp=None), "missing timestamp"),
    (request(6, timestamp="yesterday"), "timestamp 'yesterday' is not a time"),
    (request(7, feature=None), "missing feature"),
    (request(8, feature="  "), "missing feature"),
    (request(9, latency_ms=-5), "negative latency_ms -5"),
    (request(10, quality_score=1.5), "quality_score 1.5 outside [0, 1]"),
    (request(11, quality_score=-0.1), "quality_score -0.1 outside [0, 1]"),
    (request(12, feedback=2), "feedback 2 is not -1, 0 or 1"),
    (request(15, feedback=300), "feedback 300 is not -1, 0 or 1"),  # does not fit TINYINT
    (request(13, feedback="thumbs"), "feedback 'thumbs' is not an integer"),
    (request(14, cost_usd=-0.01), "negative cost_usd -0.01"),
]


def test_every_bad_jsonl_line_is_quarantined_with_its_line_number_and_reason(desk: Desk, tmp_path: Path):
    rows: list = [request(0), request(1)]
    rows += [bad for bad, _ in BAD_CASES]
    rows += [request(99)]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)

    code, out = desk.ingest(path)

    assert code == 0
    assert out["loaded"] == 3 and out["quarantined"] == len(BAD_CASES)
    got = desk.quarantine()
    assert [p for p, _, _ in got] == [str(path)] * len(BAD_CASES)
    for (_, line, reason), (_, expected) in zip(got, BAD_CASES, strict=True):
        assert reason == f"line {line}: {expected}"
    assert [line for _, line, _ in got] == list(range(3, 3 + len(BAD_CASES)))
    assert sorted(r[0] for r in desk.rows("SELECT request_id FROM requests")) == ["r-0", "r-1", "r-99"]


def test_the_quarantine_keeps_the_raw_line(desk: Desk, tmp_path: Path):
    negative = '{"timestamp": "2026-03-02T10:00:00Z",  "feature": "chat", "latency_ms": -1}'
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), "{oops", negative])
    desk.ingest(path)
    assert desk.rows("SELECT raw FROM quarantine ORDER BY source_row") == [("{oops",), (negative,)]


def test_blank_lines_are_skipped_and_do_not_shift_line_numbers(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), "", "   ", "{oops", request(1)])
    code, out = desk.ingest(path)
    assert (out["loaded"], out["quarantined"]) == (2, 1)
    assert desk.quarantine()[0][1:] == (4, "line 4: broken JSON")


def test_bad_csv_rows_are_quarantined_with_their_row_numbers(desk: Desk, tmp_path: Path):
    path = write_text(
        tmp_path / "a.csv",
        "\n".join(
            [
                "timestamp,feature,latency_ms,quality_score,feedback",
                "2026-03-02 10:00:00,chat,120,0.9,1",  # row 1 good
                "2026-03-02 10:00:01,chat,-3,0.9,1",  # row 2 negative latency
                "2026-03-02 10:00:02,chat,120",  # row 3 too few columns
                "2026-03-02 10:00:03,chat,120,0.8,0,extra",  # row 4 too many columns
                "2026-03-02 10:00:04,,120,0.8,0",  # row 5 missing feature
                "2026-03-02 10:00:05,chat,120,7,0",  # row 6 quality outside [0, 1]
                "2026-03-02 10:00:06,chat,120,0.5,-1",  # row 7 good
            ]
        )
        + "\n",
    )

    code, out = desk.ingest(path)

    assert code == 0 and (out["loaded"], out["quarantined"]) == (2, 5)
    got = {row: reason for _, row, reason in desk.quarantine()}
    assert sorted(got) == [2, 3, 4, 5, 6]
    assert got[2] == "row 2: negative latency_ms -3"
    assert got[3].startswith("row 3: ") and "Expected Number of Columns" in got[3]
    assert got[4].startswith("row 4: ")
    assert got[5] == "row 5: missing feature"
    assert got[6] == "row 6: quality_score 7 outside [0, 1]"
    assert [r[0].second for r in desk.rows("SELECT timestamp FROM requests ORDER BY 1")] == [0, 6]


def test_bad_parquet_rows_are_quarantined_with_their_row_numbers(desk: Desk, tmp_path: Path):
    path = tmp_path / "a.parquet"
    pl.DataFrame(
        {
            "timestamp": ["2026-03-02T10:00:00Z", None, "2026-03-02T10:00:02Z"],
            "feature": ["chat", "chat", "chat"],
            "latency_ms": [1.0, 2.0, -3.0],
        }
    ).write_parquet(path)
    code, out = desk.ingest(path)
    assert (out["loaded"], out["quarantined"]) == (1, 2)
    assert [(r, reason) for _, r, reason in desk.quarantine()] == [
        (2, "row 2: missing timestamp"),
        (3, "row 3: negative latency_ms -3.0"),
    ]


def test_an_unreadable_file_is_one_line_error_and_the_others_still_load(desk: Desk, tmp_path: Path):
    good = write_jsonl(tmp_path / "good.jsonl", [request(0), request(1)])
    not_parquet = write_text(tmp_path / "broken.parquet", "this is not parquet")
    unsupported = write_text(tmp_path / "notes.xlsx", "x")
    missing = tmp_path / "nowhere.jsonl"

    code, out = desk.ingest(not_parquet, good, unsupported, missing)

    assert code == 1
    assert set(out) == {"files", "loaded", "quarantined", "duplicates"}
    assert (out["loaded"], out["quarantined"], out["duplicates"]) == (2, 0, 0)
    by_path = {f["path"]: f for f in out["files"]}
    for f in out["files"]:
        assert set(f) == {"path", "loaded", "quarantined", "duplicates", "error"}
    assert by_path[str(good)]["error"] is None and by_path[str(good)]["loaded"] == 2
    for bad in (not_parquet, unsupported, missing):
        error = by_path[str(bad)]["error"]
        assert error.startswith(str(bad)) and "\n" not in error
    assert "unsupported file type .xlsx" in by_path[str(unsupported)]["error"]
    assert "cannot read as PARQUET" in by_path[str(not_parquet)]["error"]
    assert "no such file" in by_path[str(missing)]["error"]
    assert desk.count() == 2


def test_a_file_without_the_required_columns_names_them(desk: Desk, tmp_path: Path):
    path = write_text(tmp_path / "a.csv", "when,what\n2026-03-02,chat\n")
    code, out = desk.ingest(path)
    assert code == 1
    assert out["files"][0]["error"] == (
        f"{path}: no column for required field timestamp and feature; add a mapping file (--mapping)"
    )


def test_a_file_of_only_broken_lines_quarantines_every_line(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", ["{bad", "not json"])
    code, out = desk.ingest(path)
    assert code == 0 and (out["loaded"], out["quarantined"]) == (0, 2)


def test_an_empty_file_loads_nothing_without_error(desk: Desk, tmp_path: Path):
    path = write_text(tmp_path / "a.jsonl", "")
    code, out = desk.ingest(path)
    assert code == 0 and out["loaded"] == 0 and out["files"][0]["error"] is None


def test_the_text_output_prints_errors_on_one_line(desk: Desk, tmp_path: Path, capsys):
    from app.cli import main

    bad = write_text(tmp_path / "broken.parquet", "nope")
    code = main(["ingest", str(bad), "--data-dir", str(desk.data_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [err.strip()]


def test_line_numbers_count_blank_lines_when_every_line_parses(desk: Desk, tmp_path: Path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [request(0), "", request(1, latency_ms=-1), "  ", request(2, feature=None), request(3)],
    )
    code, out = desk.ingest(path)
    assert (out["loaded"], out["quarantined"]) == (2, 2)
    got = [(row, reason) for _, row, reason in desk.quarantine()]
    assert [row for row, _ in got] == [3, 5]
    assert got[0][1].startswith("line 3: negative latency_ms -1") and got[1][1] == "line 5: missing feature"
    # the line as written in the file, not rebuilt from its values
    assert desk.scalar("SELECT raw FROM quarantine WHERE source_row = 3") == json.dumps(
        request(1, latency_ms=-1)
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}\n\n{"a": 2}\n',
        '\n{"a": 1}\n   \n\t\n{"a": 2}',
        '{"a": 1}\r\n\r\n{"a": 2}\r\n \r\n',
        '{"a": 1}\n{"a": 2}\n\n\n',
        '{"a": 1}\n  ',
        "   ",
        "\n\n\n",
        '{"a": 1}',
    ],
    ids=[
        "one",
        "first-and-whitespace",
        "crlf",
        "trailing",
        "blank-last-line",
        "only-spaces",
        "only-newlines",
        "no-newline",
    ],
)
def test_blank_lines_are_numbered_as_the_line_by_line_read_numbers_them(tmp_path: Path, text: str):
    import duckdb

    from app.ingest.sources import blank_lines, lines_sql

    path = tmp_path / "a.jsonl"
    path.write_bytes(text.encode())
    expected = [
        r[0]
        for r in duckdb.connect()
        .execute(
            f"""SELECT n FROM (SELECT row_number() OVER () AS n, line FROM {lines_sql(path)})
            WHERE line IS NULL OR trim(line, ' \t\r') = '' ORDER BY n"""
        )
        .fetchall()
    ]
    assert blank_lines(path) == expected
