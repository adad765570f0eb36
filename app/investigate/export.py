"""Export a slice: the requests of a scope as JSONL, CSV or Parquet, written by DuckDB
(`COPY (SELECT ...) TO`, streamed, never held in Python), with a sidecar `<file>.json`
that records the feature, time range, filter, sampling and row count.

Both files are written under temporary names and renamed into place, data first: a stopped
export leaves any earlier file of the same name as it was. Exporting needs the responder
role (when sign-in is configured) and is recorded in the query log.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.detection.findings import iso_z
from app.investigate import querylog
from app.investigate.filters import Scope, where_sql
from app.investigate.request_table import ORDERS
from app.investigate.roles import EXPORT_ROLE, Actor, PermissionDenied, require
from app.storage.schema import FIELD_NAMES
from app.storage.store import Store

FORMATS = {
    "jsonl": "(FORMAT json)",
    "csv": "(FORMAT csv, HEADER true)",
    "parquet": "(FORMAT parquet, COMPRESSION zstd)",
}
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_COLUMNS = ", ".join(f'"{n}"' for n in FIELD_NAMES) + ", extra"
# Without --worst a sample is spread over the scope by a hash of each request (the same
# rows every time for the same data), not the first N by time.
_SPREAD = "hash(coalesce(request_id, '') || CAST(timestamp AS VARCHAR))"


class ExportError(ValueError):
    """An export that cannot be written; the message names the file or the option."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar: Path
    format: str
    rows: int
    description: dict[str, Any]


def format_of(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIX.get(path.suffix.lower())
    if found is None:
        raise ExportError(
            f"{path}: cannot tell the format from the name; use .jsonl, .csv or .parquet (or give the format)"
        )
    return found


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def export_slice(
    store: Store,
    scope: Scope,
    path: Path,
    *,
    fmt: str | None = None,
    n: int | None = None,
    worst: bool = False,
    extras: tuple[str, ...] = (),
    actor: Actor | None = None,
    who: str | None = None,
) -> ExportResult:
    """Write the scope's requests (all, or `n` of them: the worst first with `worst`, else a
    spread sample) to `path`, and the sidecar beside it."""
    path = Path(path)
    kind = format_of(path, fmt)
    name, role = (actor.name, actor.role) if actor else (who, None)
    description = {
        "feature": scope.feature,
        "since": iso_z(scope.since),
        "until": iso_z(scope.until),
        "filter": scope.filter.text(),
        "n": n,
        "worst": worst,
        "format": kind,
        "exported_by": name,
        "exported_at": iso_z(datetime.now(UTC).replace(tzinfo=None)),
    }
    log_text = json.dumps(
        {k: description[k] for k in ("feature", "since", "until", "filter", "n", "worst", "format")}
    )
    try:
        require(actor, EXPORT_ROLE, "exporting requests")
    except PermissionDenied as exc:
        querylog.record(
            store.data_dir,
            actor=name,
            role=role,
            kind="export",
            text=log_text,
            outcome="denied",
            message=str(exc),
        )
        raise
    if n is not None and n < 1:
        raise ExportError(f"--n {n}: expected 1 or more")
    if not path.parent.is_dir():
        raise ExportError(f"{path.parent}: no such folder")
    where, params = where_sql(scope, extras)
    order = ORDERS["worst"] if worst else (_SPREAD if n else "timestamp, request_id")
    limit = f"LIMIT {int(n)}" if n else ""
    select = f"SELECT {_COLUMNS} FROM requests WHERE {where} ORDER BY {order} {limit}"
    partial = path.with_name(f".{path.name}.partial")
    side_partial = path.with_name(f".{path.name}.json.partial")
    started = time.monotonic()
    try:
        with store.connect() as con:
            rows = con.execute(f"COPY ({select}) TO '{_quoted(partial)}' {FORMATS[kind]}", params).fetchone()[
                0
            ]
        description["rows"] = int(rows)
        side_partial.write_text(json.dumps(description, indent=2) + "\n")
        os.replace(partial, path)
        os.replace(side_partial, sidecar_path(path))
    except BaseException as exc:
        for leftover in (partial, side_partial):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
        querylog.record(
            store.data_dir,
            actor=name,
            role=role,
            kind="export",
            text=log_text,
            outcome="failed",
            message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        raise
    querylog.record(
        store.data_dir,
        actor=name,
        role=role,
        kind="export",
        text=log_text,
        outcome="ok",
        rows=int(rows),
        elapsed_ms=int(1000 * (time.monotonic() - started)),
        message=str(path),
    )
    return ExportResult(path, sidecar_path(path), kind, int(rows), description)


def _quoted(path: Path) -> str:
    """A path as a SQL string literal's content (the file name is ours, not the user's SQL,
    but may hold a quote)."""
    return str(path).replace("'", "''")
