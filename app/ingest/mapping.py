"""Mapping files: YAML that maps canonical fields to source columns or DuckDB SQL expressions.

    fields:
      timestamp: "timestamp '2023-11-16' + to_seconds(\"Timestamp\")"
      feature: "'chat'"
      model: Model

A value that is exactly the name of a source column takes that column; any other value is a
DuckDB SQL expression over the source columns. Canonical fields left out are taken from
same-named source columns when present.

Every expression is parsed when the mapping is loaded (`app/ingest/expressions.py`) and
accepted only as one scalar expression: no subquery, table function or statement, so the
text of a mapping cannot read any file but the log it maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.ingest.expressions import Expression, UnsafeExpression, check_expression
from app.storage.schema import FIELD_NAMES
from app.textfiles import FileProblem, load_yaml


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # the mapping file, for error messages
    # field -> the checked expression (the columns it reads; whether it parsed at all)
    expressions: dict[str, Expression] = field(default_factory=dict, compare=False)

    def label(self) -> str:
        return self.source or "(no mapping)"


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    try:
        doc = load_yaml(path)
    except FileProblem as exc:
        raise MappingError(str(exc)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("fields"), dict):
        raise MappingError(f"{path}: expected a mapping with a 'fields:' mapping at the top")
    unknown = [k for k in doc if k != "fields"]
    if unknown:
        raise MappingError(f"{path}: unknown top-level key {unknown[0]!r}; expected only 'fields'")
    fields: dict[str, str] = {}
    for name, value in doc["fields"].items():
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
    expressions = {}
    for name, value in fields.items():
        try:
            expressions[name] = check_expression(value)
        except UnsafeExpression as exc:
            raise MappingError(f"{path}: fields.{name}: {exc}; expected a column name or a "
                               "scalar expression over the source's columns") from None
    return Mapping(fields=fields, source=str(path), expressions=expressions)
