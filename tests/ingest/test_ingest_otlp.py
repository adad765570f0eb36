"""OTLP JSON traces from real instrumented OpenAI calls, ingested and checked field by field.

Each producer runs in its own process (the GenAI instrumentation reads its attribute-name
switch once per process): a loopback OpenAI-compatible server answers two chat completions
well, then a 429, a 500 and a timeout; the spans are exported with the SDK's own OTLP
encoding (tests/ingest/otel_calls.py).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from components import require
from logfiles import Desk

HERE = Path(__file__).parent
EPOCH = datetime(1970, 1, 1)
ERRORS = {"429": "RateLimitError", "500": "InternalServerError", "timeout": "APITimeoutError"}


def _instrumentation_installed() -> bool:
    try:
        import openai  # noqa: F401
        import openinference.instrumentation.openai  # noqa: F401
        import opentelemetry.exporter.otlp.proto.common  # noqa: F401
        import opentelemetry.instrumentation.openai_v2  # noqa: F401
    except ImportError:
        return False
    return True


def produce(out: Path, family: str, *flags: str, latest: bool = False) -> dict:
    require(_instrumentation_installed(), "openai + OpenTelemetry/OpenInference instrumentation")
    env = {k: v for k, v in os.environ.items() if k != "OTEL_SEMCONV_STABILITY_OPT_IN"}
    if latest:
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    done = subprocess.run(
        [sys.executable, str(HERE / "otel_calls.py"), str(out), family, *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    folder = tmp_path_factory.mktemp("traces")
    runs = {
        "genai": ("genai", False),
        "genai-latest": ("genai", True),
        "openinference": ("openinference", False),
    }
    return {
        name: (folder / f"{name}.jsonl", produce(folder / f"{name}.jsonl", family, latest=latest))
        for name, (family, latest) in runs.items()
    }


def llm_spans(path: Path) -> dict[str, dict]:
    """The LLM span of each trace as the file holds it, read here only for its times."""
    out = {}
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    if "parentSpanId" in span:
                        out[span["traceId"]] = span
    return out


def stored(desk: Desk) -> dict[str, dict]:
    cols = [
        "timestamp",
        "feature",
        "request_id",
        "model",
        "response_model",
        "user_id",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "error",
        "extra",
    ]
    rows = desk.rows(f"SELECT {', '.join(cols)} FROM requests")
    by_trace = {}
    for row in rows:
        r = dict(zip(cols, row, strict=True))
        r["extra"] = json.loads(r["extra"])
        by_trace[r["extra"]["trace_id"]] = r
    return by_trace


@pytest.mark.parametrize("run", ["genai", "genai-latest", "openinference"])
def test_every_instrumented_call_is_one_request_with_the_fields_the_call_had(desk: Desk, traces, run: str):
    path, made = traces[run]
    code, out = desk.ingest(path)  # told apart by its content: no --format
    assert code == 0
    assert (out["loaded"], out["quarantined"]) == (6, 0)
    assert out["files"][0]["other_spans"] == 6  # the application's own root spans
    rows, spans = stored(desk), llm_spans(path)
    answered = {a["call"]: a for a in made["answered"]}
    assert len(rows) == len(made["calls"]) == 6
    for call in made["calls"]:
        row, span = rows[call["trace_id"]], spans[call["trace_id"]]
        start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
        assert row["timestamp"] == EPOCH + timedelta(microseconds=start // 1000)
        assert row["latency_ms"] == pytest.approx((end - start) / 1e6)
        assert row["feature"] == call["feature"]  # the root span's name
        assert row["user_id"] == call["user"]  # the root span's user.id
        assert row["model"] == call["model"]
        assert row["extra"]["provider"] == "openai"
        assert row["extra"]["span_id"] == span["spanId"]
        if call["what"] == "ok":
            a = answered[call["call"]]
            assert row["error"] is None
            assert row["response_model"] == a["model"]
            assert (row["input_tokens"], row["output_tokens"]) == (a["input_tokens"], a["output_tokens"])
            # OpenInference keeps the response id only inside output.value: the span id.
            want_id = span["spanId"] if run == "openinference" else a["id"]
            assert row["request_id"] == want_id
        else:
            want = ERRORS[call["what"]]
            assert row["error"] == (f"openai.{want}" if run == "openinference" else want)
            assert call["error"] == want
            assert row["request_id"] == span["spanId"]
            assert (row["response_model"], row["input_tokens"], row["output_tokens"]) == (None, None, None)
            assert row["extra"]["status_message"]
        if call["what"] == "timeout":
            assert row["latency_ms"] >= 500  # the client gave up after 0.5 s
    if run == "genai":  # the older attribute names: gen_ai.system, kept as an extra column
        assert all(r["extra"]["gen_ai.system"] == "openai" for r in rows.values())
    if run == "genai-latest":
        assert not any("gen_ai.system" in r["extra"] for r in rows.values())
    if run == "openinference":  # no message text is copied
        assert not any(
            k.startswith(("llm.input_messages", "output.value", "input.value"))
            for r in rows.values()
            for k in r["extra"]
        )


def test_base64_ids_from_protobufs_json_mapping_are_stored_as_hex(desk: Desk, tmp_path: Path):
    path = tmp_path / "b64.jsonl"
    made = produce(path, "genai", "--base64-ids")
    assert '"SPAN_KIND_CLIENT"' in path.read_text()  # enums as names, ids as base64
    code, out = desk.ingest(path)
    assert (code, out["loaded"]) == (0, 6)
    rows = stored(desk)
    assert set(rows) == {c["trace_id"] for c in made["calls"]}
    assert all(len(r["extra"]["span_id"]) == 16 for r in rows.values())


def test_gzipped_traces_load_the_same_and_a_second_load_adds_nothing(desk: Desk, traces, tmp_path: Path):
    path, _ = traces["genai"]
    gz = tmp_path / "traces.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    code, out = desk.ingest(gz)
    assert (code, out["loaded"]) == (0, 6)
    code, out = desk.ingest(gz)
    assert (code, out["loaded"], desk.count()) == (0, 0, 6)
    code, out = desk.ingest(path)  # the same calls from the plain file: all duplicates
    assert (out["loaded"], out["duplicates"], desk.count()) == (0, 6, 6)


def test_format_otlp_reads_a_file_whatever_its_first_line(desk: Desk, traces, tmp_path: Path):
    path, _ = traces["openinference"]
    odd = tmp_path / "export.json"
    odd.write_text("\n" + path.read_text())  # a blank first line: not told by content
    code, out = desk.ingest(odd, "--format", "otlp")
    assert (code, out["loaded"], out["quarantined"]) == (0, 6, 0)


def _edit_llm_span(line: str, change) -> str:
    doc = json.loads(line)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                if "parentSpanId" in span:
                    change(span)
    return json.dumps(doc)


def test_bad_spans_and_lines_are_quarantined_with_line_and_reason(desk: Desk, traces, tmp_path: Path):
    path, _ = traces["genai"]
    lines = path.read_text().splitlines()  # LLM spans on odd lines, root spans on even ones
    lines[0] = _edit_llm_span(lines[0], lambda s: s.pop("startTimeUnixNano"))
    swapped = {}

    def backwards(span):
        span["endTimeUnixNano"] = str(int(span["startTimeUnixNano"]) - 5_000_000)
        swapped["id"] = span["spanId"]

    lines[2] = _edit_llm_span(lines[2], backwards)
    lines.insert(4, '{"resourceSpans": [{"scopeSpans": [')  # cut short
    lines.insert(5, "")
    lines.insert(6, '{"resource": {}}')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    code, out = desk.ingest(bad)
    assert code == 0
    assert (out["loaded"], out["quarantined"], out["files"][0]["other_spans"]) == (4, 4, 6)
    reasons = {row: reason for _, row, reason in desk.quarantine()}
    assert reasons[1].startswith("line 1: span ") and reasons[1].endswith("has no start time")
    assert reasons[3] == f"line 3: span {swapped['id']} ends before it starts (-5.0 ms)"
    assert reasons[5] == "line 5: broken JSON"
    assert reasons[7] == "line 7: not an OTLP TracesData object (no resourceSpans)"
    raw = dict(desk.rows("SELECT source_row, raw FROM quarantine"))
    assert json.loads(raw[3])["spanId"] == swapped["id"]
    assert raw[5] == '{"resourceSpans": [{"scopeSpans": ['


def test_evaluation_events_give_quality_score_and_feedback(desk: Desk, traces, tmp_path: Path):
    path, made = traces["genai-latest"]

    def evaluation(name, value):
        return {
            "timeUnixNano": "1",
            "name": "gen_ai.evaluation.result",
            "attributes": [
                {"key": "gen_ai.evaluation.name", "value": {"stringValue": name}},
                {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": value}},
            ],
        }

    def graded(span):
        span.setdefault("events", []).extend(
            [evaluation("helpfulness", 0.75), evaluation("user_feedback", -1)]
        )

    lines = path.read_text().splitlines()
    lines[0] = _edit_llm_span(lines[0], graded)
    scored = tmp_path / "scored.jsonl"
    scored.write_text("\n".join(lines) + "\n")
    code, out = desk.ingest(scored)
    assert (code, out["loaded"]) == (0, 6)
    first = made["calls"][0]["trace_id"]
    assert desk.rows(
        "SELECT extra->>'trace_id', quality_score, feedback FROM requests WHERE quality_score IS NOT NULL"
    ) == [(first, 0.75, -1)]


def test_mapping_section_picks_attributes_for_fields(desk: Desk, traces, tmp_path: Path):
    path, _ = traces["genai"]

    def flagged(span):
        span["attributes"].append({"key": "feature_flag.variant", "value": {"stringValue": "canary"}})

    lines = [_edit_llm_span(ln, flagged) for ln in path.read_text().splitlines()]
    src = tmp_path / "flagged.jsonl"
    src.write_text("\n".join(lines) + "\n")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("otlp:\n  variant: feature_flag.variant\n  feature: service.name\n")
    code, out = desk.ingest(src, "--mapping", mapping)
    assert (code, out["loaded"]) == (0, 6)
    assert desk.rows("SELECT DISTINCT feature, variant FROM requests") == [("helpdesk-api", "canary")]
    assert desk.scalar("SELECT count(*) FROM requests WHERE extra->>'feature_flag.variant' IS NOT NULL") == 0


def test_watch_follows_a_collector_rotating_its_export_file(tmp_path: Path, traces):
    """The Collector renames the full file with a timestamp and starts the name anew: the
    renamed file's rows stay, and the new file's rows join them."""
    from app.detection.thresholds import Thresholds
    from app.rollout.watch import look_once

    first, _ = traces["genai"]
    second, _ = traces["genai-latest"]
    folder, data = tmp_path / "export", tmp_path / "data"
    folder.mkdir()
    active = folder / "traces.json"
    active.write_bytes(first.read_bytes())
    look = look_once(data, folder, apply=False, t=Thresholds())
    assert (look.loaded, look.errors) == (6, [])
    active.rename(folder / "traces-2026-11-29T10-00-00.000.json")
    active.write_bytes(second.read_bytes())
    look = look_once(data, folder, apply=False, t=Thresholds())
    assert (look.loaded, look.errors) == (6, [])
    desk = Desk(data, None)
    assert desk.count() == 12
    assert desk.rows("SELECT count(*), count(DISTINCT request_id) FROM requests") == [(12, 12)]
    assert sorted(p for (p,) in desk.rows("SELECT path FROM files")) == [
        str(folder / "traces-2026-11-29T10-00-00.000.json"),
        str(active),
    ]


def test_a_scores_file_joins_by_request_id_and_by_trace(desk: Desk, traces, tmp_path: Path):
    path, made = traces["genai"]
    ok = [a for a in made["answered"]]
    failed = [c for c in made["calls"] if c["what"] != "ok"]
    scores = tmp_path / "scores.jsonl"
    scores.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"request_id": ok[0]["id"], "name": "helpfulness", "value": 0.4},
                {"trace_id": failed[0]["trace_id"], "name": "helpfulness", "value": 0.1},
                {"request_id": ok[1]["id"], "name": "thumbs", "value": -1},
            ]
        )
        + "\n"
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "otlp:\n  scores_file: scores.jsonl\n  quality_score: helpfulness\n  feedback: thumbs\n"
    )
    code, out = desk.ingest(path, "--mapping", mapping)
    assert (code, out["loaded"]) == (0, 6)
    assert sorted(
        desk.rows(
            "SELECT extra->>'trace_id', quality_score, feedback FROM requests "
            "WHERE quality_score IS NOT NULL OR feedback IS NOT NULL"
        )
    ) == sorted(
        [
            (made["calls"][0]["trace_id"], 0.4, None),
            (failed[0]["trace_id"], 0.1, None),
            (made["calls"][1]["trace_id"], None, -1),
        ]
    )


def test_a_growing_export_is_reloaded_whole_so_late_roots_still_name_the_feature(
    desk: Desk, traces, tmp_path: Path
):
    path, made = traces["genai"]
    lines = path.read_text().splitlines(keepends=True)  # LLM span, then its root, per call
    live = tmp_path / "traces.jsonl"
    live.write_text("".join(lines[:5]))  # the third call's root is not written yet
    code, out = desk.ingest(live)
    assert (code, out["loaded"]) == (0, 3)
    third = made["calls"][2]["trace_id"]
    assert (
        desk.scalar(f"SELECT feature FROM requests WHERE extra->>'trace_id' = '{third}'") == "helpdesk-api"
    )  # no root yet: the service name
    with open(live, "a") as fh:
        fh.write("".join(lines[5:]))
    code, out = desk.ingest(live)
    assert (code, out["loaded"], out["duplicates"], desk.count()) == (0, 6, 0, 6)
    assert (
        desk.scalar(f"SELECT feature FROM requests WHERE extra->>'trace_id' = '{third}'")
        == made["calls"][2]["feature"]
    )
