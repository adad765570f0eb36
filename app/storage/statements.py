"""What DuckDB's own parser makes of a SQL text written in a configuration file.

A playbook's query check is run against the store, so it must be one read-only SELECT. The
text is given to `json_serialize_sql`, which serializes only SELECT statements (a WITH query
and a UNION are SELECTs too) and reports anything else, or a syntax error, as an error; the
statement count comes from the same answer. No regular expression guesses at the grammar.
"""

from __future__ import annotations

import json
import threading
from functools import cache

import duckdb

_LOCK = threading.Lock()


@cache
def _parser() -> duckdb.DuckDBPyConnection:
    """One in-memory database for parsing: opening one costs far more than a parse."""
    return duckdb.connect(":memory:")


def select_problem(sql: str) -> str | None:
    """None when `sql` is exactly one SELECT statement, else what is wrong with it."""
    with _LOCK:
        row = _parser().execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    answer = json.loads(row[0])
    if answer.get("error"):
        message = str(answer.get("error_message", "")).strip()
        if message.startswith("Only SELECT"):
            return "DuckDB reads a statement that is not a SELECT"
        return f"DuckDB cannot parse it ({message.splitlines()[0] if message else 'syntax error'})"
    count = len(answer.get("statements", []))
    if count != 1:
        return f"DuckDB reads {count} statements"
    return None
