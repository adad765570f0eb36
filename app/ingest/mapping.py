"""Mapping files: YAML that maps canonical fields to source columns or DuckDB SQL expressions.

    fields:
      timestamp: "timestamp '2023-11-16' + to_seconds(\"Timestamp\")"
      feature: "'chat'"
      model: Model

A value that is exactly the name of a source column takes that column; any other value is a
DuckDB SQL expression over the source columns. Canonical fields left out are taken from
same-named source columns when present.

Telemetry sources take two more sections (docs/formats.md):

    otlp:                      # canonical field -> span attribute (or evaluation name)
      variant: feature_flag.variant
      scores_file: scores.jsonl
    langfuse:
      latency_unit: ms         # s (default) or ms
      quality_score: helpfulness
      feedback: user-feedback
      scores_file: scores.jsonl

Every expression is parsed when the mapping is loaded (`app/ingest/expressions.py`) and
accepted only as one scalar expression: no subquery, table function or statement, so the
text of a mapping cannot read any file but the log it maps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.configuration import ConfigFileError, load_yaml
from app.ingest.expressions import Expression, UnsafeExpression, check_expression
from app.storage.schema import FIELD_NAMES


class MappingError(ConfigFileError):
    """A mapping file that cannot be used; the message names the file, the line and the field."""


# The keys of each telemetry section besides canonical field names.
SECTION_KEYS = {
    "otlp": ("scores_file",),
    "langfuse": ("scores_file", "latency_unit"),
}
# Langfuse rows are mapped by name; only these fields take a score name from its section.
_LANGFUSE_FIELDS = ("quality_score", "feedback")


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # the mapping file, for error messages
    otlp: dict[str, str] = field(default_factory=dict)
    langfuse: dict[str, str] = field(default_factory=dict)
    # field -> the checked expression (the columns it reads; whether it parsed at all)
    expressions: dict[str, Expression] = field(default_factory=dict, compare=False)

    def label(self) -> str:
        return self.source or "(no mapping)"

    def section(self, kind: str) -> dict[str, str]:
        return self.otlp if kind == "otlp" else self.langfuse if kind == "langfuse" else {}

    def scores_file(self, kind: str) -> Path | None:
        """The scores file a telemetry section names, relative to the mapping file."""
        name = self.section(kind).get("scores_file")
        if not name:
            return None
        path = Path(name)
        return path if path.is_absolute() or not self.source else Path(self.source).parent / path

    def key(self, kind: str = "") -> str:
        """What a load depends on: a file is read again when this changes (a changed scores
        file included)."""
        doc: dict = {"fields": self.fields}
        if self.section(kind):
            doc[kind] = self.section(kind)
        scores = self.scores_file(kind)
        if scores is not None:
            try:
                st = scores.stat()
                doc["scores"] = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                doc["scores"] = "missing"
        return json.dumps(doc, sort_keys=True) if len(doc) > 1 else json.dumps(self.fields, sort_keys=True)


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping file, checked against schemas/mapping.json (telemetry sections
    included); raises MappingError naming the file, the line and the key. Every expression is
    parsed here and accepted only as one scalar expression over the source's columns."""
    doc = load_yaml(path, "mapping", error=MappingError, vocabularies={"field": FIELD_NAMES})
    data = doc.data
    if not any(k in data for k in ("fields", *SECTION_KEYS)):
        raise MappingError(
            [
                doc.problem(
                    (), "expected a 'fields:' mapping at the top (or an 'otlp:' or 'langfuse:' section)"
                )
            ]
        )
    sections = {kind: _section(doc, kind, data.get(kind)) for kind in SECTION_KEYS}
    fields = {name: str(value) for name, value in (data.get("fields") or {}).items()}
    expressions = {}
    for name, value in fields.items():
        try:
            expressions[name] = check_expression(value)
        except UnsafeExpression as exc:
            raise MappingError(
                [
                    doc.problem(
                        ("fields", name),
                        f"{exc}; expected a column name or a scalar expression over the source's columns",
                    )
                ]
            ) from None
    return Mapping(fields=fields, source=str(path), expressions=expressions, **sections)


def _section(doc, kind: str, body: dict | None) -> dict[str, str]:
    """A telemetry section: canonical field (or section option) -> attribute or score name."""
    if not body:
        return {}
    allowed = (*SECTION_KEYS[kind], *(FIELD_NAMES if kind == "otlp" else _LANGFUSE_FIELDS))
    out: dict[str, str] = {}
    for name, value in body.items():
        if name not in allowed:
            raise MappingError(
                [doc.problem((kind, name), "not known; expected one of " + ", ".join(allowed))]
            )
        out[name] = value.strip()
    unit = out.get("latency_unit")
    if unit is not None and unit not in ("s", "ms"):
        raise MappingError([doc.problem((kind, "latency_unit"), f"must be s or ms, not {unit!r}")])
    return out
