"""Reading the aggregate tables (and the raw requests) of a lake, scanning only the
partitions asked for.

Local paths are read by DuckDB's `read_parquet` over the partition folders that match (the
glob names the feature and the days, so other partitions are never listed, let alone
opened). S3 paths go through pyarrow's dataset with the same filters (objectstore.py).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from app.lake.partitions import LakeError
from app.storage.aggregates import TABLES


def days(since: datetime | date, until: datetime | date) -> list[str]:
    d0 = since.date() if isinstance(since, datetime) else since
    d1 = until.date() if isinstance(until, datetime) else until
    return [(d0 + timedelta(days=i)).isoformat() for i in range((d1 - d0).days + 1)]


def partition_files(root: str, feature: str | None, day_list: list[str] | None) -> list[str]:
    """The Parquet files of the partitions that match, on a local path."""
    base = Path(root)
    if not base.exists():
        raise LakeError(f"{root}: no such folder")
    dates = day_list or ["*"]
    feat = feature or "*"
    files: list[str] = []
    for d in dates:
        files += sorted(str(p) for p in base.glob(f"date={d}/feature={feat}/*.parquet"))
    return files


def relation(
    con: duckdb.DuckDBPyConnection,
    root: str,
    name: str,
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Create the temp view `name` over the partitions of `root` for the feature and days
    asked for. Returns how many files it reads (0: the view is empty but typed)."""
    day_list = days(since, until) if since is not None and until is not None else None
    if root.startswith("s3://"):
        return _s3_relation(con, root, name, feature, day_list)
    files = partition_files(root, feature, day_list)
    if not files:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT NULL::VARCHAR AS date, "
            "NULL::VARCHAR AS feature WHERE false"
        )
        return 0
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listed}], "
        "hive_partitioning = true, union_by_name = true, hive_types_autocast = false)"
    )
    return len(files)


def table(con: duckdb.DuckDBPyConnection, aggregates: str, table_name: str, **where) -> int:
    if table_name not in TABLES:
        raise LakeError(f"no aggregate table named {table_name!r}")
    return relation(con, f"{aggregates.rstrip('/')}/{table_name}", table_name, **where)


def _s3_relation(con, root: str, name: str, feature: str | None, day_list: list[str] | None) -> int:
    import pyarrow.dataset as ds

    from app.storage.objectstore import s3_filesystem

    fs = s3_filesystem()
    base = root.removeprefix("s3://").rstrip("/")
    dataset = ds.dataset(base, filesystem=fs, format="parquet", partitioning=ds.partitioning(flavor="hive"))
    expr = None
    if feature is not None:
        expr = ds.field("feature") == feature
    if day_list is not None:
        e = ds.field("date").cast("string").isin(day_list)
        expr = e if expr is None else expr & e
    fragments = list(dataset.get_fragments(filter=expr))
    pruned = ds.FileSystemDataset(fragments, dataset.schema, dataset.format, fs) if fragments else None
    if pruned is None:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT NULL::VARCHAR AS date, "
            "NULL::VARCHAR AS feature WHERE false"
        )
        return 0
    con.register(f"{name}_arrow", pruned)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * REPLACE (CAST(date AS VARCHAR) AS date) "
        f"FROM {name}_arrow"
    )
    return len(fragments)
