"""Real traced LLM calls, written as OTLP JSON lines: run as a script in its own process.

    python otel_calls.py OUT.jsonl FAMILY [--base64-ids]

FAMILY is `genai` (opentelemetry-instrumentation-openai-v2; the environment's
OTEL_SEMCONV_STABILITY_OPT_IN picks the attribute names) or `openinference`
(openinference-instrumentation-openai). A loopback OpenAI-compatible server answers chat
completions; the calls go through the real `openai` client with the instrumentation on.
Each span is exported as it ends, one `TracesData` JSON object per line, encoded by the
SDK's own OTLP encoder (protobuf, then protobuf's JSON mapping, ids turned from base64 to
hex as the OTLP JSON encoding asks; `--base64-ids` leaves them as protobuf writes them).

Prints one JSON object: what each call was and what the server answered, for the test to
check the ingested rows against.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What the server does, chosen by the model the call asks for.
SCRIPT = [
    # (feature, user, model asked, what the server does)
    ("support-reply", "u-1", "gpt-4o-mini", "ok"),
    ("support-reply", "u-2", "gpt-4o-mini", "ok"),
    ("ticket-triage", "u-3", "gpt-4o", "ok"),
    ("support-reply", "u-4", "gpt-4o-mini", "429"),
    ("ticket-triage", "u-5", "gpt-4o", "500"),
    ("support-reply", "u-6", "gpt-4o-mini", "timeout"),
]
RESPONSE_MODEL = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06"}
RUN = uuid.uuid4().hex[:8]  # response ids differ from one run to the next
SERVER_DELAY_S = 0.05
CLIENT_TIMEOUT_S = 0.5


class _Server(BaseHTTPRequestHandler):
    behaviour: dict[str, str] = {}
    answered: list[dict] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        tag = self.headers.get("X-Call", "")
        what = self.behaviour[tag]
        if what == "timeout":
            time.sleep(CLIENT_TIMEOUT_S * 3)
            self._send(200, {})
            return
        time.sleep(SERVER_DELAY_S)
        if what == "429":
            self._send(429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}})
            return
        if what == "500":
            self._send(500, {"error": {"message": "The server had an error", "type": "server"}})
            return
        n = len(self.answered) + 1
        prompt_tokens, completion_tokens = 10 * n + 1, 5 * n + 2
        answer = {
            "id": f"chatcmpl-{RUN}-{tag}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": RESPONSE_MODEL[body["model"]],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"Answer {n}"},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        self.answered.append(
            {
                "call": tag,
                "id": answer["id"],
                "model": answer["model"],
                "input_tokens": prompt_tokens,
                "output_tokens": completion_tokens,
            }
        )
        self._send(200, answer)

    def _send(self, code: int, doc: dict) -> None:
        data = json.dumps(doc).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)


def _hex_ids(node):
    """protobuf's JSON mapping writes bytes as base64; OTLP JSON writes trace and span ids
    as lowercase hex."""
    if isinstance(node, dict):
        return {
            k: (
                base64.b64decode(v).hex()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else _hex_ids(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def _exporter(out_path: str, hex_ids: bool):
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class OtlpJsonLines(SpanExporter):
        def __init__(self) -> None:
            self.out = open(out_path, "w")

        def export(self, spans) -> SpanExportResult:
            doc = MessageToDict(encode_spans(spans), use_integers_for_enums=hex_ids)
            doc = _hex_ids(doc) if hex_ids else doc
            self.out.write(json.dumps(doc) + "\n")
            self.out.flush()
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            self.out.close()

    return OtlpJsonLines()


def main(out_path: str, family: str, hex_ids: bool = True) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "helpdesk-api"}))
    provider.add_span_processor(SimpleSpanProcessor(_exporter(out_path, hex_ids)))
    if family == "genai":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    else:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    import openai

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="sk-test", max_retries=0
    )
    tracer = provider.get_tracer("helpdesk")
    calls = []
    for i, (feature, user, model, what) in enumerate(SCRIPT):
        tag = f"call-{i}"
        _Server.behaviour[tag] = what
        error = None
        # The application's own span is the trace's root; the LLM span is its child.
        with tracer.start_as_current_span(feature, attributes={"user.id": user}) as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            try:
                # Only the call meant to time out has a short timeout: a slow machine must
                # not turn an answered call into a timeout.
                client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": f"question {i}"}],
                    extra_headers={"X-Call": tag},
                    timeout=CLIENT_TIMEOUT_S if what == "timeout" else 30.0,
                )
            except openai.OpenAIError as exc:
                error = type(exc).__name__
        calls.append(
            {
                "call": tag,
                "feature": feature,
                "user": user,
                "model": model,
                "what": what,
                "error": error,
                "trace_id": trace_id,
            }
        )
    provider.shutdown()
    server.shutdown()
    print(json.dumps({"calls": calls, "answered": _Server.answered}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], hex_ids="--base64-ids" not in sys.argv[3:])
