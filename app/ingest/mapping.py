"""Mapping files: YAML that maps canonical fields to source columns or DuckDB SQL expressions.

    fields:
      timestamp: "timestamp '2023-11-16' + to_seconds(\"Timestamp\")"
      feature: "'chat'"
      model: Model

A value that is exactly the name of a source column takes that column; any other value is a
DuckDB SQL expression over the source columns. Canonical fields left out are taken from
same-named source columns when present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.configuration import ConfigFileError, load_yaml
from app.storage.schema import FIELD_NAMES


class MappingError(ConfigFileError):
    """A mapping file that cannot be used; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # the mapping file, for error messages

    def label(self) -> str:
        return self.source or "(no mapping)"


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping file, checked against schemas/mapping.json; raises MappingError."""
    doc = load_yaml(path, "mapping", error=MappingError, vocabularies={"field": FIELD_NAMES})
    return Mapping(fields={name: str(value) for name, value in doc.data["fields"].items()},
                   source=str(path))
