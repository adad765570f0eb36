"""Read-only SQL over the project's DuckDB file: for people typing queries, and for playbooks.

A statement passes three locks before a row comes back:

1. the check: DuckDB's own parser splits the text (`extract_statements`) and serialises it
   (`json_serialize_sql`, which accepts SELECT statements only), so exactly one SELECT-like
   statement gets through; table functions that read files are refused by name before they
   run;
2. the connection: opened with `read_only=True`, `enable_external_access = false` (no file,
   no network, no extension) and `lock_configuration = true` (no `SET` can undo that);
3. the limits: at most `limit` rows are fetched (`truncated` says whether there were more),
   and a statement still running at `timeout_s` is stopped with DuckDB's `interrupt()`.

API (everything a caller needs):

    check_statement(sql) -> str                       # raises QueryRefused
    run_readonly(db_path, sql, params=None, limit=1000, timeout_s=10.0) -> QueryResult
    # QueryRefused (a statement that is not allowed), QueryTimeout (interrupted at the
    # limit), QueryFailed (any other DuckDB error: unknown column, bad type, ...): all
    # ReadOnlyQueryError, whose str() is one line a person can act on.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

DEFAULT_LIMIT = 1000
DEFAULT_TIMEOUT_S = 10.0
OPEN_TIMEOUT_S = 10.0

# Table functions that read files or URLs. External access off already makes them fail;
# naming them first gives a clearer message than DuckDB's permission error.
FILE_FUNCTIONS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "csv_scan",
        "sniff_csv",
        "read_parquet",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_json_objects_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
        "glob",
        "read_xlsx",
        "st_read",
        "iceberg_scan",
        "delta_scan",
        "sqlite_scan",
        "postgres_scan",
        "mysql_scan",
    }
)
# A table name DuckDB would turn into a file read (a "replacement scan"): a path or a name
# with a data file's extension.
_FILE_NAME = re.compile(
    r"[/\\]|\.(csv|tsv|txt|parquet|json|jsonl|ndjson|gz|zst|xlsx|db|duckdb|"
    r"sqlite)$",
    re.IGNORECASE,
)

_KIND_REASON = {
    "COPY": "COPY reads or writes files",
    "ATTACH": "ATTACH opens another database",
    "DETACH": "DETACH changes the attached databases",
    "LOAD": "extensions cannot be installed or loaded",
    "EXTENSION": "extensions cannot be installed or loaded",
    "SET": "settings cannot be changed",
    "VARIABLE_SET": "settings cannot be changed",
    "PRAGMA": "PRAGMA statements can change settings",
    "EXPORT": "EXPORT DATABASE writes files",
    "CALL": "CALL runs procedures; use SELECT * FROM the_function() instead",
}


class ReadOnlyQueryError(Exception):
    """A statement that gave no rows; str() is one line that says why."""


class QueryRefused(ReadOnlyQueryError):
    """The statement is not allowed in a read-only query."""


class QueryTimeout(ReadOnlyQueryError):
    """The statement ran past the time limit and was interrupted."""


class QueryFailed(ReadOnlyQueryError):
    """DuckDB could not run the statement (unknown table or column, bad type, ...)."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]  # DuckDB type of each column
    rows: list[tuple]
    truncated: bool  # there were more rows than the limit
    elapsed_s: float


def _one_line(text: str) -> str:
    first = str(text).strip().splitlines()[0] if str(text).strip() else str(text)
    return re.sub(r"^[A-Za-z ]+Error: ", "", first).strip()


def _walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _named_file(tree: dict) -> str | None:
    """The first file a serialised statement reads, by table function or file-like name."""
    for node in _walk(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = str(fn.get("function_name", "")).lower()
            if name in FILE_FUNCTIONS:
                return f"{name}()"
        elif kind == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            if _FILE_NAME.search(name):
                return repr(name)
    return None


def check_statement(sql: str) -> str:
    """The one statement of `sql`, if DuckDB's parser finds exactly one SELECT (DESCRIBE,
    SHOW and SUMMARIZE count as SELECTs) that names no file; raises QueryRefused otherwise."""
    text = (sql or "").strip()
    if not text:
        raise QueryRefused("refused: the query is empty")
    parser = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        try:
            statements = parser.extract_statements(text)
        except duckdb.Error as exc:
            raise QueryRefused(f"refused: {_one_line(str(exc))}") from None
        if len(statements) != 1:
            raise QueryRefused(f"refused: one statement at a time, found {len(statements)}")
        kind = str(statements[0].type).rsplit(".", 1)[-1].upper()
        if kind != "SELECT":
            reason = _KIND_REASON.get(kind, "the query is read-only: only SELECT is allowed")
            word = text.split(None, 1)[0].upper()
            raise QueryRefused(f"refused: {word} statement: {reason}")
        tree = json.loads(parser.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0])
    finally:
        parser.close()
    if tree.get("error"):
        raise QueryRefused(f"refused: {_one_line(tree.get('error_message', 'not a SELECT'))}")
    named = _named_file(tree)
    if named:
        raise QueryRefused(
            f"refused: the statement reads a file ({named}); external access "
            "is off, only the stored tables can be queried"
        )
    return text


def _is_open_conflict(exc: Exception) -> bool:
    """Another process writes the file, or this process holds it open read-write."""
    text = str(exc).lower()
    return ("lock" in text and ("conflict" in text or "could not set" in text)) or (
        "different configuration" in text
    )


@contextmanager
def readonly_connection(
    db_path: Path, open_timeout_s: float = OPEN_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection with external access off and the configuration locked; waits
    while a writer holds the file."""
    path = Path(db_path)
    if not path.exists():
        raise QueryFailed(f"no database at {path}: load some logs first")
    config = {"enable_external_access": False, "lock_configuration": True}
    deadline = time.monotonic() + open_timeout_s
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True, config=config)
            break
        except duckdb.Error as exc:
            if not _is_open_conflict(exc):
                raise QueryFailed(f"cannot open {path}: {_one_line(str(exc))}") from None
            if time.monotonic() > deadline:
                raise QueryFailed(
                    f"{path} is being written by another process; try again in a moment"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    try:
        yield con
    finally:
        con.close()


def run_readonly(
    db_path: Path,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """Run one checked statement on a read-only connection; at most `limit` rows, at most
    `timeout_s` seconds (the statement is interrupted and QueryTimeout raised)."""
    text = check_statement(sql)
    if limit < 0:
        raise ValueError("limit must be 0 or more")
    started = time.monotonic()
    with readonly_connection(db_path) as con:
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            con.interrupt()

        timer = threading.Timer(timeout_s, stop)
        timer.daemon = True
        timer.start()
        try:
            cur = con.execute(text, params or [])
            columns = tuple(d[0] for d in cur.description or ())
            types = tuple(str(d[1]) for d in cur.description or ())
            rows = cur.fetchmany(limit + 1) if columns else []
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"stopped: the query ran longer than the {timeout_s:g} s limit and was interrupted"
            ) from None
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"refused: {_one_line(str(exc))}") from None
        except duckdb.Error as exc:
            if timed_out.is_set():
                raise QueryTimeout(
                    f"stopped: the query ran longer than the {timeout_s:g} s limit and was interrupted"
                ) from None
            raise QueryFailed(_one_line(str(exc))) from None
        finally:
            timer.cancel()
    return QueryResult(columns, types, rows[:limit], len(rows) > limit, time.monotonic() - started)
