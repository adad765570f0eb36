"""Settings declared once as data, and the data directory every command works in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "ROLLBACK_DESK_DATA"


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "data", "Folder holding all state: database, flag file, audit trail."),
    Setting("database_file", "rollback.duckdb", "DuckDB file with requests, quarantine, changes."),
    Setting("ledger_file", "ledger.sqlite", "SQLite file with audit trail, incidents, flag history."),
    Setting("lock_timeout_s", 60.0, "How long a command waits for another process's DuckDB write."),
    Setting("flag_timeout_s", 5.0, "Timeout of one call to a flag backend."),
    Setting("webhook_timeout_s", 5.0, "Timeout of one attempt to post to a webhook."),
    Setting(
        "timestamp_not_before", "2015-01-01", "Request times before this date are quarantined as implausible."
    ),
    Setting(
        "timestamp_max_ahead_h",
        24.0,
        "Request times more than this many hours after the load are quarantined.",
    ),
)


def setting(name: str) -> object:
    """A setting's value: $ROLLBACK_DESK_<NAME> when set (read as the default's type),
    else its default."""
    for s in SETTINGS:
        if s.name == name:
            override = os.environ.get(f"ROLLBACK_DESK_{name.upper()}")
            if override is None or override == "":
                return s.default
            try:
                return type(s.default)(override)
            except ValueError:
                raise ValueError(
                    f"ROLLBACK_DESK_{name.upper()}={override!r}: expected "
                    f"{type(s.default).__name__}, like {s.default!r}"
                ) from None
    raise KeyError(name)


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the explicit argument, else $ROLLBACK_DESK_DATA, else ./data."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV])
    else:
        path = Path(str(setting("data_dir")))
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
