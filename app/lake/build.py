"""Building the aggregate tables of a request lake, incrementally, with DuckDB or Spark.

    partitions (source) --fingerprints--> plan --engine--> staging --swap--> output + manifest

The engine writes every table of the partitions to (re)build under `<output>/.staging/`,
partitioned by date and feature; each partition's folders then replace the old ones, and the
manifest is written last. A run stopped half-way leaves the old manifest, so the next run
redoes what it had not recorded: no partition is ever counted twice or lost.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from app.lake import partitions as lp
from app.storage.aggregates import DUCKDB, NUMERIC_TYPES, TABLES, VERSION, table_sql

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class BuildResult:
    engine: str
    built: int
    removed: int
    unchanged: int
    seconds: float

    def as_dict(self) -> dict:
        return {
            "engine": self.engine,
            "partitions_built": self.built,
            "partitions_removed": self.removed,
            "partitions_unchanged": self.unchanged,
            "seconds": round(self.seconds, 3),
        }


def build(
    source: str, output: str, engine: str = "duckdb", full: bool = False, spark_master: str = "local[2]"
) -> BuildResult:
    """Bring the aggregates at `output` up to date with the requests at `source`."""
    if engine not in ENGINES:
        raise lp.LakeError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if output.startswith("s3://"):
        raise lp.LakeError(
            f"{output}: aggregates are built on a local or mounted path; copy them "
            "to object storage afterwards (docs/scaling.md)"
        )
    started = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    parts = lp.list_partitions(source)
    manifest = lp.read_manifest(output)
    todo = lp.plan(parts, manifest, full=full)
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    if todo.build:
        if engine == "duckdb":
            build_duckdb(source, todo.build, staging)
        else:
            from app.lake.spark_job import build_spark

            build_spark(source, [p.key for p in todo.build], str(staging), master=spark_master)
    for p in todo.build:
        _swap(out, staging, p.key)
    for key in todo.remove:
        for table in TABLES:
            shutil.rmtree(out / table / key, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    known = {} if manifest.get("version") != VERSION or full else dict(manifest.get("partitions", {}))
    for key in todo.remove:
        known.pop(key, None)
    known.update({p.key: p.fingerprint for p in todo.build})
    lp.write_manifest(output, {"version": VERSION, "engine": engine, "partitions": known})
    return BuildResult(
        engine, len(todo.build), len(todo.remove), todo.unchanged, time.perf_counter() - started
    )


def _swap(out: Path, staging: Path, key: str) -> None:
    for table in TABLES:
        new, old = staging / table / key, out / table / key
        shutil.rmtree(old, ignore_errors=True)
        if new.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            new.rename(old)


def build_duckdb(
    source: str,
    todo: list[lp.Partition],
    staging: Path,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    if source.startswith("s3://"):
        _register_s3(con, source, todo)
    else:
        files = [f for p in todo for f in p.files]
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(
            f"CREATE TEMP VIEW raw AS SELECT * FROM read_parquet([{listed}], "
            "hive_partitioning = true, union_by_name = true, hive_types_autocast = false)"
        )
    casts = "".join(f", CAST({c} AS {t}) AS {c}" for c, t in NUMERIC_TYPES.items())
    con.execute(
        "CREATE TEMP VIEW src AS SELECT * REPLACE (CAST(timestamp AS TIMESTAMP) AS timestamp, "
        f"CAST(date AS VARCHAR) AS date{casts}) FROM raw"
    )
    for table in TABLES:
        target = staging / table
        target.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY ({table_sql(table, DUCKDB)}) TO '{target}' "
            "(FORMAT parquet, PARTITION_BY (date, feature), OVERWRITE_OR_IGNORE)"
        )
    con.close()


def _register_s3(con, source: str, todo: list[lp.Partition]) -> None:
    import pyarrow.dataset as ds

    from app.storage.objectstore import s3_filesystem

    files = [f for p in todo for f in p.files]
    base = source.removeprefix("s3://").rstrip("/")
    dataset = ds.dataset(
        files,
        filesystem=s3_filesystem(),
        format="parquet",
        partitioning=ds.partitioning(flavor="hive"),
        partition_base_dir=base,
    )
    con.register("raw", dataset)
