"""A problem in a configuration file, and the error that carries every problem of a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KeyPath = tuple[str | int, ...]


def key_label(at: KeyPath) -> str:
    """`steps[0].checks[1].sql` for ("steps", 0, "checks", 1, "sql"); the root is "(top level)"."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at).lstrip(".")
    return text or "(top level)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where it is (file, line, key) and what was expected."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        line = f" line {self.line}:" if self.line else ""
        key = f" {self.key}:" if self.key else ""
        return f"{self.file}:{line}{key} {self.message}"


class ConfigFileError(ValueError):
    """A configuration file that cannot be used; `problems` lists each, file and line included.

    The rooms that read a file raise their own subclass (PlaybookError, ThresholdsError, ...)
    so that callers can tell which file kind failed.
    """

    def __init__(self, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="", line=None, key="", message=problems)]
        self.problems = problems
        super().__init__("\n".join(self.errors))

    @property
    def errors(self) -> list[str]:
        return [str(p) if p.file else p.message for p in self.problems]


def problem(path: str | Path, line: int | None, at: KeyPath | None, message: str) -> Problem:
    """A problem at key path `at`; None when it concerns the file as a whole (unreadable,
    not UTF-8, not YAML)."""
    return Problem(file=str(path), line=line, key="" if at is None else key_label(at), message=message)
