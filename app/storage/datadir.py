"""One data directory, opened once: its path, its DuckDB store, its SQLite ledger and its flag
configuration, handed down to whatever needs them.

A command or a page run opens a `DataDir` and passes it down, the way datasette passes its
`Datasette` instance, instead of handing a bare path through every room for each one to
reopen the store, the ledger and flags.yaml. What it holds is opened on first use and kept
for the life of the object; a long-running process (the app, `watch`) opens a new one per
rerun or per look, so an edited flags.yaml is seen on the next one.

Functions that still take a path accept a `DataDir` too (`os.fspath` gives its path), and
`as_datadir` turns either into a `DataDir`.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from app.config import resolve_data_dir, setting
from app.flags.base import FlagError
from app.flags.config import FlagConfig, load_config
from app.storage.ledger import Ledger
from app.storage.store import Store


class DataDir:
    """The state of one data directory: store, ledger and flag configuration."""

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout_s: float | None = None) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_timeout_s = lock_timeout_s
        self._flag_config: FlagConfig | FlagError | None = None

    @classmethod
    def open(cls, explicit: str | os.PathLike[str] | None = None) -> DataDir:
        """The data directory of a command or a page: the explicit argument, else
        $ROLLBACK_DESK_DATA, else ./data (see app.config)."""
        return cls(resolve_data_dir(explicit))

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    @property
    def database_path(self) -> Path:
        return self.path / str(setting("database_file"))

    @property
    def has_database(self) -> bool:
        """Whether the DuckDB file exists (reading an empty directory must not create it)."""
        return self.database_path.exists()

    @cached_property
    def store(self) -> Store:
        return Store(self.path, lock_timeout_s=self._lock_timeout_s)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.path)

    def flag_config(self) -> FlagConfig:
        """flags.yaml, read and validated once; a broken file raises its error every time."""
        if self._flag_config is None:
            try:
                self._flag_config = load_config(self.path)
            except FlagError as exc:
                self._flag_config = exc
        if isinstance(self._flag_config, FlagError):
            raise self._flag_config
        return self._flag_config


def as_datadir(place: DataDir | str | os.PathLike[str]) -> DataDir:
    """The `DataDir` itself, or a new one over a path (for callers that still pass paths)."""
    return place if isinstance(place, DataDir) else DataDir(place)
