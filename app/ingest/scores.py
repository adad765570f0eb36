"""A scores file joined to telemetry rows: numeric scores by name become quality_score and
feedback.

The file is Langfuse's scores export (JSONL, CSV or Parquet: `trace_id`, `observation_id`,
`name`, `value`, `data_type`), or any file with those columns; `request_id` may stand for
`observation_id`. A score on an observation (request) goes to that request; a score on a
trace (no observation) goes to every request of the trace. Several scores of one name on
one request are averaged.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from app.ingest.sources import literal

SCORES_TABLE = "rd_scores"


class ScoresFileError(ValueError):
    """A scores file that cannot be joined; the message names it and says why."""


def _reader(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    p = literal(str(path))
    if name.endswith((".parquet", ".pq")):
        return f"read_parquet({p})"
    if name.endswith((".csv", ".tsv", ".txt")):
        return f"read_csv({p}, header = true, all_varchar = true)"
    return f"read_json({p}, format = 'newline_delimited')"


def load_scores(con, path: Path) -> None:
    """Read the scores file into SCORES_TABLE: (request_id, trace_id, name, value)."""
    if not path.exists():
        raise ScoresFileError(f"{path}: scores file not found")
    try:
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_reader(path)}").fetchall()}
    except duckdb.Error as exc:
        raise ScoresFileError(f"{path}: cannot read scores file ({str(exc).splitlines()[0]})") from exc
    missing = {"name", "value"} - cols
    if missing or not cols & {"trace_id", "observation_id", "request_id"}:
        raise ScoresFileError(
            f"{path}: a scores file needs name, value and trace_id, observation_id or "
            f"request_id columns; it has {', '.join(sorted(cols))}"
        )
    request = " , ".join(c for c in ("observation_id", "request_id") if c in cols)
    request = f"coalesce({request})" if "," in request else (request or "NULL")
    trace = "trace_id" if "trace_id" in cols else "NULL"
    data_type = "upper(CAST(data_type AS VARCHAR))" if "data_type" in cols else "'NUMERIC'"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {SCORES_TABLE} AS
        SELECT nullif(CAST({request} AS VARCHAR), '') AS request_id,
               nullif(CAST({trace} AS VARCHAR), '') AS trace_id,
               CAST(name AS VARCHAR) AS name, {data_type} AS data_type,
               TRY_CAST(value AS DOUBLE) AS value
        FROM {_reader(path)}
        WHERE TRY_CAST(value AS DOUBLE) IS NOT NULL""")


def apply_scores(con, table: str, quality: str | None, feedback: str | None) -> None:
    """Set quality_score and feedback of `table` (columns request_id, __trace) from the
    scores loaded by load_scores. Feedback: a BOOLEAN score 1 is 1 and 0 is -1; a numeric
    one counts by its sign."""
    for column, name in (("quality_score", quality), ("feedback", feedback)):
        if not name:
            continue
        value = "avg(value)"
        if column == "feedback":
            value = "sign(avg(CASE WHEN data_type = 'BOOLEAN' THEN 2 * value - 1 ELSE value END))::INTEGER"
        for key, col in (("trace_id", "__trace"), ("request_id", "request_id")):
            # Observation scores are applied last: they win over a trace's.
            only = "request_id IS NULL" if key == "trace_id" else "request_id IS NOT NULL"
            con.execute(
                f"""UPDATE {table} SET {column} = CAST(s.v AS VARCHAR)
                            FROM (SELECT {key} AS k, {value} AS v FROM {SCORES_TABLE}
                                  WHERE name = ? AND {only} AND {key} IS NOT NULL
                                  GROUP BY {key}) s
                            WHERE {table}.{col} = s.k""",
                [name],
            )
