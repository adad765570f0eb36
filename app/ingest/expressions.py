"""Mapping expressions, checked with DuckDB's own parser before they are run.

A mapped value is DuckDB SQL evaluated on every row of the source, on a connection that can
read files. So the text must be one scalar expression over the source's columns and nothing
else: no subquery (which could read `read_text('.streamlit/secrets.toml')`), no table
function, no second statement, no aggregate or window, and none of the functions that read
the process's environment or settings. `json_serialize_sql` gives the parse tree; its nodes
are checked against an allow list of expression classes, and every function it names
against DuckDB's catalog (scalar functions and scalar macros only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb

# Expression classes a scalar expression over columns is made of.
ALLOWED_CLASSES = {
    "COLUMN_REF",
    "CONSTANT",
    "FUNCTION",
    "CAST",
    "OPERATOR",
    "COMPARISON",
    "CONJUNCTION",
    "CASE",
    "BETWEEN",
    "COLLATE",
    "TYPE",
}
# Scalar functions that read the environment, the settings or the session, not the row.
DENIED_FUNCTIONS = {
    "getenv",
    "current_setting",
    "getvariable",
    "current_query",
    "current_database",
    "current_catalog",
    "current_schema",
    "current_schemas",
    "current_user",
    "session_user",
    "user",
    "version",
    "platform",
    "pragma_version",
    "txid_current",
    "current_role",
}
# The ingest's own scalar macros (app/ingest/validation.py), defined on its connection.
OWN_MACROS = {"rd_epoch", "rd_parse_ts"}


class UnsafeExpression(ValueError):
    """The text is a statement, a subquery, or uses something other than the row's values."""


@dataclass(frozen=True)
class Expression:
    text: str
    columns: frozenset[str]  # source columns it reads (first part of each name)
    parsed: bool  # False: not an expression at all, usable only as a column's exact name


def check_expression(text: str) -> Expression:
    """Parse `text` as `SELECT <text>` with DuckDB's parser and check it is a single scalar
    expression; raise UnsafeExpression saying what is not allowed. Text that does not parse
    (or parses with an alias, as `Request tokens` does) is returned with parsed=False: it can
    only be the exact name of a source column."""
    tree = _serialize(f"SELECT {text}")
    if tree.get("error"):
        if tree.get("error_type") == "parser":
            return Expression(text, frozenset(), parsed=False)
        raise UnsafeExpression("only one expression is allowed, not a statement")
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise UnsafeExpression("only one expression is allowed, not several statements")
    node = statements[0].get("node") or {}
    if node.get("type") != "SELECT_NODE":
        raise UnsafeExpression("only one expression is allowed, not a set operation")
    if (
        (node.get("from_table") or {}).get("type") != "EMPTY"
        or node.get("where_clause")
        or node.get("group_expressions")
        or node.get("having")
        or node.get("qualify")
        or node.get("modifiers")
        or (node.get("cte_map") or {}).get("map")
        or node.get("sample")
    ):
        raise UnsafeExpression("only one expression is allowed, not a query")
    select = node.get("select_list") or []
    if len(select) != 1:
        raise UnsafeExpression("only one expression is allowed, not a list")
    if select[0].get("alias"):
        return Expression(text, frozenset(), parsed=False)
    columns: set[str] = set()
    _check(select[0], columns)
    return Expression(text, frozenset(columns), parsed=True)


def _check(node: Any, columns: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _check(item, columns)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("class")
    if kind is not None:
        if kind == "SUBQUERY":
            raise UnsafeExpression("a subquery is not allowed (only the row's own values)")
        if kind not in ALLOWED_CLASSES:
            raise UnsafeExpression(f"{kind.lower().replace('_', ' ')} is not allowed in a mapping expression")
        if kind == "COLUMN_REF":
            names = node.get("column_names") or []
            if names:
                columns.add(names[0])
        elif kind == "FUNCTION":
            _check_function(node)
    if node.get("type") in ("TABLE_FUNCTION", "SUBQUERY"):
        raise UnsafeExpression("a table function is not allowed in a mapping expression")
    for key, value in node.items():
        if key != "query_location" and isinstance(value, dict | list):
            _check(value, columns)


def _check_function(node: dict[str, Any]) -> None:
    name = str(node.get("function_name") or "").lower()
    if node.get("is_operator") or name in OWN_MACROS:
        return
    if node.get("schema") or node.get("catalog"):
        raise UnsafeExpression(f"function {name}: a qualified function name is not allowed")
    if name in DENIED_FUNCTIONS:
        raise UnsafeExpression(f"function {name} reads the environment, not the row: not allowed")
    if node.get("distinct") or node.get("filter") or (node.get("order_bys") or {}).get("orders"):
        raise UnsafeExpression(f"function {name}: aggregates are not allowed (one row at a time)")
    kinds = _function_kinds().get(name)
    if kinds is None:
        return  # unknown: DuckDB's binder reports it when the mapping is used
    if not kinds & {"scalar", "macro"}:
        what = (
            "a table function"
            if kinds & {"table", "table_macro"}
            else ("an aggregate" if "aggregate" in kinds else "not a scalar function")
        )
        raise UnsafeExpression(f"function {name} is {what}: not allowed in a mapping expression")


@lru_cache(maxsize=1)
def _function_kinds() -> dict[str, frozenset[str]]:
    """DuckDB's functions by name, with their kinds (scalar, aggregate, table, macro...)."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT lower(function_name), list(DISTINCT function_type) FROM duckdb_functions() GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    return {name: frozenset(kinds) for name, kinds in rows}


@lru_cache(maxsize=256)
def _serialize_cached(sql: str) -> str:
    con = duckdb.connect()
    try:
        return str(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    finally:
        con.close()


def _serialize(sql: str) -> dict[str, Any]:
    return json.loads(_serialize_cached(sql))
