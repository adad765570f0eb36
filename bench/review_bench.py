"""The weekly review of one week over a 10-million-row store: median time, the parts it
spends it on, and the ratio to a bare scan of the rows the review reads, measured in the
same run.

    .venv/bin/python bench/review_bench.py [--rows 10000000] [--repeat 5]

The store is the demo (four quieter weeks and the demo week, with its slos.yaml) scaled up
to the row count, cached in bench/out/. The review covers the demo week (2026-W47); its
objectives read 28 days, so the review touches most of the store.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.setup import load_demo  # noqa: E402
from app.detection.analysis import analyze  # noqa: E402
from app.review.report import week_bounds, weekly_review  # noqa: E402
from app.review.sli import count_events  # noqa: E402
from app.review.slos import load_slos  # noqa: E402
from app.storage.store import Store  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
DEMO_ROWS_AT_SCALE_1 = 359_582  # the demo's five weeks
WEEK = "2026-W47"


def loaded_store(rows: int) -> Store:
    data = OUT / f"review-{rows}"
    store = Store(data)
    if store.request_count() >= rows * 0.95:
        return store
    scale = rows / DEMO_ROWS_AT_SCALE_1
    print(f"loading the demo at scale {scale:.1f} (~{rows:,} rows) ...", flush=True)
    t = time.perf_counter()
    result = load_demo(data, scale=scale)
    print(f"loaded {result.loaded:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
    return store


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    store = loaded_store(args.rows)
    period = week_bounds(WEEK)
    config = load_slos(store.data_dir)
    window_start = period.until - timedelta(days=config.window_days)

    def baseline() -> None:
        # A bare scan of what the objectives read: every request of the 28-day window.
        store.rows(
            """SELECT feature, count(*), count(error), count(latency_ms),
                             count(quality_score), count(feedback), sum(cost_usd)
                      FROM requests WHERE timestamp >= ? AND timestamp < ? GROUP BY 1""",
            [window_start, period.until],
        )

    def slis() -> None:
        count_events(store, config, window_start - timedelta(days=3), period.until)

    def analysis() -> None:
        analyze(store, since=period.since, until=period.until + timedelta(days=1))

    def review() -> None:
        weekly_review(store, period)

    review()  # warm the file cache once; every measure below runs on a warm cache
    n = store.request_count()
    results = {
        name: timed(fn, args.repeat)
        for name, fn in (
            ("baseline scan", baseline),
            ("SLI counts", slis),
            ("analysis", analysis),
            ("weekly review", review),
        )
    }
    base = statistics.median(results["baseline scan"])
    print(f"\n{n:,} rows; review of {WEEK}; {args.repeat} runs each; medians")
    for name, times in results.items():
        med = statistics.median(times)
        print(
            f"  {name:<14} {med:6.2f} s  (x{med / base:4.1f} the baseline scan; "
            f"min {min(times):.2f}, max {max(times):.2f})"
        )


if __name__ == "__main__":
    main()
