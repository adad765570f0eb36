"""Configuration files, read by one loader: YAML with line numbers, checked against a JSON Schema.

    doc = load_yaml(path, "notify", error=NotifyConfigError, empty={})
    doc.data            # the plain data (dicts, lists, strings, numbers)
    doc.problem(at, m)  # a Problem naming the file, the line of key path `at`, and the key

Every error names the file, the line and the key, and says what was expected. The rooms
that read a file keep only the checks of meaning that a schema cannot express (a default
variant that exists, steps that grow, SQL that DuckDB parses as one SELECT).
docs/configuration.md lists the files and their schemas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.configuration.documents import Document, decode_text, parse_yaml, read_yaml
from app.configuration.problems import ConfigFileError, KeyPath, Problem, key_label, problem
from app.configuration.validation import FLAGD, KINDS, Vocabularies, violations

__all__ = [
    "FLAGD",
    "KINDS",
    "ConfigFileError",
    "Document",
    "KeyPath",
    "Problem",
    "Vocabularies",
    "check",
    "decode_text",
    "key_label",
    "load_yaml",
    "parse_yaml",
    "problem",
    "read_yaml",
    "violations",
]

_NO_DEFAULT: Any = object()


def check(doc: Document, kind: str, vocabularies: Vocabularies | None = None) -> list[Problem]:
    """Every place where the document breaks the schema of its kind, in file order."""
    found = [doc.problem(at, message) for at, message in violations(doc.data, kind, vocabularies)]
    return sorted(found, key=lambda p: (p.line or 0, p.key))


def load_yaml(
    path: str | Path,
    kind: str,
    *,
    error: type[ConfigFileError] = ConfigFileError,
    empty: Any = _NO_DEFAULT,
    text: str | bytes | None = None,
    vocabularies: Vocabularies | None = None,
) -> Document:
    """Read a YAML file of `kind` and check it against its schema; raise `error` listing every
    problem. An empty file stands for `empty` when given. `text` replaces reading the file
    (for uploads); `path` then only names it in errors. `vocabularies` fills the schema's
    named lists (see validation.py)."""
    doc = parse_yaml(text, path, error) if text is not None else read_yaml(path, error)
    if doc.data is None and empty is not _NO_DEFAULT:
        doc = Document(path=doc.path, data=empty, lines=doc.lines)
    problems = check(doc, kind, vocabularies)
    if problems:
        raise error(problems)
    return doc
