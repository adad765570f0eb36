"""A small request lake whose every aggregate is known, and the real servers the lake tests
use: a local Spark (pyspark + Java) and an S3-compatible moto server on loopback."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from components import require

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_lake(root: Path, rows: int = 6000, days: int = 3, start: str = "2026-03-01") -> Path:
    """Requests every 7 s per feature-pair over a few days, with every kind of value the
    aggregates must handle: nulls, errors as text and as '', zero latency, feedback -1/0/1,
    quality at 0 and 1, users with many and few requests."""
    src = root / "requests"
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE r AS SELECT
      TIMESTAMP '{start} 00:00:00' + INTERVAL (i * (86400 * {days} // {rows})) SECOND AS timestamp,
      ['chat', 'search', 'summarize'][1 + i % 3] AS feature, 'id-' || i AS request_id,
      ['gpt-a', 'gpt-b'][1 + (i // 500) % 2] AS model,
      CASE WHEN i % 9 = 0 THEN NULL ELSE 'gpt-a-2026' END AS response_model,
      'v' || (i % 3) AS prompt_version,
      CASE WHEN i % 10 = 0 THEN 'canary' ELSE 'control' END AS variant,
      CASE WHEN i % 5 = 0 THEN 'heavy-user' ELSE 'u' || (i % 41) END AS user_id,
      CASE WHEN i % 7 = 0 THEN NULL ELSE 'pro' END AS segment,
      ['eu', 'us'][1 + i % 2] AS region,
      CASE WHEN i % 31 = 0 THEN NULL WHEN i % 29 = 0 THEN 0.0
           ELSE 80 + (i % 97) * 3.7 END::DOUBLE AS latency_ms,
      (10 + i % 5)::BIGINT AS input_tokens,
      CASE WHEN i % 17 = 0 THEN NULL ELSE 20 END::BIGINT AS output_tokens,
      CASE WHEN i % 13 = 0 THEN NULL ELSE 0.0007 * (1 + i % 7) END::DOUBLE AS cost_usd,
      CASE WHEN i % 23 = 0 THEN 'timeout' WHEN i % 19 = 0 THEN '' END AS error,
      CASE WHEN i % 4 = 0 THEN (i % 101) / 100.0 END::DOUBLE AS quality_score,
      CASE WHEN i % 11 = 0 THEN -1 WHEN i % 12 = 0 THEN 1 WHEN i % 15 = 0 THEN 0 END::TINYINT AS feedback
      FROM range({rows}) t(i)""")
    src.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"COPY (SELECT *, strftime(timestamp, '%Y-%m-%d') AS date FROM r) TO '{src}' "
        "(FORMAT parquet, PARTITION_BY (date, feature), OVERWRITE_OR_IGNORE)"
    )
    con.execute(f"COPY r TO '{root / 'all.parquet'}' (FORMAT parquet)")
    return src


@pytest.fixture(scope="session")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """The demo's logs loaded twice: into an embedded store and into a data directory in lake
    mode (requests and aggregates as Parquet)."""
    from app.demo.lake import load_lake_demo
    from app.demo.setup import load_demo

    base = tmp_path_factory.mktemp("pair")
    load_demo(base / "embedded")
    load_lake_demo(base / "lake")
    return base / "embedded", base / "lake"


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return make_lake(tmp_path)


def spark_available() -> bool:
    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


@pytest.fixture(scope="session")
def spark():
    require(spark_available(), "pyspark with a Java runtime")
    from app.lake.spark_job import session

    s = session("local[2]")
    yield s
    s.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a loopback port; yields the endpoint URL."""
    exe = Path(sys.executable).parent / "moto_server"
    require(exe.exists(), "moto_server (pip moto[server])")
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not answer within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return os.environ
