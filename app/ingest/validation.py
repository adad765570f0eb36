"""From source columns to canonical fields: which column or expression feeds each field,
its typed value, and the checks that send a row to the quarantine instead of the requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from app.config import setting
from app.ingest.mapping import Mapping, MappingError
from app.ingest.sources import SourceFile, ident, literal
from app.storage.schema import FIELD_BY_NAME, FIELD_NAMES, FIELDS

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
)

# Epoch numbers: seconds, milliseconds, microseconds or nanoseconds, told apart by size.
_MACROS = (
    """CREATE OR REPLACE TEMP MACRO rd_epoch(x) AS CASE
         WHEN NOT isfinite(x) THEN NULL
         WHEN abs(x) >= 1e17 THEN make_timestamp(CAST(x / 1000 AS BIGINT))
         WHEN abs(x) >= 1e14 THEN make_timestamp(CAST(x AS BIGINT))
         WHEN abs(x) >= 1e11 THEN make_timestamp(CAST(x * 1000 AS BIGINT))
         ELSE make_timestamp(CAST(x * 1000000 AS BIGINT)) END""",
    """CREATE OR REPLACE TEMP MACRO rd_parse_ts(s) AS CASE
         WHEN TRY_CAST(s AS DOUBLE) IS NOT NULL THEN rd_epoch(TRY_CAST(s AS DOUBLE))
         ELSE CAST(TRY_CAST(s AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) END""",
)


EXTRA_OBJECT = "__extra"


@dataclass(frozen=True)
class FieldPlan:
    """Canonical field -> plain source column or SQL expression, for one file."""

    columns: list[tuple[str, str]]  # source columns and their detected types
    sources: dict[str, str]  # canonical field -> source column name or SQL expression
    plain: set[str]  # fields taken straight from a same-named or mapped column
    extras: list[str]  # source columns kept in `extra`
    text_columns: set[str] = field(default_factory=set)  # read as text, checked here
    # Source column -> the type DuckDB's JSON reader reads it as: canonical numbers as
    # numbers, and timestamps the reader detected as times (a value that does not fit
    # makes that reader fail, and the file is then read line by line).
    json_types: dict[str, str] = field(default_factory=dict)
    mapping: Mapping | None = None

    def sql(self, name: str) -> str:
        value = self.sources[name]
        return ident(value) if name in self.plain else f"({value})"


@dataclass(frozen=True)
class TimeRange:
    """Request times a load accepts; a time outside is quarantined with the reason (a stray
    year 9999 would otherwise move every default time window far from the real data)."""

    not_before: datetime
    not_after: datetime

    @classmethod
    def default(cls, now: datetime | None = None) -> TimeRange:
        """From the settings `timestamp_not_before` and `timestamp_max_ahead_h`."""
        now = now or datetime.now(UTC).replace(tzinfo=None)
        earliest = datetime.fromisoformat(str(setting("timestamp_not_before")))
        ahead = timedelta(hours=float(setting("timestamp_max_ahead_h")))  # type: ignore[arg-type]
        return cls(earliest.replace(tzinfo=None), now + ahead)


def define_macros(con, time_range: TimeRange | None = None) -> None:
    for macro in _MACROS:
        con.execute(macro)
    time_range = time_range or TimeRange.default()
    for name, when in (("rd_ts_min", time_range.not_before), ("rd_ts_max", time_range.not_after)):
        con.execute(
            f"CREATE OR REPLACE TEMP MACRO {name}() AS "
            f"TIMESTAMP '{when.isoformat(sep=' ', timespec='seconds')}'"
        )


def plan_fields(columns: list[tuple[str, str]], mapping: Mapping | None, source: SourceFile) -> FieldPlan:
    names = {c for c, _ in columns}
    sources: dict[str, str] = {}
    plain: set[str] = set()
    for name in FIELD_NAMES:
        if mapping and name in mapping.fields:
            sources[name] = mapping.fields[name]
        elif name in names:
            sources[name] = name
        else:
            continue
        if sources[name] in names:
            plain.add(name)
    if mapping:
        _check_mapped_columns(mapping, sources, plain, names, source)
    missing = [f for f in ("timestamp", "feature") if f not in sources]
    if missing and columns:
        hint = f" in {mapping.label()}" if mapping else "; add a mapping file (--mapping)"
        raise MappingError(f"{source.path}: no column for required field {' and '.join(missing)}{hint}")
    used = {sources[n] for n in plain}
    extras = [c for c, _ in columns if c not in FIELD_NAMES and c not in used]
    # Canonical values from text files are read as text and typed here, so that a bad
    # value quarantines its row with a reason instead of failing the file.
    text = {sources[n] for n in plain} if source.format != "parquet" else set()
    json_types = {
        sources[n]: ("DOUBLE" if FIELD_BY_NAME[n].kind == "double" else "BIGINT")
        for n in plain
        if FIELD_BY_NAME[n].kind in ("double", "integer")
    }
    if "timestamp" in plain:
        detected = dict(columns)[sources["timestamp"]]
        if detected.startswith("TIMESTAMP") or detected == "DATE":
            json_types[sources["timestamp"]] = "TIMESTAMPTZ"  # naive times are taken as UTC
        elif detected in _NUMERIC:
            json_types[sources["timestamp"]] = "DOUBLE"  # epoch s, ms, us or ns
    return FieldPlan(
        columns=columns,
        sources=sources,
        plain=plain,
        extras=extras,
        text_columns=text,
        json_types=json_types,
        mapping=mapping,
    )


def _check_mapped_columns(
    mapping: Mapping, sources: dict[str, str], plain: set[str], names: set[str], source: SourceFile
) -> None:
    """A mapped expression may read only this file's columns; text that is not an
    expression must be one of its column names."""
    for name, expression in mapping.expressions.items():
        if name in plain or name not in sources:
            continue
        if not expression.parsed:
            raise MappingError(
                f"{mapping.label()}: field {name}: neither a column of "
                f"{source.path.name} nor a valid SQL expression"
            )
        unknown = sorted(expression.columns - names)
        if unknown:
            raise MappingError(
                f"{mapping.label()}: field {name}: no column "
                f"{', '.join(repr(c) for c in unknown)} in {source.path.name}"
            )


def checked_sql(con, plan: FieldPlan, source: SourceFile) -> str:
    """SQL over rd_src: `__row`, the typed canonical fields, `extra`, `__raw` and `__reason`
    (NULL for a good row; else every reason it cannot be stored, joined by '; ')."""
    raw_exprs = [f"{plan.sql(n)} AS {ident('r_' + n)}" for n in plan.sources]
    raw_types = _raw_types(con, plan, source, raw_exprs)
    typed: list[str] = []
    checks: list[tuple[str, str]] = []
    for f in FIELDS:
        if f.name not in plan.sources:
            typed.append(f"NULL::{f.sql_type} AS {f.name}")
            continue
        value, field_checks = _typed(f.name, f.kind, f.sql_type, ident("r_" + f.name), raw_types[f.name])
        typed.append(f"{value} AS {f.name}")
        checks.extend(field_checks)
    types = dict(plan.columns)
    # `__extra`: a JSON object of extra columns a telemetry reader built (app/ingest/otlp.py).
    extras = [e for e in plan.extras if e != EXTRA_OBJECT]
    extra = (
        "json_object("
        + ", ".join(f"{literal(e)}, {_extra_value(e, types[e], source.format)}" for e in extras)
        + ")"
        if extras
        else "NULL::JSON"
    )
    if EXTRA_OBJECT in plan.extras:
        extra = f"json_merge_patch({ident(EXTRA_OBJECT)}, {extra})" if extras else ident(EXTRA_OBJECT)
    level1 = f"SELECT __row, __bad, __raw, {extra} AS extra{''.join(', ' + e for e in raw_exprs)} FROM rd_src"
    level2 = f"SELECT *, {', '.join(typed)} FROM ({level1})"
    # The reasons are only spelled out for the rows that fail a check.
    failed = " OR ".join(f"({cond})" for cond, _ in checks)
    spelled = ", ".join(f"CASE WHEN {cond} THEN {msg} END" for cond, msg in checks)
    reason = (
        f"CASE WHEN __bad IS NOT NULL THEN __bad WHEN {failed} THEN concat_ws('; ', {spelled}) END"
        if checks
        else "__bad"
    )
    return f"SELECT __row, {', '.join(FIELD_NAMES)}, extra, __raw, {reason} AS __reason FROM ({level2})"


def _extra_value(name: str, typ: str, source_format: str) -> str:
    """An extra column's value in `extra`: JSONL and Parquet values as they are; CSV numbers
    as numbers where they fit the detected type, everything else as written (so `yes`
    stays `yes` although DuckDB would read the column as BOOLEAN)."""
    col = ident(name)
    if source_format != "csv" or typ == "VARCHAR":
        return col
    text = ident("__t_" + name)
    if typ in _NUMERIC or typ.startswith("DECIMAL"):
        return f"coalesce(to_json({col}), to_json({text}))"
    return text


def _raw_types(con, plan: FieldPlan, source: SourceFile, raw_exprs: list[str]) -> dict[str, str]:
    """The type of each field's source value; a field whose expression does not work gets
    an error naming the field and the mapping file."""
    if not raw_exprs:
        return {}
    try:
        rows = con.execute(f"DESCRIBE SELECT {', '.join(raw_exprs)} FROM rd_src").fetchall()
        return {r[0][2:]: r[1] for r in rows}
    except duckdb.Error:
        pass  # one of the expressions fails: find which, field by field, to name it
    out: dict[str, str] = {}
    for name in plan.sources:
        try:
            out[name] = con.execute(f"DESCRIBE SELECT {plan.sql(name)} FROM rd_src").fetchall()[0][1]
        except duckdb.Error as exc:
            mapped = plan.mapping is not None and name in plan.mapping.fields
            where = plan.mapping.label() if mapped and plan.mapping else str(source.path)
            detail = " ".join(str(exc).split())[:300]
            raise MappingError(
                f"{where}: field {name}: {plan.sources[name]!r} does not work on "
                f"{source.path.name} ({detail})"
            ) from exc
    return out


def _typed(name: str, kind: str, sql_type: str, raw: str, rtype: str) -> tuple[str, list[tuple[str, str]]]:
    """The typed value of one canonical field, and the checks that quarantine a row: each a
    condition and the reason it gives."""
    shown = f"concat('''', CAST({raw} AS VARCHAR), '''')"
    numeric = rtype in _NUMERIC or rtype.startswith("DECIMAL")
    if kind == "timestamp":
        if rtype.startswith("TIMESTAMP WITH TIME ZONE"):
            value = f"CAST({raw} AT TIME ZONE 'UTC' AS TIMESTAMP)"
        elif rtype.startswith("TIMESTAMP") or rtype == "DATE":
            value = f"CAST({raw} AS TIMESTAMP)"
        elif numeric:
            value = f"rd_epoch(CAST({raw} AS DOUBLE))"
        else:
            value = f"rd_parse_ts(CAST({raw} AS VARCHAR))"
        return value, [
            (f"{raw} IS NULL", "'missing timestamp'"),
            (f"{raw} IS NOT NULL AND {name} IS NULL", f"'timestamp ' || {shown} || ' is not a time'"),
            (
                f"{name} < rd_ts_min() OR {name} > rd_ts_max()",
                f"'timestamp ' || {shown} || ' outside the plausible range ' || "
                "strftime(rd_ts_min(), '%Y-%m-%d') || ' to ' || "
                "strftime(rd_ts_max(), '%Y-%m-%d %H:%M')",
            ),
        ]
    if kind == "text":
        text = raw if rtype == "VARCHAR" else f"CAST({raw} AS VARCHAR)"
        if name in ("feature", "error"):
            value = f"nullif(trim({text}), '')"
        else:
            value = f"nullif({text}, '')"
        checks = [(f"{name} IS NULL", "'missing feature'")] if name == "feature" else []
        return value, checks
    what = "a number" if kind == "double" else "an integer"
    sql_type = "BIGINT" if kind == "integer" else sql_type  # range checks follow
    if numeric:
        value = f"TRY_CAST({raw} AS {sql_type})"
        bad_type = f"{raw} IS NOT NULL AND {name} IS NULL"
    else:
        text = raw if rtype == "VARCHAR" else f"CAST({raw} AS VARCHAR)"
        value = f"TRY_CAST(nullif(trim({text}), '') AS {sql_type})"
        bad_type = f"{name} IS NULL AND nullif(trim({text}), '') IS NOT NULL"
    message = f"' is not {what}'"
    if kind == "double":
        # NaN and infinities (NaN, "Infinity", 1e400) are not measurements: the row goes to
        # the quarantine instead of poisoning sums and histograms.
        message = f"CASE WHEN {value} IS NULL THEN {message} ELSE ' is not a finite number' END"
        value = f"CASE WHEN isfinite({value}) THEN {value} END"
    checks = [(bad_type, f"'{name} ' || {shown} || {message}")]
    given = f"trim(CAST({raw} AS VARCHAR))"  # as written in the file
    if name == "quality_score":
        checks.append((f"NOT ({name} BETWEEN 0 AND 1)", f"'quality_score ' || {given} || ' outside [0, 1]'"))
    elif name == "feedback":
        checks.append((f"{name} NOT IN (-1, 0, 1)", f"'feedback ' || {given} || ' is not -1, 0 or 1'"))
    else:
        checks.append((f"{name} < 0", f"'negative {name} ' || {given}"))
    return value, checks
