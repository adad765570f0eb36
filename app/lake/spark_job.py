"""The aggregate tables built by Spark: the same SQL as DuckDB's (app/storage/aggregates.py), run
by Spark SQL over a hive-partitioned Parquet lake.

On this machine it runs in `local[*]` mode inside `rollback-desk aggregate --engine spark`. On
a cluster the same file is the job, submitted with the contract beside it:

    zip -r lake_job.zip app/__init__.py app/storage/__init__.py app/storage/aggregates.py \
        app/lake/__init__.py app/lake/spark_job.py
    spark-submit --master yarn --py-files lake_job.zip app/lake/spark_job.py \\
        --source s3a://bucket/requests --output s3a://bucket/aggregates/.staging \\
        --partitions partitions.txt

(docs/scaling.md has the S3 settings.) Only `pyspark` and the contract are imported.
"""

from __future__ import annotations

import argparse
import sys

from app.storage.aggregates import NUMERIC_TYPES, SPARK, TABLES, table_sql


def session(master: str = "local[2]", app_name: str = "rollback-desk-aggregates", driver_memory: str = "2g"):
    """A Spark session for the build. In local mode the driver is the executor, so
    `driver_memory` is all the memory the job has (set before the JVM starts)."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )


def build_spark(
    source: str, partition_keys: list[str], staging: str, master: str = "local[2]", spark=None
) -> None:
    """Write every aggregate table of the given partitions under `staging/<table>/`."""
    own = spark is None
    spark = spark or session(master)
    try:
        from pyspark.sql import functions as F

        base = source.rstrip("/")
        paths = [f"{base}/{key}" for key in partition_keys]
        raw = spark.read.option("basePath", base).parquet(*paths)
        src = raw.withColumn("timestamp", F.col("timestamp").cast("timestamp_ntz")).withColumn(
            "date", F.col("date").cast("string")
        )
        for column, sql_type in NUMERIC_TYPES.items():
            src = src.withColumn(column, F.col(column).cast(sql_type.lower()))
        src.createOrReplaceTempView("src")
        for table in TABLES:
            (
                spark.sql(table_sql(table, SPARK))
                .write.mode("overwrite")
                .partitionBy("date", "feature")
                .parquet(f"{staging.rstrip('/')}/{table}")
            )
    finally:
        if own:
            spark.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build Rollback Desk's aggregate tables with Spark.")
    parser.add_argument("--source", required=True, help="the hive-partitioned request lake")
    parser.add_argument("--output", required=True, help="where to write the tables (a staging folder)")
    parser.add_argument(
        "--partitions",
        required=True,
        help="a file listing the partitions to build, one date=.../feature=... a line",
    )
    args = parser.parse_args(argv)
    with open(args.partitions) as fh:
        keys = [line.strip() for line in fh if line.strip()]
    from pyspark.sql import SparkSession

    build_spark(args.source, keys, args.output, spark=SparkSession.builder.getOrCreate())
    return 0


if __name__ == "__main__":
    sys.exit(main())
