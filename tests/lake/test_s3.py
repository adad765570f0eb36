"""The lake on S3: a real S3-compatible server (moto in server mode) on loopback, read by
pyarrow's S3 filesystem and scanned by DuckDB, with credentials from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from app.lake.build import build
from app.lake.parity import compare
from app.lake.partitions import list_partitions
from app.lake.tables import relation
from app.storage.objectstore import s3_filesystem

pytestmark = pytest.mark.integration


def upload(local: Path, bucket: str, prefix: str) -> None:
    import boto3
    from pyarrow.fs import LocalFileSystem, copy_files

    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket=bucket)
    fs = s3_filesystem()
    copy_files(
        str(local), f"{bucket}/{prefix}", source_filesystem=LocalFileSystem(), destination_filesystem=fs
    )


def test_aggregates_built_from_s3_equal_those_built_locally(lake: Path, tmp_path: Path, s3_env):
    upload(lake, "lake-a", "requests")
    parts = list_partitions("s3://lake-a/requests")
    assert len(parts) == 9 and all(p.files for p in parts)
    build("s3://lake-a/requests", str(tmp_path / "from-s3"))
    build(str(lake), str(tmp_path / "local"))
    assert all(d.equal for d in compare(str(tmp_path / "from-s3"), str(tmp_path / "local")))


def test_only_the_partitions_asked_for_are_read(lake: Path, tmp_path: Path, s3_env):
    from datetime import datetime

    upload(lake, "lake-b", "requests")
    con = duckdb.connect()
    n_files = relation(
        con,
        "s3://lake-b/requests",
        "r",
        feature="chat",
        since=datetime(2026, 3, 2),
        until=datetime(2026, 3, 2, 23),
    )
    assert n_files == 1  # one feature, one day: one partition's single file
    got = con.execute(
        "SELECT count(*), min(timestamp)::DATE, max(timestamp)::DATE, count(DISTINCT feature) FROM r"
    ).fetchone()
    want = duckdb.sql(f"""SELECT count(*) FROM '{lake.parent / "all.parquet"}'
                          WHERE feature = 'chat' AND timestamp::DATE = DATE '2026-03-02'""").fetchall()[0][0]
    assert got[0] == want and str(got[1]) == str(got[2]) == "2026-03-02" and got[3] == 1


def test_a_data_directory_on_s3_answers_analyze(lake: Path, tmp_path: Path, s3_env):
    build(str(lake), str(tmp_path / "agg"))
    upload(lake, "lake-c", "requests")
    upload(tmp_path / "agg", "lake-c", "aggregates")
    data = tmp_path / "desk"
    data.mkdir()
    (data / "lake.yaml").write_text(
        yaml.safe_dump({"requests": "s3://lake-c/requests", "aggregates": "s3://lake-c/aggregates"})
    )
    out = subprocess.run(
        [sys.executable, "-m", "app", "analyze", "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    local = tmp_path / "desk-local"
    local.mkdir()
    (local / "lake.yaml").write_text(
        yaml.safe_dump({"requests": str(lake), "aggregates": str(tmp_path / "agg")})
    )
    ref = subprocess.run(
        [sys.executable, "-m", "app", "analyze", "--data-dir", str(local), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(out.stdout) == json.loads(ref.stdout)


def test_wrong_credentials_are_an_error_without_the_secret(lake: Path, tmp_path: Path, s3_env, monkeypatch):
    upload(lake, "lake-d", "requests")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyz")
    # moto accepts any key pair; a missing bucket is the failure a wrong setting gives here
    from app.lake.partitions import LakeError

    with pytest.raises((LakeError, OSError)) as info:
        list_partitions("s3://no-such-bucket/requests")
    assert "not-the-secret-xyz" not in str(info.value)
