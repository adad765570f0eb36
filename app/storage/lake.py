"""Lake mode: a data directory whose requests and aggregates live in a Parquet lake (a local
folder or S3) instead of its own DuckDB file.

`<data_dir>/lake.yaml` names the two places:

    requests: s3://bucket/requests      # hive layout date=YYYY-MM-DD/feature=NAME/*.parquet
    aggregates: s3://bucket/aggregates  # the tables of docs/aggregates.md, same layout

In lake mode the DuckDB file keeps only what is small and local (loaded files, declared and
inferred changes, meta); every connection sees `requests`, `rollup_5m` and `hist_1h` as
views over the lake, so every page and command runs unchanged. The two rollup views are the
aggregate tables `agg_versions_5m` and `hist_1h` under the names and columns the embedded
store uses (app/storage/rollups.py).
A query that names a feature reads only that feature's partitions; a time range skips the
row groups outside it by their statistics.

The hourly tables `agg_1h`, `agg_dim_1h` and `agg_user_1h` are views under their own names
(`create_aggregate_views`); the embedded store has no such tables, so a consumer reads them
only when the store is in lake mode (`store.lake is not None`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.configuration import ConfigFileError, load_yaml
from app.storage.schema import FIELDS

LAKE_FILE = "lake.yaml"


class LakeConfigError(ConfigFileError):
    """lake.yaml cannot be used; the message names the file, the key and what to do."""


@dataclass(frozen=True)
class LakeConfig:
    requests: str
    aggregates: str
    path: Path

    @property
    def on_s3(self) -> bool:
        return self.requests.startswith("s3://") or self.aggregates.startswith("s3://")


def load_lake(data_dir: Path) -> LakeConfig | None:
    """The data directory's lake, or None when it keeps its requests itself."""
    path = Path(data_dir) / LAKE_FILE
    if not path.exists():
        return None
    doc = load_yaml(path, "lake", error=LakeConfigError)
    raw = doc.data
    values = {}
    for key in ("requests", "aggregates"):
        value = raw[key].strip()
        if "@" in value.split("/")[2 if value.startswith("s3://") else 0]:
            raise LakeConfigError([doc.problem((key,), "holds credentials; set them in the environment")])
        if not value.startswith("s3://"):
            value = str((path.parent / value).resolve()) if not Path(value).is_absolute() else value
        values[key] = value.rstrip("/")
    return LakeConfig(values["requests"], values["aggregates"], path)


_TYPES = {f.name: f.sql_type for f in FIELDS}
_EMPTY_REQUESTS = ", ".join(f"NULL::{f.sql_type} AS {f.name}" for f in FIELDS)


def create_views(con, lake: LakeConfig) -> None:
    """(Re)create the lake's views on one connection. Temporary: each process and each
    connection makes its own, so nothing in the DuckDB file points at a path that moved."""
    canonical = ", ".join(f"CAST({f.name} AS {f.sql_type}) AS {f.name}" for f in FIELDS)
    src = _source(con, lake.requests, "lake_requests")
    if src:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW requests AS SELECT {canonical}, "
            f"NULL::JSON AS extra, 0 AS file_id FROM {src}"
        )
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW requests AS SELECT {_EMPTY_REQUESTS}, "
            "NULL::JSON AS extra, 0 AS file_id WHERE false"
        )
    versions = _source(con, f"{lake.aggregates}/agg_versions_5m", "lake_versions")
    if versions:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW rollup_5m AS SELECT 0 AS file_id, feature, bucket, model, "
            "response_model, prompt_version, requests, errors, quality_n, quality_sum, quality_sumsq, "
            "cost_n, cost_sum, ok_cost_n, ok_cost_sum, feedback_n, feedback_neg, first_ts, last_ts "
            f"FROM {versions}"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW rollup_5m AS SELECT 0 AS file_id, NULL::VARCHAR AS feature, "
            "NULL::TIMESTAMP AS bucket, NULL::VARCHAR AS model, NULL::VARCHAR AS response_model, "
            "NULL::VARCHAR AS prompt_version, 0::BIGINT AS requests, 0::BIGINT AS errors, "
            "0::BIGINT AS quality_n, 0.0 AS quality_sum, 0.0 AS quality_sumsq, 0::BIGINT AS cost_n, "
            "0.0 AS cost_sum, 0::BIGINT AS ok_cost_n, 0.0 AS ok_cost_sum, 0::BIGINT AS feedback_n, "
            "0::BIGINT AS feedback_neg, "
            "NULL::TIMESTAMP AS first_ts, NULL::TIMESTAMP AS last_ts WHERE false"
        )
    hist = _source(con, f"{lake.aggregates}/hist_1h", "lake_hist")
    if hist:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW hist_1h AS SELECT 0 AS file_id, feature, bucket, "
            f"metric, ok, bin, n FROM {hist}"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW hist_1h AS SELECT 0 AS file_id, "
            "NULL::VARCHAR AS feature, NULL::TIMESTAMP AS bucket, NULL::VARCHAR AS metric, "
            "true AS ok, 0 AS bin, 0::BIGINT AS n WHERE false"
        )
    create_aggregate_views(con, lake)


HOURLY_TABLES = ("agg_1h", "agg_dim_1h", "agg_user_1h", "hist_dim_1h")


def create_aggregate_views(con, lake: LakeConfig) -> None:
    """The lake's hourly aggregate tables as temp views under their own names. A table not
    built yet is an empty view with the same columns, so a consumer never needs to know."""
    from app.storage.aggregates import columns

    for table in HOURLY_TABLES:
        root = f"{lake.aggregates}/{table}"
        if root.startswith("s3://"):
            src = _source(con, root, f"lake_{table}")
        elif any(Path(root).glob("date=*/feature=*/*.parquet")):
            # One builder writes every file of a table with the same columns (a new
            # contract version rebuilds them all), so the schema is read from one file, not
            # merged over all of them: this is done on every connection.
            glob = f"{root}/date=*/feature=*/*.parquet".replace("'", "''")
            src = f"read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false)"
        else:
            src = None
        cols = [(n, t) for n, t in columns(table) if n != "date"]
        if src:
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT {', '.join(n for n, _ in cols)} FROM {src}"
            )
        else:
            empty = ", ".join(f"NULL::{t} AS {n}" for n, t in cols)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT {empty} WHERE false")


def _source(con, root: str, name: str) -> str | None:
    """A relation over the Parquet files under `root` (hive layout), or None if it has none."""
    if root.startswith("s3://"):
        import pyarrow.dataset as ds
        from pyarrow.fs import FileSelector

        from app.storage.objectstore import s3_filesystem

        fs = s3_filesystem()
        base = root.removeprefix("s3://")
        try:
            infos = fs.get_file_info(FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as exc:
            raise LakeConfigError(f"{root}: cannot be listed ({exc.__class__.__name__})") from exc
        if not any(i.path.endswith(".parquet") for i in infos):
            return None
        dataset = ds.dataset(
            base, filesystem=fs, format="parquet", partitioning=ds.partitioning(flavor="hive")
        )
        con.register(name, dataset)
        return f"(SELECT * REPLACE (CAST(date AS VARCHAR) AS date) FROM {name})"
    if not any(Path(root).glob("date=*/feature=*/*.parquet")):
        return None
    glob = f"{root}/date=*/feature=*/*.parquet".replace("'", "''")
    return (
        f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true, hive_types_autocast = false)"
    )
