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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.storage.schema import FIELD_NAMES


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the field."""


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
        return json.dumps(doc, sort_keys=True) if len(doc) > 1 else json.dumps(self.fields,
                                                                             sort_keys=True)


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise MappingError(f"{path}: cannot read mapping file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise MappingError(f"{path}:{where} not valid YAML ({exc})") from exc
    if not isinstance(doc, dict) or not (
            isinstance(doc.get("fields"), dict) or any(k in doc for k in SECTION_KEYS)):
        raise MappingError(f"{path}: expected a mapping with a 'fields:' mapping at the top")
    unknown = [k for k in doc if k != "fields" and k not in SECTION_KEYS]
    if unknown:
        raise MappingError(f"{path}: unknown top-level key {unknown[0]!r}; expected 'fields', "
                           "'otlp' or 'langfuse'")
    sections = {kind: _section(path, kind, doc.get(kind)) for kind in SECTION_KEYS}
    fields: dict[str, str] = {}
    for name, value in (doc.get("fields") or {}).items():
        if name not in FIELD_NAMES:
            raise MappingError(
                f"{path}: fields.{name} is not a canonical field; expected one of "
                + ", ".join(FIELD_NAMES)
            )
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise MappingError(
                f"{path}: fields.{name} must be a column name or a SQL expression (text)"
            )
        fields[name] = str(value)
    return Mapping(fields=fields, source=str(path), **sections)


def _section(path: Path, kind: str, body: object) -> dict[str, str]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise MappingError(f"{path}: {kind} must be a mapping of field: attribute")
    allowed = (*SECTION_KEYS[kind], *(FIELD_NAMES if kind == "otlp" else _LANGFUSE_FIELDS))
    out: dict[str, str] = {}
    for name, value in body.items():
        if name not in allowed:
            raise MappingError(f"{path}: {kind}.{name} is not known; expected one of "
                               + ", ".join(allowed))
        if not isinstance(value, str) or not value.strip():
            raise MappingError(f"{path}: {kind}.{name} must be a name (text)")
        out[name] = value.strip()
    unit = out.get("latency_unit")
    if unit is not None and unit not in ("s", "ms"):
        raise MappingError(f"{path}: langfuse.latency_unit must be s or ms, not {unit!r}")
    return out
