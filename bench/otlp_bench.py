"""OTLP benchmark: `rollback-desk ingest` of OTLP JSON traces against DuckDB's bare
`read_json` of the same file.

    .venv/bin/python bench/otlp_bench.py [--spans 1000000] [--runs 3]

Generates (once, cached under bench/out/) a file of N LLM spans as a Collector's
`fileexporter` writes them: one `TracesData` object per line, 100 traces a line, each trace
an application root span and one GenAI chat span (the attributes the OpenAI
instrumentation writes, one call in ten failing with error.type and status 2). Then
measures, alternating, each in a fresh subprocess: ingest into a fresh data directory, and
`CREATE TABLE t AS SELECT * FROM read_json(...)` into a fresh DuckDB file. Prints the
medians and writes bench/out/otlp_bench.json. The target: ingest at 0.5 times the speed of
the bare read or better (ratio = bare seconds / ingest seconds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_bench import OUT, run_once  # noqa: E402

TRACES_PER_LINE = 100
START_NS = 1_772_452_800_000_000_000  # 2026-03-02 12:00 UTC
FEATURES = ("support-reply", "ticket-triage", "kb-search", "summarise-thread")
MODELS = ("gpt-4o-mini", "gpt-4o")
RESOURCE = {
    "attributes": [
        {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}},
        {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
        {"key": "telemetry.sdk.version", "value": {"stringValue": "1.45.2"}},
        {"key": "service.name", "value": {"stringValue": "helpdesk-api"}},
    ]
}


def _s(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def _i(key: str, value: int) -> dict:
    return {"key": key, "value": {"intValue": str(value)}}


def _trace(n: int, rng: random.Random) -> tuple[dict, dict]:
    trace_id = f"{n:032x}"
    root_id, llm_id = f"{2 * n + 1:016x}", f"{2 * n + 2:016x}"
    start = START_NS + n * 50_000_000
    latency = int(rng.lognormvariate(6.5, 0.4) * 1e6)
    model = MODELS[n % 2]
    attrs = [
        _s("gen_ai.operation.name", "chat"),
        _s("gen_ai.request.model", model),
        _s("gen_ai.system", "openai"),
        _s("server.address", "api.openai.com"),
        _i("server.port", 443),
    ]
    status: dict = {}
    if n % 10 == 9:
        attrs.append(_s("error.type", "RateLimitError"))
        status = {"code": 2, "message": "Error code: 429 - Rate limit reached"}
    else:
        attrs += [
            _s("gen_ai.response.model", model + "-2024-08-06"),
            {
                "key": "gen_ai.response.finish_reasons",
                "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}},
            },
            _s("gen_ai.response.id", f"chatcmpl-{n}"),
            _i("gen_ai.usage.input_tokens", rng.randint(200, 2000)),
            _i("gen_ai.usage.output_tokens", rng.randint(20, 400)),
        ]
    llm = {
        "traceId": trace_id,
        "spanId": llm_id,
        "parentSpanId": root_id,
        "name": f"chat {model}",
        "kind": 3,
        "startTimeUnixNano": str(start + 1_000_000),
        "endTimeUnixNano": str(start + 1_000_000 + latency),
        "attributes": attrs,
        "status": status,
    }
    root = {
        "traceId": trace_id,
        "spanId": root_id,
        "name": FEATURES[n % len(FEATURES)],
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + latency + 3_000_000),
        "attributes": [_s("user.id", f"u-{n % 5000}")],
        "status": {},
    }
    return root, llm


def generate(path: Path, spans: int) -> None:
    rng = random.Random(16)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as out:
        for first in range(0, spans, TRACES_PER_LINE):
            roots, llms = [], []
            for n in range(first, min(first + TRACES_PER_LINE, spans)):
                root, llm = _trace(n, rng)
                roots.append(root)
                llms.append(llm)
            doc = {
                "resourceSpans": [
                    {
                        "resource": RESOURCE,
                        "scopeSpans": [
                            {"scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "spans": llms},
                            {"scope": {"name": "helpdesk"}, "spans": roots},
                        ],
                    }
                ]
            }
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
    tmp.replace(path)


def ensure_file(spans: int) -> Path:
    path = OUT / f"otlp-{spans}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        generate(path, spans)
        print(
            f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=1_000_000, help="LLM spans in the file")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    path = ensure_file(args.spans)
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    peaks: list[float] = []
    for i in range(args.runs):
        for kind in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
            seconds, peak, loaded = run_once(kind, path, "jsonl")
            if kind == "ours" and loaded != args.spans:
                raise SystemExit(f"ingest loaded {loaded} requests, expected {args.spans}")
            times[kind].append(seconds)
            if kind == "ours":
                peaks.append(peak)
            print(f"  {kind:<5} run {i + 1}: {seconds:6.2f} s  peak {peak:7.0f} MB", flush=True)
    ours, bare = statistics.median(times["ours"]), statistics.median(times["bare"])
    result = {
        "llm_spans": args.spans,
        "file_mb": round(path.stat().st_size / 1e6),
        "runs": args.runs,
        "ingest_s": round(ours, 3),
        "bare_read_json_s": round(bare, 3),
        "ratio": round(bare / ours, 3),
        "ingest_spans_per_s": round(args.spans / ours),
        "ingest_peak_mb": round(max(peaks)),
    }
    print(json.dumps(result, indent=2))
    (OUT / "otlp_bench.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
