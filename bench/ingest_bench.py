"""Ingest benchmark: rollback-desk's ingest against a bare DuckDB load of the same file.

    .venv/bin/python bench/ingest_bench.py [--rows N] [--jsonl-rows N] [--runs 3]

Generates (once, cached under bench/out/) a Parquet file of N rows and a JSONL file of
N/5 rows with the demo scenario of app/synth.py, then for each file measures, alternating,
`rollback-desk ingest` into a fresh data directory and a bare
`CREATE TABLE t AS SELECT * FROM read_parquet(...)` / `read_json(...)` into a fresh DuckDB
file. Every run is a fresh subprocess, so the peak memory (ru_maxrss) of each is its own.
Then loads 1,000 new lines into the store of the Parquet file's rows, against the same
lines into an empty store, and each file with one bad row against the clean file. Prints
a table and writes bench/out/ingest_bench.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

DEMO_ROWS_PER_DAY_AT_SCALE_1 = 32_100  # the demo week holds about 225,000 requests


def generate(path: Path, rows: int, fmt: str) -> int:
    """Write about `rows` requests of the demo scenario, one synthetic day at a time."""
    import polars as pl
    import pyarrow.parquet as pq

    from app.demo.scenario import DEMO_START, demo_scenario
    from app.demo.synth import Scenario
    from app.demo.synth import generate as synth_generate

    days = 7
    scale = rows / (DEMO_ROWS_PER_DAY_AT_SCALE_1 * days)
    base = demo_scenario(scale=scale)
    tmp = path.with_suffix(path.suffix + ".tmp")
    written = 0
    writer = None
    with open(tmp, "wb") as out:
        for day in range(days):
            scenario = Scenario(
                start=DEMO_START + timedelta(days=day),
                days=1,
                features=base.features,
                switches=base.switches,
                effects=base.effects,
                seed=1000 + day,
                scale=scale,
            )
            frame = synth_generate(scenario).head(rows - written)
            if fmt == "parquet":
                table = frame.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table, row_group_size=122_880)
            else:
                frame.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_ndjson(
                    out
                )
            written += frame.height
            if written >= rows:
                break
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return written


def ensure_file(rows: int, fmt: str) -> Path:
    path = OUT / f"requests-{rows}.{'parquet' if fmt == 'parquet' else 'jsonl'}"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        n = generate(path, rows, fmt)
        print(f"generated {path.name}: {n} rows in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def timed(cmd: list[str]) -> tuple[float, str]:
    """(seconds, stdout) of one subprocess; each run prints its own peak RSS last."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:2])} ... failed:\n{proc.stderr}")
    return seconds, proc.stdout


_BARE = """
import duckdb, resource, sys
con = duckdb.connect(sys.argv[1])
con.execute(f"CREATE TABLE t AS SELECT * FROM {sys.argv[2]}({sys.argv[3]!r})")
con.close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_OURS = """
import resource, sys
from app.cli import main
code = main(["ingest", sys.argv[2], "--data-dir", sys.argv[1], "--json"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def run_once(kind: str, path: Path, fmt: str) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, rows loaded) of one fresh load."""
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-", dir=OUT))
    try:
        if kind == "bare":
            reader = "read_parquet" if fmt == "parquet" else "read_json"
            cmd = [sys.executable, "-c", _BARE, str(work / "bare.duckdb"), reader, str(path)]
        else:
            cmd = [sys.executable, "-c", _OURS, str(work), str(path)]
        seconds, stdout = timed(cmd)
        lines = stdout.strip().splitlines()
        peak_mb = int(lines[-1]) / 1024
        loaded = json.loads(lines[0])["loaded"] if kind == "ours" else -1
        return seconds, peak_mb, loaded
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(path: Path, fmt: str, rows: int, runs: int) -> dict:
    ours: list[float] = []
    bare: list[float] = []
    peaks: list[float] = []
    loaded = 0
    for i in range(runs):
        order = ("ours", "bare") if i % 2 == 0 else ("bare", "ours")
        for kind in order:
            seconds, peak, n = run_once(kind, path, fmt)
            if kind == "ours":
                ours.append(seconds)
                peaks.append(peak)
                loaded = n
            else:
                bare.append(seconds)
            print(f"  {fmt:<8} {kind:<5} run {i + 1}: {seconds:6.2f} s  peak {peak:7.0f} MB", flush=True)
    if loaded != rows:
        raise SystemExit(f"{path.name}: ingest loaded {loaded} rows, expected {rows}")
    med_ours, med_bare = statistics.median(ours), statistics.median(bare)
    return {
        "format": fmt,
        "rows": rows,
        "ingest_s": round(med_ours, 3),
        "bare_s": round(med_bare, 3),
        "ingest_rows_per_s": round(rows / med_ours),
        "bare_rows_per_s": round(rows / med_bare),
        "ratio": round(med_bare / med_ours, 3),
        "ingest_peak_mb": round(max(peaks)),
    }


SMALL_LINES = 1_000


def ensure_one_bad_row(path: Path, fmt: str) -> Path:
    """A copy of `path` whose middle row has a negative latency (so it is quarantined)."""
    bad = path.with_name("onebad-" + path.name)
    if bad.exists():
        return bad
    tmp = bad.with_suffix(bad.suffix + ".tmp")
    if fmt == "parquet":
        import polars as pl

        df = pl.read_parquet(path)
        middle = pl.int_range(pl.len()) == df.height // 2
        df.with_columns(
            pl.when(middle).then(-5.0).otherwise(pl.col("latency_ms")).alias("latency_ms")
        ).write_parquet(tmp, row_group_size=122_880)
    else:
        lines = count_rows(path, fmt)
        with open(path, "rb") as src, open(tmp, "wb") as out:
            for i, line in enumerate(src):
                if i == lines // 2:
                    row = json.loads(line)
                    row["latency_ms"] = -5
                    line = (json.dumps(row) + "\n").encode()
                out.write(line)
    tmp.replace(bad)
    return bad


def measure_one_bad_row(path: Path, fmt: str, rows: int, runs: int) -> dict:
    """The same file with one bad row, against the clean file, both loaded by ingest."""
    bad = ensure_one_bad_row(path, fmt)
    times: dict[str, list[float]] = {"clean": [], "one bad": []}
    for i in range(runs):
        for kind in ("one bad", "clean") if i % 2 == 0 else ("clean", "one bad"):
            seconds, peak, loaded = run_once("ours", bad if kind == "one bad" else path, fmt)
            times[kind].append(seconds)
            print(f"  {fmt:<8} {kind:<7} run {i + 1}: {seconds:6.2f} s  peak {peak:7.0f} MB", flush=True)
    med_bad, med_clean = statistics.median(times["one bad"]), statistics.median(times["clean"])
    return {
        "format": fmt,
        "rows": rows,
        "one_bad_row_s": round(med_bad, 3),
        "clean_s": round(med_clean, 3),
        "ratio": round(med_clean / med_bad, 3),
    }


def measure_small_into_large(parquet: Path, rows: int, runs: int) -> dict:
    """A live log's next 1,000 lines loaded into the store of the Parquet file's rows,
    against the same lines loaded into an empty store: what the store's size costs."""
    from app.config import setting

    db = str(setting("database_file"))
    store = OUT / f"store-{rows}"
    if not (store / db).exists():
        shutil.rmtree(store, ignore_errors=True)
        timed([sys.executable, "-c", _OURS, str(store), str(parquet)])
    small = OUT / f"small-{SMALL_LINES}.jsonl"
    if not small.exists():
        small.write_text(
            "".join(
                json.dumps(
                    {
                        "timestamp": f"2026-11-23T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
                        "feature": "support-reply",
                        "request_id": f"small-{i}",
                        "model": "gpt-4o-mini-2024-07-18",
                        "latency_ms": 100.0 + i,
                    }
                )
                + "\n"
                for i in range(SMALL_LINES)
            )
        )
    times: dict[str, list[float]] = {"empty": [], "large": []}
    for i in range(runs):
        for kind in ("large", "empty") if i % 2 == 0 else ("empty", "large"):
            work = Path(tempfile.mkdtemp(prefix="ingest-bench-", dir=OUT))
            try:
                if kind == "large":
                    shutil.copy(store / db, work / db)
                seconds, stdout = timed([sys.executable, "-c", _OURS, str(work), str(small)])
                if json.loads(stdout.splitlines()[0])["loaded"] != SMALL_LINES:
                    raise SystemExit(f"{small.name}: not every line loaded into the {kind} store")
                times[kind].append(seconds)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"  small    {kind:<5} run {i + 1}: {times[kind][-1]:6.2f} s", flush=True)
    med_large, med_empty = statistics.median(times["large"]), statistics.median(times["empty"])
    return {
        "format": "jsonl",
        "rows": SMALL_LINES,
        "store_rows": rows,
        "ingest_s": round(med_large, 3),
        "empty_store_s": round(med_empty, 3),
        "ratio": round(med_empty / med_large, 3),
    }


def count_rows(path: Path, fmt: str) -> int:
    import duckdb

    reader = "read_parquet" if fmt == "parquet" else "read_json"
    return duckdb.execute(f"SELECT count(*) FROM {reader}(?)", [str(path)]).fetchall()[0][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="Parquet rows")
    parser.add_argument("--jsonl-rows", type=int, help="JSONL rows (default: rows / 5)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    jsonl_rows = args.jsonl_rows or max(1, args.rows // 5)
    results, paths = [], []
    for fmt, rows in (("parquet", args.rows), ("jsonl", jsonl_rows)):
        path = ensure_file(rows, fmt)
        paths.append(path)
        results.append(measure(path, fmt, count_rows(path, fmt), args.runs))
    parquet = ensure_file(args.rows, "parquet")
    small = measure_small_into_large(parquet, results[0]["rows"], args.runs)
    one_bad = [
        measure_one_bad_row(path, r["format"], r["rows"], args.runs)
        for path, r in zip(paths, results, strict=True)
    ]
    print()
    print(
        f"{'format':<8} {'rows':>11} {'ingest s':>9} {'rows/s':>11} {'bare s':>8} {'ratio':>6} {'peak MB':>8}"
    )
    for r in results:
        print(
            f"{r['format']:<8} {r['rows']:>11,} {r['ingest_s']:>9.2f} {r['ingest_rows_per_s']:>11,} "
            f"{r['bare_s']:>8.2f} {r['ratio']:>6.2f} {r['ingest_peak_mb']:>8,}"
        )
    print(
        f"{small['rows']:,} lines into a store of {small['store_rows']:,} rows: "
        f"{small['ingest_s']:.2f} s; into an empty store: {small['empty_store_s']:.2f} s; "
        f"ratio {small['ratio']:.2f}"
    )
    for b in one_bad:
        print(
            f"{b['format']:<8} {b['rows']:>11,} rows with one bad row: "
            f"{b['one_bad_row_s']:.2f} s; clean: {b['clean_s']:.2f} s; ratio {b['ratio']:.2f}"
        )
    (OUT / "ingest_bench.json").write_text(json.dumps([*results, small, *one_bad], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
