"""YAML read with the line of every key kept, so that every error can point at its line.

PyYAML composes the document into nodes that carry their position; the data is built from
those nodes and a second walk records the line of each key path. Bytes that are not UTF-8,
characters YAML does not allow, syntax errors and keys written twice in one mapping are all
problems naming the file and the line, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.configuration.problems import ConfigFileError, KeyPath, Problem, problem

# libyaml's loader when PyYAML was built with it (several times faster), else the pure one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: its data and the line (1-based) of every key path."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, at: KeyPath) -> int:
        """The line of `at`, or of its nearest ancestor present in the file."""
        for i in range(len(at), -1, -1):
            found = self.lines.get(tuple(at[:i]))
            if found is not None:
                return found
        return 1

    def problem(self, at: KeyPath, message: str) -> Problem:
        return problem(self.path, self.line(at), at, message)


def read_yaml(path: str | Path, error: type[ConfigFileError] = ConfigFileError) -> Document:
    """Read and parse one YAML file; raises `error` naming the file (and the line) when the
    file cannot be read, is not UTF-8, or is not valid YAML."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error([problem(path, None, None, f"cannot read the file ({exc.strerror})")]) from None
    return parse_yaml(raw, path, error)


def parse_yaml(
    raw: bytes | str, path: str | Path, error: type[ConfigFileError] = ConfigFileError
) -> Document:
    path = Path(path)
    text = decode_text(raw, path, error) if isinstance(raw, bytes) else raw
    loader = None
    try:
        loader = _LOADER(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise error([_yaml_problem(exc, text, path)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[KeyPath, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        _index(node, (), lines, duplicates, path)
    if duplicates:
        raise error(duplicates)
    return Document(path=path, data=data, lines=lines)


def decode_text(raw: bytes, path: str | Path, error: type[ConfigFileError] = ConfigFileError) -> str:
    """UTF-8 text (a byte-order mark is dropped); other bytes are an error naming the line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            [
                problem(
                    path,
                    line,
                    None,
                    f"byte 0x{raw[exc.start]:02x} at column {column} is not "
                    "UTF-8 text; save the file as UTF-8",
                )
            ]
        ) from None


def _yaml_problem(exc: yaml.YAMLError, text: str, path: Path) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text[: exc.position].count("\n") + 1
        return problem(path, line, None, f"character U+{exc.character:04X} is not allowed in YAML; remove it")
    mark = getattr(exc, "problem_mark", None)
    what = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
    return problem(
        path, mark.line + 1 if mark else None, None, f"not valid YAML ({what or exc.__class__.__name__})"
    )


def _key(node: yaml.Node) -> str | int:
    """The key as the data holds it (YAML `1:` is the int 1), as far as a key path needs."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag.endswith(":int"):
            try:
                return int(node.value)
            except ValueError:
                return node.value
        return node.value
    return str(node.value)


def _index(
    node: yaml.Node, at: KeyPath, lines: dict[KeyPath, int], duplicates: list[Problem], path: Path
) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str | int, int] = {}
        for key_node, value_node in node.value:
            key = _key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                duplicates.append(
                    problem(
                        path,
                        line,
                        (*at, key),
                        f"written twice in one mapping (first on line {seen[key]}); keep one",
                    )
                )
            seen.setdefault(key, line)
            _index(value_node, (*at, key), lines, duplicates, path)
            lines[(*at, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*at, i), lines, duplicates, path)
