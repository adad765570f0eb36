"""Telling telemetry from request logs by a file's first line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from app.ingest.sources import detect_format

OTLP_LINE = json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": []}]})
LANGFUSE = {
    "id": "g1",
    "trace_id": "t1",
    "type": "GENERATION",
    "start_time": "2026-03-02 10:00:00",
    "provided_model_name": "gpt-4o",
}
SCORES = {
    "id": "s1",
    "trace_id": "t1",
    "observation_id": "g1",
    "name": "q",
    "value": 1,
    "data_type": "NUMERIC",
}


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("traces.jsonl", OTLP_LINE + "\n", "otlp"),
        ("traces.json", "\n" + OTLP_LINE + "\n", "otlp"),  # blank lines before the first object
        ("traces.jsonl.gz", OTLP_LINE + "\n", "otlp"),
        # A first line longer than the part read: told by how it starts.
        ("big.jsonl", '{"resourceSpans": [' + ",".join(["{}"] * 600_000) + "]}\n", "otlp"),
        ("observations.jsonl", json.dumps(LANGFUSE) + "\n", "langfuse"),
        (
            "observations.csv",
            ",".join(LANGFUSE) + "\n" + ",".join(map(str, LANGFUSE.values())) + "\n",
            "langfuse",
        ),
        ("scores.jsonl", json.dumps(SCORES) + "\n", "langfuse-scores"),
        ("requests.jsonl", json.dumps({"timestamp": "2026-03-02T10:00:00Z", "feature": "x"}) + "\n", ""),
        ("broken.jsonl", "{not json\n", ""),
        ("empty.jsonl", "", ""),
    ],
)
def test_the_first_line_tells_the_kind(tmp_path: Path, name: str, text: str, kind: str):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert detect_format(path).kind == kind


def test_a_named_kind_is_taken_as_given(tmp_path: Path):
    path = tmp_path / "requests.jsonl"
    path.write_text(OTLP_LINE + "\n")
    assert detect_format(path, kind="").kind == ""
    assert detect_format(path, kind="langfuse").kind == "langfuse"
