"""Investigate at 10 million rows: facets over one feature-week, a two-arm compare and the
request table's first page. Medians, and the ratio of each to a bare filtered scan of the
same feature-week measured in the same run (interleaved, so machine noise hits all alike).

    .venv/bin/python bench/investigate_bench.py [--rows 10000000] [--repeat 11]

Targets (docs/investigate.md): facets <= 1 s, compare <= 1 s, first page <= 300 ms.
The data is the demo week scaled up (app/demo/synth.py), cached in bench/out/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.scenario import DEMO_DAYS, DEMO_START, demo_scenario  # noqa: E402
from app.demo.synth import generate  # noqa: E402
from app.ingest.pipeline import ingest_paths  # noqa: E402
from app.investigate import request_table  # noqa: E402
from app.investigate.compare import compare  # noqa: E402
from app.investigate.facets import facets  # noqa: E402
from app.investigate.filters import Filter, Scope  # noqa: E402
from app.storage.store import Store  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
DEMO_ROWS_AT_SCALE_1 = 225_000
FEATURE = "support-reply"
TARGETS_MS = {"facets": 1000, "compare": 1000, "first page": 300}


def loaded_store(rows: int) -> Store:
    store = Store(OUT / f"investigate-{rows}")
    if store.request_count() >= rows * 0.95:
        return store
    OUT.mkdir(exist_ok=True)
    path = OUT / f"investigate-demo-{rows}.parquet"
    if not path.exists():
        scale = rows / DEMO_ROWS_AT_SCALE_1
        print(f"generating ~{rows:,} rows (scale {scale:.1f}) ...", flush=True)
        generate(demo_scenario(scale=scale)).write_parquet(path)
    t = time.perf_counter()
    result = ingest_paths(store, [str(path)])
    print(f"ingested {result.loaded:,} rows in {time.perf_counter() - t:.1f} s", flush=True)
    return store


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    store = loaded_store(args.rows)
    since, until = DEMO_START, DEMO_START + timedelta(days=DEMO_DAYS)
    week = Scope(FEATURE, since, until)
    versions = [
        r[0]
        for r in store.rows(
            "SELECT prompt_version FROM requests WHERE feature = ? GROUP BY 1 ORDER BY count(*) DESC LIMIT 2",
            [FEATURE],
        )
    ]
    arm_a = Scope(FEATURE, since, until, Filter.parse(f"prompt_version={versions[0]}"))
    arm_b = Scope(FEATURE, since, until, Filter.parse(f"prompt_version={versions[-1]}"))
    extras = tuple(store.extra_columns(FEATURE))
    week_rows = request_table.count(store, week)

    cases: dict[str, Callable[[], object]] = {
        "facets": lambda: facets(store, week, "error_rate", extras=extras),
        "compare": lambda: compare(store, arm_a, arm_b, extras),
        "first page": lambda: request_table.page(store, week, extras=extras),
        "bare scan (baseline)": lambda: store.rows(
            "SELECT count(*), avg(latency_ms) FROM requests WHERE feature = ? AND "
            "timestamp >= ? AND timestamp < ?",
            [FEATURE, since, until],
        ),
    }
    for fn in cases.values():  # warm the file cache
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    med = {name: statistics.median(t) for name, t in times.items()}
    base = med["bare scan (baseline)"]
    print(
        f"rows stored: {store.request_count():,}; {FEATURE}, one week: {week_rows:,} rows; "
        f"compare prompt_version {versions[0]} against {versions[-1]}; {args.repeat} runs"
    )
    for name, m in med.items():
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else f"  target {target} ms: {'met' if m <= target else 'MISSED'}"
        print(
            f"{name:<22} median {m:7.0f} ms  p90 {sorted(times[name])[int(0.9 * len(times[name]))]:7.0f} ms"
            f"  {m / base:5.1f}x baseline{verdict}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": store.request_count(),
                    "feature_week_rows": week_rows,
                    "median_ms": med,
                    "ratio_to_baseline": {k: v / base for k, v in med.items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
