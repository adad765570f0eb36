"""Reading the text and YAML files a person writes (configuration, playbooks, change files).

Errors name the file and the line and say what is wrong, and never quote the file: a wrong
path pointed at a secrets file must not put its first line on a page or in a log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class FileProblem(ValueError):
    """A file that cannot be read as text or parsed; the message names file and line only."""


def read_text(path: str | Path) -> str:
    """The file as UTF-8 text; FileProblem naming the first line that is not UTF-8."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileProblem(f"{path} line {line}: not UTF-8 text") from None


def parse_yaml(text: str, path: str | Path) -> Any:
    """YAML text read from `path`; FileProblem naming the line of a syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FileProblem(yaml_problem(exc, path)) from None


def load_yaml(path: str | Path) -> Any:
    return parse_yaml(read_text(path), path)


def yaml_problem(exc: yaml.YAMLError, path: str | Path) -> str:
    """`<file> line N: not valid YAML (<problem>)`, without the snippet PyYAML quotes."""
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"{path}{where}: not valid YAML ({problem})"
