"""Example telemetry files with a known incident: an OTLP trace export and a Langfuse export.

`rollback-desk demo --examples DIR` writes them; docs/formats.md walks through loading
them and finding the incident.

- `support-traces.jsonl`: three days of `support-reply` calls as OTLP JSON lines, shaped
  like the OpenAI instrumentation's spans (GenAI conventions, latest attribute names) under
  the application's root span. On day three at 10:00 the app switches its model from
  `gpt-4o-mini` to `gpt-4.1-mini`; from then on one call in ten fails with a 429
  (`RateLimitError`) instead of one in a hundred.
- `observations.jsonl` + `scores.jsonl` + `langfuse-mapping.yaml`: three days of
  `ticket-triage` generations as Langfuse's enriched observations export, and its scores
  export. On day three at 10:00 prompt `triage` goes from version 3 to 4, and the
  `helpfulness` score falls from about 0.86 to about 0.70.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 3
CHANGE_AT = START + timedelta(days=2, hours=10)
CALLS_PER_HOUR = 120
TRACES_PER_LINE = 50


def _ns(t: datetime) -> str:
    return str(int(t.timestamp() * 1_000_000) * 1000)


def _s(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def _i(key: str, value: int) -> dict:
    return {"key": key, "value": {"intValue": str(value)}}


def _calls(rng: random.Random):
    """(n, start time) of every call, CALLS_PER_HOUR an hour on average."""
    t, n, end = START, 0, START + timedelta(days=DAYS)
    while True:
        t += timedelta(seconds=rng.expovariate(CALLS_PER_HOUR / 3600))
        if t >= end:
            return
        yield n, t
        n += 1


def _support_trace(n: int, t: datetime, rng: random.Random) -> list[dict]:
    after = t >= CHANGE_AT
    model = "gpt-4.1-mini" if after else "gpt-4o-mini"
    failed = rng.random() < (0.10 if after else 0.01)
    latency = timedelta(milliseconds=rng.lognormvariate(6.4, 0.35))
    trace, root, llm = f"{n + 1:032x}", f"{2 * n + 1:016x}", f"{2 * n + 2:016x}"
    attrs = [
        _s("gen_ai.operation.name", "chat"),
        _s("gen_ai.request.model", model),
        _s("gen_ai.provider.name", "openai"),
        _s("server.address", "api.openai.com"),
        _i("server.port", 443),
    ]
    status: dict = {}
    if failed:
        attrs.append(_s("error.type", "RateLimitError"))
        status = {"code": 2, "message": "Error code: 429 - Rate limit reached for requests"}
    else:
        attrs += [
            _s("gen_ai.response.model", model + ("-2025-04-14" if after else "-2024-07-18")),
            {
                "key": "gen_ai.response.finish_reasons",
                "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}},
            },
            _s("gen_ai.response.id", f"chatcmpl-{n:07d}"),
            _i("gen_ai.usage.input_tokens", rng.randint(300, 1500)),
            _i("gen_ai.usage.output_tokens", rng.randint(40, 300)),
        ]
    start = t + timedelta(milliseconds=3)
    return [
        {
            "traceId": trace,
            "spanId": root,
            "name": "support-reply",
            "kind": 2,
            "startTimeUnixNano": _ns(t),
            "endTimeUnixNano": _ns(start + latency + timedelta(milliseconds=5)),
            "attributes": [_s("user.id", f"u-{rng.randint(1, 900)}")],
            "status": {},
        },
        {
            "traceId": trace,
            "spanId": llm,
            "parentSpanId": root,
            "name": f"chat {model}",
            "kind": 3,
            "startTimeUnixNano": _ns(start),
            "endTimeUnixNano": _ns(start + latency),
            "attributes": attrs,
            "status": status,
        },
    ]


def write_otlp_example(path: Path, seed: int = 7) -> int:
    """The OTLP example; returns how many LLM spans it holds."""
    rng = random.Random(seed)
    resource = {
        "attributes": [
            _s("service.name", "helpdesk-api"),
            _s("telemetry.sdk.name", "opentelemetry"),
            _s("telemetry.sdk.language", "python"),
        ]
    }
    batch: list[dict] = []
    count = 0
    with open(path, "w") as out:

        def flush() -> None:
            doc = {
                "resourceSpans": [
                    {
                        "resource": resource,
                        "scopeSpans": [
                            {"scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "spans": batch}
                        ],
                    }
                ]
            }
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
            batch.clear()

        for n, t in _calls(rng):
            batch.extend(_support_trace(n, t, rng))
            count += 1
            if len(batch) >= 2 * TRACES_PER_LINE:
                flush()
        if batch:
            flush()
    return count


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")  # as Langfuse's export writes times (UTC)


def write_langfuse_example(folder: Path, seed: int = 11) -> int:
    """observations.jsonl, scores.jsonl and langfuse-mapping.yaml; returns the generations."""
    rng = random.Random(seed)
    count = 0
    with open(folder / "observations.jsonl", "w") as obs, open(folder / "scores.jsonl", "w") as sc:
        for n, t in _calls(rng):
            after = t >= CHANGE_AT
            latency = rng.lognormvariate(6.0, 0.3) / 1000
            trace = {
                "trace_id": f"tr-{n:06d}",
                "trace_name": "ticket-triage",
                "user_id": f"agent-{rng.randint(1, 40)}",
                "session_id": f"s-{n // 5}",
                "release": "2026.3.0",
                "tags": ["triage"],
                "environment": "production",
                "project_id": "helpdesk",
            }
            span = {
                "id": f"sp-{n:06d}",
                "type": "SPAN",
                "name": "triage",
                "parent_observation_id": "",
                "start_time": _stamp(t),
                "end_time": _stamp(t + timedelta(seconds=latency + 0.02)),
                "level": "DEFAULT",
                "latency": round(latency + 0.02, 4),
                **trace,
            }
            generation = {
                "id": f"gen-{n:06d}",
                "type": "GENERATION",
                "name": "classify",
                "parent_observation_id": span["id"],
                "start_time": _stamp(t),
                "end_time": _stamp(t + timedelta(seconds=latency)),
                "level": "DEFAULT",
                "status_message": "",
                "provided_model_name": "gpt-4o-mini",
                "usage_details": {"input": rng.randint(500, 900), "output": rng.randint(5, 30)},
                "cost_details": {"total": 0.0002},
                "total_cost": 0.0002,
                "prompt_name": "triage",
                "prompt_version": 4 if after else 3,
                "latency": round(latency, 4),
                "time_to_first_token": None,
                **trace,
            }
            obs.write(json.dumps(span) + "\n" + json.dumps(generation) + "\n")
            quality = min(1.0, max(0.0, rng.gauss(0.70 if after else 0.86, 0.08)))
            sc.write(
                json.dumps(
                    {
                        "id": f"sc-{n:06d}",
                        "timestamp": _stamp(t),
                        "project_id": "helpdesk",
                        "trace_id": trace["trace_id"],
                        "observation_id": generation["id"],
                        "name": "helpfulness",
                        "value": round(quality, 3),
                        "source": "EVAL",
                        "data_type": "NUMERIC",
                    }
                )
                + "\n"
            )
            count += 1
    (folder / "langfuse-mapping.yaml").write_text(
        "# Langfuse export: scores joined by name; latency in seconds (integrations made since\n"
        "# 2026-04-01; older ones write milliseconds: latency_unit: ms).\n"
        "langfuse:\n  scores_file: scores.jsonl\n  quality_score: helpfulness\n"
        "  latency_unit: s\n"
    )
    return count


def write_examples(folder: Path) -> dict[str, int]:
    """Both examples into `folder`; returns the requests each holds."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "support-traces.jsonl": write_otlp_example(folder / "support-traces.jsonl"),
        "observations.jsonl": write_langfuse_example(folder),
    }
