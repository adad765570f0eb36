"""Real public LLM traces nobody here wrote, each loaded through a mapping file, with row
counts checked against Python's own csv / json readers over the same files.

The files are samples vendored in tests/fixtures/datasets (sources and licenses in its
README); the benchmarks read the full files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from logfiles import Desk

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "tests" / "fixtures" / "datasets"
MAPPINGS = ROOT / "tests" / "fixtures" / "mappings"


@pytest.fixture(scope="module")
def datasets() -> Path:
    return DATASETS


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def jsonl_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


CASES = [
    ("burstgpt/burstgpt1_head400.csv", "burstgpt.yaml"),
    ("burstgpt/burstgpt3_head400.csv", "burstgpt3.yaml"),
    ("azure_llm_trace_2023/AzureLLMInferenceTrace_code_head300.csv", "azure_code.yaml"),
    ("azure_llm_trace_2023/AzureLLMInferenceTrace_conv_head300.csv", "azure_conv.yaml"),
    ("mooncake/conversation_trace_head300.jsonl", "mooncake.yaml"),
    ("llmdrift/llmdrift_labeled_sample.csv", "llmdrift_labeled.yaml"),
    ("llmdrift/PRIME_FULL_EVAL_sample.csv", "llmdrift_eval.yaml"),
    ("llmdrift/LEETCODE_EASY_EVAL_sample.csv", "llmdrift_eval.yaml"),
]


@pytest.mark.parametrize(("name", "mapping"), CASES, ids=[c[0].split("/")[1] for c in CASES])
def test_every_row_of_a_real_trace_loads_through_its_mapping(
    desk: Desk, datasets: Path, name: str, mapping: str
):
    path = datasets / name
    expected = len(jsonl_rows(path) if path.suffix == ".jsonl" else csv_rows(path))

    code, out = desk.ingest(path, "--mapping", MAPPINGS / mapping)

    assert code == 0, out
    assert (out["loaded"], out["quarantined"], out["duplicates"]) == (expected, 0, 0)
    assert desk.scalar("SELECT count(*) FROM requests WHERE timestamp IS NULL OR feature IS NULL") == 0


def test_burstgpt_failures_and_file_3_columns_are_mapped(desk: Desk, datasets: Path):
    one = datasets / "burstgpt/burstgpt1_head400.csv"
    three = datasets / "burstgpt/burstgpt3_head400.csv"
    desk.ingest(one, "--mapping", MAPPINGS / "burstgpt.yaml")
    desk.ingest(three, "--mapping", MAPPINGS / "burstgpt3.yaml")
    rows = csv_rows(one) + csv_rows(three)
    assert desk.scalar("SELECT count(*) FROM requests WHERE error = 'failed'") == sum(
        r["Response tokens"] == "0" for r in rows
    )
    tokens = sum(int(r["Request tokens"]) for r in rows)
    assert desk.scalar("SELECT sum(input_tokens) FROM requests") == tokens
    latencies = sorted(float(r["Elapsed time"]) * 1000 for r in csv_rows(three))
    assert (
        sorted(r[0] for r in desk.rows("SELECT latency_ms FROM requests WHERE latency_ms IS NOT NULL"))
        == latencies
    )
    # Session ID is kept as an extra column, empty on API rows.
    assert desk.scalar("SELECT count(DISTINCT extra->>'Session ID') FROM requests") == len(
        {r["Session ID"] for r in csv_rows(three) if r["Session ID"]}
    )


def test_azure_seven_digit_timestamps_keep_their_order_and_span(desk: Desk, datasets: Path):
    path = datasets / "azure_llm_trace_2023/AzureLLMInferenceTrace_code_head300.csv"
    assert not path.read_bytes().endswith(b"\n")  # the original's missing final newline is kept
    desk.ingest(path, "--mapping", MAPPINGS / "azure_code.yaml")
    rows = csv_rows(path)
    first, last = desk.rows("SELECT min(timestamp), max(timestamp) FROM requests")[0]
    assert first.isoformat(sep=" ") == min(r["TIMESTAMP"] for r in rows)[:26]
    assert last.isoformat(sep=" ") == max(r["TIMESTAMP"] for r in rows)[:26]


def test_mooncake_milliseconds_and_array_column(desk: Desk, datasets: Path):
    path = datasets / "mooncake/conversation_trace_head300.jsonl"
    desk.ingest(path, "--mapping", MAPPINGS / "mooncake.yaml")
    rows = jsonl_rows(path)
    span_ms = max(r["timestamp"] for r in rows) - min(r["timestamp"] for r in rows)
    got = desk.scalar("SELECT epoch_ms(max(timestamp)) - epoch_ms(min(timestamp)) FROM requests")
    assert got == span_ms
    assert desk.scalar("SELECT sum(json_array_length(extra->'hash_ids')) FROM requests") == sum(
        len(r["hash_ids"]) for r in rows
    )


def test_llmdrift_quality_per_model_matches_a_direct_count(desk: Desk, datasets: Path):
    path = datasets / "llmdrift/llmdrift_labeled_sample.csv"
    desk.ingest(path, "--mapping", MAPPINGS / "llmdrift_labeled.yaml")
    got = dict(
        desk.rows("""SELECT feature || ' ' || model, round(avg(quality_score) * 100, 1)
                            FROM requests GROUP BY 1""")
    )
    groups: dict[str, list[int]] = {}
    for r in csv_rows(path):
        groups.setdefault(f"llmdrift-{r['dataset']} {r['model']}", []).append(int(r["quality"]))
    assert got == {k: round(100 * sum(v) / len(v), 1) for k, v in groups.items()}
    # The paper's GPT-4 regression on happy numbers, March -> June 2023 (83.6% -> 35.2% over
    # the full 500 + 500 requests), seen in the sample's first 100 of each snapshot.
    march = got["llmdrift-counthappynumber openaichat/gpt-4-0314"]
    june = got["llmdrift-counthappynumber openaichat/gpt-4-0613"]
    assert len(groups["llmdrift-counthappynumber openaichat/gpt-4-0314"]) == 100
    assert march - june > 30


def test_llmdrift_eval_quirks_survive(desk: Desk, datasets: Path):
    path = datasets / "llmdrift/PRIME_FULL_EVAL_sample.csv"
    desk.ingest(path, "--mapping", MAPPINGS / "llmdrift_eval.yaml")
    rows = csv_rows(path)
    # Multi-line answers arrive whole; yes/no stay as written; the empty header is a column.
    assert desk.scalar("SELECT count(*) FROM requests WHERE contains(extra->>'answer', chr(10))") == sum(
        "\n" in r["answer"] for r in rows
    )
    assert dict(desk.rows("SELECT extra->>'ref_answer', count(*) FROM requests GROUP BY 1")) == {
        v: sum(r["ref_answer"] == v for r in rows) for v in {r["ref_answer"] for r in rows}
    }
    assert {r["ref_answer"] for r in rows} == {"yes", "No"}
    assert (
        desk.scalar("SELECT min(timestamp) FROM requests").strftime("%m/%d/%Y, %H:%M:%S")
        == min(rows, key=lambda r: (r["timestamp"][6:10], r["timestamp"]))["timestamp"]
    )
