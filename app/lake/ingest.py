"""Ingest in lake mode: files are checked exactly as in the embedded store, then written to the
lake as Parquet partitions (`date=/feature=`), and the aggregates of the partitions they
touched are rebuilt.

The checks run in a scratch store under the data directory (validation, quarantine, repeated
ids within the load), which is dropped afterwards; the lake receives one new file per
partition and load, named after the load, so nothing already in the lake is rewritten. A
file already loaded (same path, size and modification time) is skipped.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from app.changes.inferred import refresh_inferred
from app.ingest.mapping import Mapping
from app.ingest.pipeline import FileResult, IngestResult, Progress, ingest_paths
from app.ingest.sources import expand
from app.lake.build import BuildResult, build
from app.storage.lake import LakeConfig
from app.storage.schema import FIELD_NAMES
from app.storage.store import Store


def ingest_to_lake(
    store: Store, paths: list[str], mapping: Mapping | None = None, progress: Progress | None = None
) -> tuple[IngestResult, BuildResult | None]:
    lake: LakeConfig = store.lake
    if lake is None:
        raise ValueError(f"{store.data_dir}: not in lake mode (no lake.yaml)")
    if lake.requests.startswith("s3://"):
        raise ValueError(
            f"{lake.path}: ingest writes to a local or mounted lake; {lake.requests} "
            "is filled by the pipeline that writes it (docs/scaling.md)"
        )
    files, missing = expand(paths)
    # mtime to the millisecond: the stored DOUBLE and a fresh stat() may differ in the last digit
    known = {(r[0], r[1], round(r[2] or 0, 3)) for r in store.rows("SELECT path, size, mtime FROM files")}
    fresh = []
    skipped = IngestResult()
    for f in files:
        st = f.stat()
        if (str(f.resolve()), st.st_size, round(st.st_mtime, 3)) in known:
            skipped.files.append(FileResult(path=str(f), skipped=True))
        else:
            fresh.append(str(f))
    scratch_dir = store.data_dir / f".lake-load-{uuid.uuid4().hex[:8]}"
    try:
        scratch = Store(scratch_dir)
        result = ingest_paths(scratch, fresh + list(missing), mapping=mapping, progress=progress)
        result.files = skipped.files + result.files
        load = uuid.uuid4().hex[:12]
        columns = ", ".join(FIELD_NAMES)
        target = lake.requests.replace("'", "''")
        with scratch.connect() as con:
            n = con.execute("SELECT count(*) FROM requests").fetchone()[0]
            if n:
                Path(lake.requests).mkdir(parents=True, exist_ok=True)
                con.execute(
                    f"COPY (SELECT {columns}, CAST(CAST(timestamp AS DATE) AS VARCHAR) AS date "
                    "FROM requests) "
                    f"TO '{target}' (FORMAT parquet, PARTITION_BY (date, feature), APPEND, "
                    f"FILENAME_PATTERN 'load-{load}-{{uuid}}')"
                )
            loaded = con.execute(
                "SELECT path, format, size, mtime, fingerprint, loaded, quarantined, duplicates FROM files"
            ).fetchall()
            quarantined = con.execute(
                "SELECT path, source_row, reason, raw, quarantined_at FROM quarantine"
            ).fetchall()
        with store.connect() as con:
            start = con.execute("SELECT coalesce(max(file_id), 0) FROM files").fetchone()[0]
            for i, row in enumerate(loaded, start=1):
                con.execute("DELETE FROM files WHERE path = ?", [row[0]])
                con.execute(
                    "INSERT INTO files (file_id, path, format, size, mtime, fingerprint, loaded, "
                    "quarantined, duplicates, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "now()::TIMESTAMP)",
                    [start + i, *row],
                )
            for row in quarantined:
                con.execute(
                    "INSERT INTO quarantine (file_id, path, source_row, reason, raw, "
                    "quarantined_at) VALUES (0, ?, ?, ?, ?, ?)",
                    list(row),
                )
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    built = build(lake.requests, lake.aggregates, "duckdb") if n else None
    if n:
        refresh_inferred(store, store.features())
    return result, built
