"""Filters over stored requests: parsed from text (CLI, URL), turned into SQL with parameters.

The text form is the same everywhere: conditions joined by commas, each one of

    field=value          equals
    field=a|b|c          in (any of the values)
    field!=value         not equal (requests without a value count as not equal)
    field!=a|b           none of the values
    field>=v  field>v    range (numbers, or ISO times for `timestamp`)
    field<=v  field<v
    field=(missing)      the request has no value

A field is a canonical request field or an extra column. Values never reach SQL as text:
they are parameters; a field name is checked against the canonical fields and the extra
columns the caller knows of, then quoted (canonical) or passed as a JSON Pointer parameter
(extra).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.changes.declared import parse_time
from app.storage.schema import FIELD_BY_NAME

MISSING = "(missing)"
OPS = {
    "eq": "=",
    "in": "=",
    "ne": "!=",
    "nin": "!=",
    "ge": ">=",
    "gt": ">",
    "le": "<=",
    "lt": "<",
    "missing": "=",
}
_CONDITION = re.compile(r"^\s*([^=<>!]+?)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")
_NUMERIC = {"double", "integer"}


class FilterError(ValueError):
    """A filter that cannot be used; the message names the condition and the reason."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # eq | in | ne | nin | ge | gt | le | lt | missing
    values: tuple[str, ...] = ()

    def text(self) -> str:
        if self.op == "missing":
            return f"{self.field}={MISSING}"
        joined = "|".join(self.values)
        return f"{self.field}{OPS[self.op]}{joined}"


@dataclass(frozen=True)
class Filter:
    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str | None) -> Filter:
        """`field=value[,field=value...]`; an empty text is the filter that keeps everything."""
        conditions = []
        for part in (text or "").split(","):
            if part.strip():
                conditions.append(parse_condition(part))
        return cls(tuple(conditions))

    def text(self) -> str:
        return ",".join(c.text() for c in self.conditions)

    def fields(self) -> set[str]:
        return {c.field for c in self.conditions}

    def with_condition(self, condition: Condition) -> Filter:
        """This filter with `condition` replacing any other on the same field and operator."""
        kept = [
            c for c in self.conditions if not (c.field == condition.field and _same_side(c.op, condition.op))
        ]
        return Filter((*kept, condition))

    def without(self, field_name: str) -> Filter:
        return Filter(tuple(c for c in self.conditions if c.field != field_name))

    def __bool__(self) -> bool:
        return bool(self.conditions)


def _same_side(a: str, b: str) -> bool:
    """Two conditions on one field that a new one replaces: the same bound of a range, or
    both about which values (equals, in, not, missing)."""
    lower, upper = {"ge", "gt"}, {"le", "lt"}
    return (
        (a in lower and b in lower)
        or (a in upper and b in upper)
        or (a not in lower | upper and b not in lower | upper)
    )


def parse_condition(text: str) -> Condition:
    m = _CONDITION.match(text)
    if not m or not m.group(1).strip():
        raise FilterError(
            f"filter {text.strip()!r}: expected field=value, field>=value, "
            f"field<value, field=a|b or field={MISSING}"
        )
    name, sign, value = m.group(1).strip(), m.group(2), m.group(3)
    if sign == "=":
        if value == MISSING:
            return Condition(name, "missing")
        values = tuple(value.split("|"))
        return Condition(name, "eq" if len(values) == 1 else "in", values)
    if sign == "!=":
        values = tuple(value.split("|"))
        return Condition(name, "ne" if len(values) == 1 else "nin", values)
    if not value:
        raise FilterError(f"filter {text.strip()!r}: {sign} needs a value")
    op = {">=": "ge", ">": "gt", "<=": "le", "<": "lt"}[sign]
    return Condition(name, op, (value,))


@dataclass(frozen=True)
class Scope:
    """The requests of one feature in [since, until), narrowed by a filter."""

    feature: str
    since: datetime | None = None
    until: datetime | None = None
    filter: Filter = field(default_factory=Filter)


def json_pointer(name: str) -> str:
    """A JSON Pointer names any key as it is; only ~ and / are escaped."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def column_sql(name: str, extras: Iterable[str], params: list[Any]) -> tuple[str, str]:
    """(SQL expression, kind) of a field: a quoted canonical column, or an extra column read
    from the JSON through a parameter. Unknown names raise FilterError."""
    if name in FIELD_BY_NAME:
        return f'"{name}"', FIELD_BY_NAME[name].kind
    if name in set(extras):
        params.append(json_pointer(name))
        return "json_extract_string(extra, ?)", "extra"
    raise FilterError(f"filter field {name!r}: not a request field or a known extra column")


def dimension_sql(name: str, extras: Iterable[str]) -> str:
    """A grouping expression for a field: a quoted canonical column, or an extra column whose
    JSON Pointer is written as a SQL string literal (GROUP BY needs the same text in the
    select list, so no parameter). The name is checked first, so only a known column's name,
    with its quotes doubled, ever reaches the SQL."""
    if name in FIELD_BY_NAME:
        return f'"{name}"'
    if name in set(extras):
        pointer = json_pointer(name).replace("'", "''")
        return f"json_extract_string(extra, '{pointer}')"
    raise FilterError(f"dimension {name!r}: not a request field or a known extra column")


def _typed(value: str, kind: str, cond: Condition) -> Any:
    try:
        if kind == "double":
            return float(value)
        if kind == "integer":
            return int(float(value))
        if kind == "timestamp":
            t = parse_time(value)
            if t is None:
                raise ValueError
            return t
    except ValueError:
        expected = {
            "double": "a number",
            "integer": "a whole number",
            "timestamp": "a time (ISO 8601 or epoch seconds)",
        }[kind]
        raise FilterError(f"filter {cond.text()!r}: {value!r} is not {expected}") from None
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def condition_sql(cond: Condition, extras: Iterable[str], params: list[Any]) -> str:
    col, kind = column_sql(cond.field, extras, params)
    if cond.op == "missing":
        return f"{col} IS NULL"
    if kind == "extra" and cond.op in ("ge", "gt", "le", "lt") and _is_number(cond.values[0]):
        params.append(float(cond.values[0]))
        return f"TRY_CAST({col} AS DOUBLE) {OPS[cond.op]} ?"
    typed = [_typed(v, kind, cond) if kind != "extra" else v for v in cond.values]
    if cond.op == "in":
        params.append(typed)
        return f"list_contains(?, {col})"
    if cond.op == "nin":
        params.append(typed)
        return f"NOT coalesce(list_contains(?, {col}), false)"
    if cond.op == "ne":
        params.append(typed[0])
        return f"{col} IS DISTINCT FROM ?"
    params.append(typed[0])
    return f"{col} {OPS[cond.op]} ?"


def where_sql(scope: Scope, extras: Iterable[str] = ()) -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword) and its parameters for a scope."""
    extras = tuple(extras)
    params: list[Any] = [scope.feature]
    parts = ["feature = ?"]
    if scope.since is not None:
        parts.append("timestamp >= ?")
        params.append(scope.since)
    if scope.until is not None:
        parts.append("timestamp < ?")
        params.append(scope.until)
    for cond in scope.filter.conditions:
        parts.append(condition_sql(cond, extras, params))
    return " AND ".join(parts), params
