"""Reading the text files a person writes (message templates, flags.json, secrets.toml,
changes files) as UTF-8, with errors that name the file and the line and never quote the
file: a wrong path pointed at a secrets file must not put its first line on a page or in a
log. YAML files go through the loader (app/configuration/__init__.py), which reads them the
same way."""

from __future__ import annotations

from pathlib import Path

from app.configuration.documents import decode_text
from app.configuration.problems import ConfigFileError


class FileProblem(ConfigFileError):
    """A file that cannot be read as text; the message names the file and the line only."""


def read_text(path: str | Path) -> str:
    """The file as UTF-8 text; FileProblem naming the first line that is not UTF-8."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return decode_text(data, path, FileProblem)
