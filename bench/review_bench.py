"""The weekly review of one week over a 10-million-row store: median time, the parts it
spends it on, and the ratio to a bare scan of the rows the review reads, measured in the
same run.

    .venv/bin/python bench/review_bench.py [--rows 10000000] [--repeat 5]

The store is the demo (four quieter weeks and the demo week, with its slos.yaml and its
incident) scaled up to the row count, cached in bench/out/. The review covers the demo week
(2026-W47); its objectives read 28 days, so the review touches most of the store.

Parts, each timed once per round and the rounds interleaved (so a change in the machine's
load touches every part alike):

- baseline scan: a bare grouped scan of every request of the objectives' 28 days;
- SLI counts: `sli.count_events` as the review calls it (the window and the burn-rate span);
- analysis: `analyze` over `report.analysis_window`, exactly what the review runs;
- review without analysis: `weekly_review` given that analysis (the review's own work);
- weekly review: the whole, as the page and `rollback-desk review` run it.

The machine's load average is printed before and after: on a shared machine the seconds
move with it, the ratios much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.setup import load_demo  # noqa: E402
from app.detection.analysis import analyze  # noqa: E402
from app.review.report import analysis_window, week_bounds, weekly_review  # noqa: E402
from app.review.sli import count_events  # noqa: E402
from app.review.slos import load_slos  # noqa: E402
from app.storage.store import Store  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
DEMO_ROWS_AT_SCALE_1 = 359_582  # the demo's five weeks
WEEK = "2026-W47"


def loaded_store(rows: int) -> Store:
    data = OUT / f"review-{rows}"
    store = Store(data)
    if store.request_count() >= rows * 0.95 and (data / "ledger.sqlite").exists():
        return store
    scale = rows / DEMO_ROWS_AT_SCALE_1
    print(f"loading the demo at scale {scale:.1f} (~{rows:,} rows) ...", flush=True)
    t = time.perf_counter()
    result = load_demo(data, scale=scale)
    print(f"loaded {result.loaded:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
    return store


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min, {os.cpu_count()} cores)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    store = loaded_store(args.rows)
    period = week_bounds(WEEK)
    config = load_slos(store.data_dir)
    window_start = period.until - timedelta(days=config.window_days)
    longest_alert = timedelta(minutes=max(r.long_min for r in config.alerts))
    since, until = analysis_window(store, period, config)
    analysed = analyze(store, since=since, until=until)

    def baseline() -> None:
        # A bare scan of what the objectives read: every request of the 28-day window.
        store.rows(
            """SELECT feature, count(*), count(error), count(latency_ms),
                             count(quality_score), count(feedback), sum(cost_usd)
                      FROM requests WHERE timestamp >= ? AND timestamp < ? GROUP BY 1""",
            [window_start, period.until],
        )

    parts = {
        "baseline scan": baseline,
        "SLI counts": lambda: count_events(
            store, config, min(window_start, period.since - longest_alert), period.until
        ),
        "analysis": lambda: analyze(store, since=since, until=until),
        "review without analysis": lambda: weekly_review(store, period, config, analysis=analysed),
        "weekly review": lambda: weekly_review(store, period),
    }
    weekly_review(store, period)  # warm the file cache once; every measure runs on a warm cache
    n = store.request_count()
    print(f"load average before: {load_average()}", flush=True)
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.repeat):
        for name, fn in parts.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    print(f"load average after:  {load_average()}")
    base = statistics.median(times["baseline scan"])
    print(f"\n{n:,} rows; review of {WEEK} (analysis {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}); ")
    print(f"{args.repeat} rounds; medians")
    for name, values in times.items():
        med = statistics.median(values)
        print(
            f"  {name:<24} {med:6.2f} s  (x{med / base:4.1f} the baseline scan; "
            f"min {min(values):.2f}, max {max(values):.2f})"
        )
    whole = statistics.median(times["weekly review"])
    share = statistics.median(times["analysis"]) / whole if whole else float("nan")
    print(f"\nanalysis: {share:.0%} of the weekly review")


if __name__ == "__main__":
    main()
