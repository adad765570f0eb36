"""Langfuse blob-storage exports: one request per GENERATION observation.

Langfuse itself cannot run here (it needs ClickHouse, Redis and object storage): the files
are built from the fields its export reference documents for `observations_v2/` and
`scores/`, with values whose right answer is known.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from logfiles import Desk, write_jsonl

from app.ingest.mapping import MappingError, load_mapping


def observation(i: int, **over) -> dict:
    """Generation i of trace t-i, started at 10:00:i, 1.5 s long (latency in seconds)."""
    row = {
        "id": f"gen-{i}",
        "trace_id": f"t-{i}",
        "project_id": "p1",
        "environment": "production",
        "type": "GENERATION",
        "parent_observation_id": f"span-{i}",
        "start_time": f"2026-03-02 10:00:{i:02d}.250000",
        "end_time": f"2026-03-02 10:00:{i + 1:02d}.750000",
        "name": "OpenAI-generation",
        "metadata": {},
        "level": "DEFAULT",
        "status_message": "",
        "version": "",
        "input": "question",
        "output": "answer",
        "provided_model_name": "gpt-4o-mini",
        "model_parameters": '{"temperature":0.2}',
        "usage_details": {"input": 100 + i, "output": 20 + i, "total": 120 + 2 * i},
        "cost_details": {"input": 0.001, "output": 0.002, "total": 0.003},
        "completion_start_time": None,
        "prompt_name": "support",
        "prompt_version": 3,
        "total_cost": 0.003,
        "latency": 1.5,
        "time_to_first_token": None,
        "model_id": "m1",
        "prompt_id": "pr1",
        "user_id": f"u-{i}",
        "session_id": f"s-{i}",
        "trace_name": "support-reply",
        "tags": ["beta"],
        "release": "2026.3.1",
        "bookmarked": False,
        "public": False,
    }
    row.update(over)
    return row


def span(i: int) -> dict:
    return observation(
        i,
        id=f"span-{i}",
        type="SPAN",
        parent_observation_id="",
        provided_model_name="",
        usage_details={},
        total_cost=0,
        latency=2.0,
    )


def export(n: int = 4, **over) -> list[dict]:
    rows = []
    for i in range(n):
        rows += [span(i), observation(i, **over)]
    return rows


def test_generations_become_requests_with_the_documented_fields(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "observations_v2.jsonl", export())
    code, out = desk.ingest(path)  # told apart by its fields: no --format
    assert (code, out["loaded"], out["quarantined"]) == (0, 4, 0)
    assert out["files"][0]["other_spans"] == 4  # the SPAN observations
    row = desk.rows("""SELECT timestamp, feature, request_id, model, prompt_version, user_id,
                              latency_ms, input_tokens, output_tokens, cost_usd, error, extra
                       FROM requests WHERE request_id = 'gen-2'""")[0]
    assert row[:11] == (
        datetime(2026, 3, 2, 10, 0, 2, 250000),
        "support-reply",
        "gen-2",
        "gpt-4o-mini",
        "support:3",
        "u-2",
        1500.0,
        102,
        22,
        0.003,
        None,
    )
    extra = json.loads(row[11])
    assert {k: extra[k] for k in ("trace_id", "release", "session_id", "environment")} == {
        "trace_id": "t-2",
        "release": "2026.3.1",
        "session_id": "s-2",
        "environment": "production",
    }
    assert extra["tags"] == ["beta"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_exports_load_the_same(desk: Desk, tmp_path: Path, fmt: str):
    rows = export()
    if fmt == "csv":
        frame = pl.DataFrame(
            [{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in rows]
        )
        path = tmp_path / "observations.csv"
        frame.write_csv(path)
    else:
        frame = pl.DataFrame([{k: v for k, v in r.items() if k not in ("metadata",)} for r in rows])
        path = tmp_path / "observations.parquet"
        frame.write_parquet(path)
    args = [] if fmt == "csv" else ["--format", "langfuse"]  # Parquet is not looked into
    code, out = desk.ingest(path, *args)
    assert (code, out["loaded"], out["quarantined"]) == (0, 4, 0)
    assert desk.rows(
        "SELECT request_id, input_tokens, output_tokens, latency_ms FROM requests ORDER BY request_id"
    ) == [(f"gen-{i}", 100 + i, 20 + i, 1500.0) for i in range(4)]


def test_error_level_is_an_error_and_legacy_rows_take_the_observation_name(desk: Desk, tmp_path: Path):
    rows = export(2)
    rows[1].update(level="ERROR", status_message="upstream 503")
    for r in rows:  # the legacy observations export has no trace fields
        for k in ("trace_name", "user_id", "session_id", "release", "tags"):
            r.pop(k)
    path = write_jsonl(tmp_path / "observations.jsonl", rows)
    code, out = desk.ingest(path, "--format", "langfuse")
    assert (code, out["loaded"]) == (0, 2)
    assert desk.rows("SELECT request_id, feature, error FROM requests ORDER BY 1") == [
        ("gen-0", "OpenAI-generation", "upstream 503"),
        ("gen-1", "OpenAI-generation", None),
    ]


def test_latency_in_milliseconds_is_read_as_the_mapping_says(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "observations.jsonl", export(latency=1500))
    code, out = desk.ingest(path)  # read in seconds by default: warned, not silent
    warning = out["files"][0]["warnings"][0]
    assert "latency read in the default unit, s" in warning and "set langfuse.latency_unit: ms" in warning
    mapping = tmp_path / "map.yaml"
    mapping.write_text("langfuse:\n  latency_unit: ms\n")
    code, out = desk.ingest(path, "--mapping", mapping)
    assert "warnings" not in out["files"][0]
    assert desk.rows("SELECT DISTINCT latency_ms FROM requests") == [(1500.0,)]


def test_a_seconds_unit_that_the_values_contradict_is_warned_without_times(desk: Desk, tmp_path: Path):
    rows = export(latency=2400)
    for r in rows:
        r["end_time"] = None
    path = write_jsonl(tmp_path / "observations.jsonl", rows)
    code, out = desk.ingest(path)
    assert "median latency of 2400 s looks like ms" in out["files"][0]["warnings"][0]


def test_scores_by_name_become_quality_score_and_feedback(desk: Desk, tmp_path: Path):
    obs = write_jsonl(tmp_path / "observations.jsonl", export())
    scores = write_jsonl(
        tmp_path / "scores.jsonl",
        [
            # Observation scores, averaged per request.
            {
                "id": "s1",
                "trace_id": "t-0",
                "observation_id": "gen-0",
                "name": "helpfulness",
                "value": 0.5,
                "data_type": "NUMERIC",
                "source": "EVAL",
            },
            {
                "id": "s2",
                "trace_id": "t-0",
                "observation_id": "gen-0",
                "name": "helpfulness",
                "value": 0.7,
                "data_type": "NUMERIC",
                "source": "EVAL",
            },
            # A trace score reaches the trace's generation.
            {
                "id": "s3",
                "trace_id": "t-1",
                "observation_id": None,
                "name": "helpfulness",
                "value": 0.9,
                "data_type": "NUMERIC",
                "source": "ANNOTATION",
            },
            {
                "id": "s4",
                "trace_id": "t-1",
                "observation_id": None,
                "name": "thumbs",
                "value": 0,
                "data_type": "BOOLEAN",
                "source": "API",
            },
            {
                "id": "s5",
                "trace_id": "t-2",
                "observation_id": "gen-2",
                "name": "thumbs",
                "value": 1,
                "data_type": "BOOLEAN",
                "source": "API",
            },
            {
                "id": "s6",
                "trace_id": "t-3",
                "observation_id": "gen-3",
                "name": "other",
                "value": 0.1,
                "data_type": "NUMERIC",
                "source": "API",
            },
        ],
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "langfuse:\n  scores_file: scores.jsonl\n  quality_score: helpfulness\n  feedback: thumbs\n"
    )
    code, out = desk.ingest(obs, "--mapping", mapping)
    assert (code, out["loaded"]) == (0, 4)
    assert desk.rows("SELECT request_id, quality_score, feedback FROM requests ORDER BY 1") == [
        ("gen-0", pytest.approx(0.6), None),
        ("gen-1", 0.9, -1),
        ("gen-2", None, 1),
        ("gen-3", None, None),
    ]
    code, out = desk.ingest(scores)  # the scores file alone: passed over with the reason
    assert (code, out["loaded"]) == (0, 0)
    assert "langfuse.scores_file" in out["files"][0]["note"]


def test_a_changed_scores_file_reloads_the_observations(desk: Desk, tmp_path: Path):
    obs = write_jsonl(tmp_path / "observations.jsonl", export(1))
    row = {
        "id": "s1",
        "trace_id": "t-0",
        "observation_id": "gen-0",
        "name": "q",
        "value": 0.2,
        "data_type": "NUMERIC",
    }
    scores = write_jsonl(tmp_path / "scores.jsonl", [row])
    mapping = tmp_path / "map.yaml"
    mapping.write_text("langfuse:\n  scores_file: scores.jsonl\n  quality_score: q\n")
    desk.ingest(obs, "--mapping", mapping)
    write_jsonl(scores, [{**row, "value": 0.8}])
    code, out = desk.ingest(obs, "--mapping", mapping)
    assert (out["loaded"], desk.count()) == (1, 1)
    assert desk.scalar("SELECT quality_score FROM requests") == 0.8


def test_bad_rows_are_quarantined_and_a_second_load_adds_nothing(desk: Desk, tmp_path: Path):
    rows = export(3)
    rows[1]["start_time"] = None
    rows[3]["start_time"] = "yesterday"
    lines = [json.dumps(r) for r in rows]
    lines.insert(4, '{"id": "gen-x", "type": "GENERATION"')  # cut short
    path = tmp_path / "observations.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out = desk.ingest(path, "--format", "langfuse")
    assert (code, out["loaded"], out["quarantined"]) == (0, 1, 3)
    assert [(row, reason) for _, row, reason in desk.quarantine()] == [
        (2, "line 2: missing timestamp"),
        (4, "line 4: timestamp 'yesterday' is not a time"),
        (5, "line 5: broken JSON"),
    ]
    code, out = desk.ingest(path, "--format", "langfuse")
    assert (out["loaded"], desk.count(), desk.count("quarantine")) == (0, 1, 3)


def test_a_mapping_section_with_an_unknown_key_names_it(tmp_path: Path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("langfuse:\n  latency_units: ms\n")
    with pytest.raises(MappingError, match=r"map.yaml: line 2: langfuse.latency_units: not known"):
        load_mapping(mapping)
    mapping.write_text("otlp:\n  variant: 7\n")
    with pytest.raises(MappingError, match=r"map.yaml: line 2: otlp.variant: expected a name"):
        load_mapping(mapping)


def test_a_missing_scores_file_is_an_error_naming_it(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "observations.jsonl", export(1))
    mapping = tmp_path / "map.yaml"
    mapping.write_text("langfuse:\n  scores_file: nowhere.jsonl\n  quality_score: q\n")
    code, out = desk.ingest(path, "--mapping", mapping)
    assert code == 1
    assert out["files"][0]["error"] == f"{tmp_path / 'nowhere.jsonl'}: scores file not found"
