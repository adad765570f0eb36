"""Langfuse's blob-storage export: one request per GENERATION observation.

Reads the enriched observations export (`observations_v2/`, trace fields on every row) and
the legacy `observations/` export (no trace fields: the feature is then the observation's
name), as JSONL, CSV or Parquet. Scores come from the scores export, named in the mapping
file (`langfuse.scores_file`). Field map and choices: docs/formats.md.

Latency: Langfuse writes `latency` in seconds for integrations made since 2026-04-01 and
in milliseconds before. The unit is taken from the mapping (`langfuse.latency_unit`,
default seconds); where start and end times are present too, they tell the unit, and a
mapping that disagrees gets a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from app.ingest.mapping import Mapping
from app.ingest.otlp import CONVERTED_TABLE, Converted, converted_layout, number_past_blank_lines
from app.ingest.scores import apply_scores, load_scores
from app.ingest.sources import (
    JSON_READER_MAX_OBJECT,
    MAX_LINE_BYTES,
    SourceFile,
    ident,
    lines_sql,
    literal,
)

GENERATION = "GENERATION"
# The columns read, as text; JSON objects (usage, cost, tags) as JSON.
COLUMNS = {
    "id": "VARCHAR",
    "trace_id": "VARCHAR",
    "type": "VARCHAR",
    "name": "VARCHAR",
    "start_time": "VARCHAR",
    "end_time": "VARCHAR",
    "trace_name": "VARCHAR",
    "provided_model_name": "VARCHAR",
    "usage_details": "JSON",
    "cost_details": "JSON",
    "total_cost": "VARCHAR",
    "prompt_name": "VARCHAR",
    "prompt_version": "VARCHAR",
    "level": "VARCHAR",
    "status_message": "VARCHAR",
    "user_id": "VARCHAR",
    "session_id": "VARCHAR",
    "release": "VARCHAR",
    "version": "VARCHAR",
    "environment": "VARCHAR",
    "latency": "VARCHAR",
    "time_to_first_token": "VARCHAR",
    "tags": "JSON",
}
# Copied to `extra` as they are.
EXTRAS = ("trace_id", "name", "environment", "session_id", "release", "version", "level")
_RAW = ("id", "trace_id", "type", "start_time", "end_time", "provided_model_name", "latency")
# A median latency beyond this, read in seconds, is more likely milliseconds (and the other
# way round below the second bound, read in milliseconds).
IMPLAUSIBLE_SECONDS = 1000.0
IMPLAUSIBLE_MS = 1.0


def _read_view(con, source: SourceFile, readable: Path) -> bool:
    """rd_lf_read: `__row, __bad, <COLUMNS>` of the file, all as text (JSON objects as JSON).
    Returns whether rows are numbered by line with blank lines counted."""
    path = literal(str(readable))
    if source.format == "jsonl":
        cols = ", ".join(f"{literal(c)}: {literal(t)}" for c, t in COLUMNS.items())
        read = (
            f"SELECT row_number() OVER () AS __row, NULL::VARCHAR AS __bad, * FROM "
            f"read_json({path}, format = 'newline_delimited', columns = {{{cols}}}, "
            f"maximum_object_size = {JSON_READER_MAX_OBJECT})"
        )
        if not source.gzipped:
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE rd_lf_read AS {read}")
                return False
            except duckdb.Error:
                pass
        shape = literal(json.dumps(dict(COLUMNS)))
        select = ", ".join(f"__doc.{ident(c)} AS {ident(c)}" for c in COLUMNS)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE rd_lf_read AS
            SELECT __row, CASE WHEN __doc IS NULL AND json_valid(line) THEN 'not a JSON object'
                               WHEN __doc IS NULL THEN 'broken JSON' END AS __bad, {select}
            FROM (SELECT __row, line, TRY(json_transform(line, {shape})) AS __doc
                  FROM (SELECT row_number() OVER () AS __row, line FROM {lines_sql(readable)})
                  WHERE line IS NOT NULL AND trim(line, ' \t\r') <> '')""")
        return True
    if source.format == "csv":
        rel = f"read_csv({path}, header = true, all_varchar = true, max_line_size = {MAX_LINE_BYTES})"
        numbered = f"SELECT row_number() OVER () AS __row, * FROM {rel}"
    else:
        numbered = f"SELECT file_row_number + 1 AS __row, * FROM read_parquet({path}, file_row_number = true)"
    present = dict((r[0], r[1]) for r in con.execute(f"DESCRIBE {numbered}").fetchall())
    select = []
    for col, typ in COLUMNS.items():
        if col not in present:
            select.append(f"NULL::{typ} AS {ident(col)}")
        elif typ == "JSON":  # text in CSV; a map, struct or list in Parquet
            select.append(
                f"TRY(CAST({ident(col)} AS JSON)) AS {ident(col)}"
                if present[col] == "VARCHAR"
                else f"to_json({ident(col)}) AS {ident(col)}"
            )
        else:
            select.append(f"CAST({ident(col)} AS VARCHAR) AS {ident(col)}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE rd_lf_read AS
                    SELECT __row, NULL::VARCHAR AS __bad, {", ".join(select)} FROM ({numbered})""")
    return True


def _usage(key: str) -> str:
    names = {
        "input": ("input", "prompt_tokens", "input_tokens"),
        "output": ("output", "completion_tokens", "output_tokens"),
    }[key]
    return "coalesce(" + ", ".join(f"usage_details->>{literal(n)}" for n in names) + ")"


def convert(
    con, source: SourceFile, readable: Path, mapping: Mapping | None, numbered: bool = True
) -> Converted:
    """Read a Langfuse observations export into CONVERTED_TABLE: one row per generation
    and one per unreadable line, numbered by line or row (exports are small: always
    numbered, whatever `numbered` says)."""
    section = mapping.langfuse if mapping else {}
    by_line = _read_view(con, source, readable)
    unit = section.get("latency_unit", "s")
    factor = 1000.0 if unit == "s" else 1.0
    ts = "CAST(TRY_CAST({c} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)"
    start, end = ts.format(c="start_time"), ts.format(c="end_time")
    span_ms = f"(epoch_us({end}) - epoch_us({start})) / 1e3"
    prompt = (
        "CASE WHEN nullif(prompt_name, '') IS NOT NULL AND nullif(prompt_version, '') "
        "IS NOT NULL THEN prompt_name || ':' || prompt_version "
        "ELSE coalesce(nullif(prompt_name, ''), nullif(prompt_version, '')) END"
    )
    extra_pairs = ", ".join(f"{literal(e)}, nullif({ident(e)}, '')" for e in EXTRAS)
    ttft = f"TRY_CAST(time_to_first_token AS DOUBLE) * {factor}"
    raw = ", ".join(f"{literal(c)}, {ident(c)}" for c in _RAW)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {CONVERTED_TABLE} AS
        SELECT __row, __bad, CAST(json_object({raw}) AS VARCHAR) AS __raw,
               nullif(trace_id, '') AS __trace,
               TRY_CAST(latency AS DOUBLE) AS __latency, {span_ms} AS __span_ms,
               nullif(start_time, '') AS timestamp,
               coalesce(nullif(trace_name, ''), nullif(name, '')) AS feature,
               nullif(id, '') AS request_id,
               nullif(provided_model_name, '') AS model,
               NULL::VARCHAR AS response_model,
               {prompt} AS prompt_version,
               NULL::VARCHAR AS variant,
               nullif(user_id, '') AS user_id,
               NULL::VARCHAR AS segment, NULL::VARCHAR AS region,
               coalesce(CAST(TRY_CAST(latency AS DOUBLE) * {factor} AS VARCHAR),
                        CAST({span_ms} AS VARCHAR), nullif(latency, '')) AS latency_ms,
               {_usage("input")} AS input_tokens,
               {_usage("output")} AS output_tokens,
               coalesce(nullif(total_cost, ''), cost_details->>'total') AS cost_usd,
               CASE WHEN upper(level) = 'ERROR' THEN coalesce(nullif(status_message, ''), 'ERROR')
                    END AS error,
               NULL::VARCHAR AS quality_score, NULL::VARCHAR AS feedback,
               json_merge_patch(json_object({extra_pairs}),
                                json_object('time_to_first_token_ms', {ttft},
                                            'tags', tags)) AS __extra
        FROM rd_lf_read
        WHERE __bad IS NOT NULL OR upper(type) = '{GENERATION}'""")
    other = con.execute(
        f"SELECT count(*) FROM rd_lf_read WHERE __bad IS NULL AND coalesce(upper(type), '') <> '{GENERATION}'"
    ).fetchone()[0]
    warnings = _latency_warnings(con, source, unit, explicit="latency_unit" in section)
    scores = mapping.scores_file("langfuse") if mapping else None
    if scores is not None:
        load_scores(con, scores)
        apply_scores(con, CONVERTED_TABLE, section.get("quality_score"), section.get("feedback"))
    if not by_line:
        number_past_blank_lines(con, readable)
    return Converted(layout=converted_layout(con), other_spans=int(other), warnings=warnings)


def _latency_warnings(con, source: SourceFile, unit: str, explicit: bool) -> list[str]:
    """A warning when the latency unit in use does not fit the data: the start and end
    times, where present, else the size of the values."""
    ratio, median, n = con.execute(
        f"""SELECT median(__latency * {1000.0 if unit == "s" else 1.0} / nullif(__span_ms, 0)),
                   median(__latency), count(__latency)
            FROM {CONVERTED_TABLE} WHERE __latency IS NOT NULL"""
    ).fetchone()
    if not n:
        return []
    said = f"langfuse.latency_unit: {unit}" if explicit else f"the default unit, {unit}"
    other = "ms" if unit == "s" else "s"
    if ratio is not None:
        wrong = ratio > 100 if unit == "s" else ratio < 0.01
    else:
        wrong = median > IMPLAUSIBLE_SECONDS if unit == "s" else median < IMPLAUSIBLE_MS
    if not wrong:
        return []
    why = (
        "the start and end times say it is in"
        if ratio is not None
        else f"a median latency of {median:g} {unit} looks like"
    )
    return [
        f"{source.path}: latency read in {said}, but {why} {other}; "
        f"set langfuse.latency_unit: {other} in the mapping file if so"
    ]
