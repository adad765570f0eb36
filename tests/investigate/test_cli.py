"""`rollback-desk query`, `compare` and `sample` on the known store, run through the CLI's main."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import polars as pl
import pytest

from app.cli import main
from app.investigate import querylog

from .conftest import FEATURE, N_V7, N_V8


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


FORBIDDEN = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY requests TO '/tmp/stolen.csv'",
    "ATTACH '/tmp/other.duckdb'",
    "INSTALL httpfs",
    "INSERT INTO requests (timestamp, feature) VALUES (now(), 'x')",
    "UPDATE requests SET error = NULL",
    "DELETE FROM requests",
    "CREATE TABLE stash AS SELECT * FROM requests",
    "DROP TABLE requests",
    "SELECT * FROM '/etc/passwd'",
    "SELECT 1; DROP TABLE requests",
]


@pytest.mark.parametrize("sql", FORBIDDEN)
def test_query_refuses_with_status_2_and_one_line(sql: str, known_dir: Path):
    status, out, err = run("query", sql, "--data-dir", str(known_dir), "--json")
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refused: ")
    # and nothing changed
    status, out, _ = run(
        "query", "SELECT count(*) AS n FROM requests", "--data-dir", str(known_dir), "--json"
    )
    assert json.loads(out)["rows"] == [[N_V7 + N_V8]]


def test_query_json_is_the_contract(known_dir: Path):
    status, out, _ = run(
        "query",
        "SELECT prompt_version, count(*) AS n, min(timestamp) AS first FROM requests GROUP BY 1 ORDER BY 1",
        "--data-dir",
        str(known_dir),
        "--json",
    )
    assert status == 0
    doc = json.loads(out)
    assert set(doc) == {"columns", "rows", "truncated"}
    assert doc["columns"] == ["prompt_version", "n", "first"]
    assert doc["rows"] == [["v7", N_V7, "2026-11-20T00:00:00"], ["v8", N_V8, "2026-11-20T00:00:07"]]
    assert doc["truncated"] is False


def test_query_limit_and_csv(known_dir: Path):
    status, out, _ = run(
        "query",
        "SELECT request_id FROM requests ORDER BY request_id",
        "--data-dir",
        str(known_dir),
        "--json",
        "--limit",
        "3",
    )
    doc = json.loads(out)
    assert doc["rows"] == [["v7-00000"], ["v7-00001"], ["v7-00002"]] and doc["truncated"]
    status, out, _ = run(
        "query",
        "SELECT request_id, prompt_version FROM requests ORDER BY 1 LIMIT 2",
        "--data-dir",
        str(known_dir),
        "--csv",
    )
    assert status == 0
    assert out.splitlines() == ["request_id,prompt_version", "v7-00000,v7", "v7-00001,v7"]


def test_query_timeout_exits_3(known_dir: Path):
    status, out, err = run(
        "query",
        "SELECT count(*) FROM range(1000000000000) a, requests",
        "--data-dir",
        str(known_dir),
        "--timeout",
        "0.3",
    )
    assert status == 3 and "interrupted" in err and out == ""


def test_every_query_run_is_recorded_with_who_ran_it(known_dir: Path):
    import getpass

    run("query", "SELECT 1", "--data-dir", str(known_dir))
    run("query", "DROP TABLE requests", "--data-dir", str(known_dir))
    records = querylog.recent(known_dir)
    assert [(r.text, r.outcome) for r in records[:2]] == [
        ("DROP TABLE requests", "refused"),
        ("SELECT 1", "ok"),
    ]
    assert {r.actor for r in records} == {getpass.getuser()}
    assert records[1].rows == 1


def test_compare_json_contract_and_numbers(known_dir: Path):
    status, out, _ = run(
        "compare",
        FEATURE,
        "--a",
        "prompt_version=v7",
        "--b",
        "prompt_version=v8",
        "--json",
        "--data-dir",
        str(known_dir),
    )
    assert status == 0
    doc = json.loads(out)
    assert {"feature", "a", "b", "metrics"} <= set(doc)
    assert doc["feature"] == FEATURE
    assert doc["a"]["filter"] == "prompt_version=v7" and doc["a"]["requests"] == N_V7
    assert doc["b"]["requests"] == N_V8
    names = [m["metric"] for m in doc["metrics"]]
    assert set(names) == {
        "quality_score",
        "error_rate",
        "latency_p95_ms",
        "cost_per_request_usd",
        "negative_feedback_rate",
    }
    for m in doc["metrics"]:
        assert {"metric", "a", "a_ci", "b", "b_ci", "difference", "p_value"} <= set(m)
        assert m["a_ci"][0] <= m["a"] <= m["a_ci"][1]
        assert m["b_ci"][0] <= m["b"] <= m["b_ci"][1]
    err = next(m for m in doc["metrics"] if m["metric"] == "error_rate")
    assert err["a"] == pytest.approx(0.025) and err["b"] == pytest.approx(0.125)


def test_compare_with_several_conditions_and_a_time_range(known_dir: Path):
    status, out, _ = run(
        "compare",
        FEATURE,
        "--a",
        "prompt_version=v8,region=us",
        "--b",
        "prompt_version=v8,region=eu",
        "--since",
        "2026-11-20T00:00:00Z",
        "--until",
        "2026-11-20T12:00:00Z",
        "--json",
        "--data-dir",
        str(known_dir),
    )
    doc = json.loads(out)
    assert status == 0
    assert doc["a"]["requests"] == doc["b"]["requests"] == N_V8 // 4


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--a", "colour=red", "--b", "prompt_version=v8"], "'colour'"),
        (["--a", "latency_ms>=fast", "--b", "prompt_version=v8"], "not a number"),
        (["--a", "prompt_version", "--b", "prompt_version=v8"], "expected field=value"),
        (["--a", "prompt_version=v7", "--b", "prompt_version=v8", "--since", "yesterday"], "not a time"),
    ],
)
def test_compare_refuses_bad_filters_with_a_reason(args, reason, known_dir: Path):
    status, out, err = run("compare", FEATURE, *args, "--json", "--data-dir", str(known_dir))
    assert status == 2 and out == "" and reason in err


def test_sample_writes_the_worst_requests_and_a_sidecar(known_dir: Path, tmp_path: Path):
    target = tmp_path / "eval.jsonl"
    status, out, _ = run(
        "sample",
        FEATURE,
        "--where",
        "prompt_version=v8",
        "--n",
        "20",
        "--worst",
        "--output",
        str(target),
        "--data-dir",
        str(known_dir),
    )
    assert status == 0 and "20 request(s)" in out
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 20
    assert all(r["error"] == "timeout" and r["prompt_version"] == "v8" for r in rows)
    side = json.loads((tmp_path / "eval.jsonl.json").read_text())
    assert side["feature"] == FEATURE and side["filter"] == "prompt_version=v8"
    assert side["rows"] == 20 and side["worst"] is True and side["format"] == "jsonl"


@pytest.mark.parametrize("name", ["slice.csv", "slice.parquet"])
def test_sample_other_formats_hold_every_column(name: str, known_dir: Path, tmp_path: Path):
    target = tmp_path / name
    status, _, _ = run(
        "sample",
        FEATURE,
        "--where",
        "region=eu",
        "--n",
        "0",
        "--output",
        str(target),
        "--data-dir",
        str(known_dir),
    )
    assert status == 0
    df = pl.read_csv(target) if name.endswith(".csv") else pl.read_parquet(target)
    assert df.height == N_V8 // 2
    assert {"request_id", "prompt_version", "quality_score", "extra"} <= set(df.columns)
    assert set(df["region"].to_list()) == {"eu"}


def test_sample_refuses_an_unknown_format(known_dir: Path, tmp_path: Path):
    status, _, err = run(
        "sample", FEATURE, "--output", str(tmp_path / "x.xlsx"), "--data-dir", str(known_dir)
    )
    assert status == 2 and "x.xlsx" in err and not (tmp_path / "x.xlsx").exists()
