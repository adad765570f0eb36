"""The canonical request fields, their storage types and validation rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    sql_type: str  # DuckDB storage type
    kind: str  # text | timestamp | double | integer
    meaning: str
    required: bool = False


FIELDS: tuple[Field, ...] = (
    Field("timestamp", "TIMESTAMP", "timestamp", "when the request started, stored UTC", True),
    Field("feature", "VARCHAR", "text", "the AI feature, e.g. support-reply", True),
    Field("request_id", "VARCHAR", "text", "unique per request"),
    Field("model", "VARCHAR", "text", "the model the app asked for (may be an alias)"),
    Field("response_model", "VARCHAR", "text", "the model the provider says answered"),
    Field("prompt_version", "VARCHAR", "text", "prompt version"),
    Field("variant", "VARCHAR", "text", "flag variant / experiment arm"),
    Field("user_id", "VARCHAR", "text", "end user or client"),
    Field("segment", "VARCHAR", "text", "customer segment"),
    Field("region", "VARCHAR", "text", "serving region"),
    Field("latency_ms", "DOUBLE", "double", "latency in milliseconds, >= 0"),
    Field("input_tokens", "BIGINT", "integer", "prompt tokens"),
    Field("output_tokens", "BIGINT", "integer", "completion tokens"),
    Field("cost_usd", "DOUBLE", "double", "cost of the request in USD"),
    Field("error", "VARCHAR", "text", "empty/null = success; otherwise the error type"),
    Field("quality_score", "DOUBLE", "double", "grader or eval score in [0, 1], often sampled"),
    Field("feedback", "TINYINT", "integer", "user feedback: -1, 0 or 1"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

# Text dimensions a chart or a finding can be split by (extra columns come on top).
SPLIT_DIMENSIONS: tuple[str, ...] = (
    "model",
    "response_model",
    "prompt_version",
    "variant",
    "region",
    "segment",
    "user_id",
)

CHANGE_KINDS: tuple[str, ...] = ("model", "prompt", "flag", "config")
CHANGE_SOURCES: tuple[str, ...] = ("declared", "inferred", "flag-audit", "rollback-desk")
