"""The queries behind the feature timeline at 10 million rows: median latency, and the ratio
to a bare filtered scan of the same rows measured in the same run.

    .venv/bin/python bench/timeline_bench.py [--rows 10000000] [--repeat 15]

The data is the demo week scaled up (app/synth.py), cached in bench/out/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from app.changes import declared  # noqa: E402
from app.changes import timeline as changes  # noqa: E402
from app.demo.scenario import DEMO_DAYS, DEMO_START, demo_changes, demo_scenario  # noqa: E402
from app.demo.synth import generate  # noqa: E402
from app.ingest.pipeline import ingest_paths  # noqa: E402
from app.metrics import timeline as metrics  # noqa: E402
from app.storage.store import Store  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
DEMO_ROWS_AT_SCALE_1 = 225_000


def loaded_store(rows: int) -> Store:
    data = OUT / f"timeline-{rows}"
    store = Store(data)
    if store.request_count() >= rows * 0.95:
        return store
    OUT.mkdir(exist_ok=True)
    scale = rows / DEMO_ROWS_AT_SCALE_1
    path = OUT / f"demo-{rows}.parquet"
    if not path.exists():
        print(f"generating ~{rows:,} rows (scale {scale:.1f}) ...", flush=True)
        generate(demo_scenario(scale=scale)).write_parquet(path)
    t = time.perf_counter()
    result = ingest_paths(store, [str(path)])
    print(f"ingested {result.loaded:,} rows in {time.perf_counter() - t:.1f} s", flush=True)
    changes_file = OUT / "demo-changes.yaml"
    changes_file.write_text(yaml.safe_dump({"changes": demo_changes()}))
    events, _ = declared.load_declared(changes_file)
    declared.save_events(store, events)
    return store


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    store = loaded_store(args.rows)
    n = store.request_count()
    feature = "support-reply"
    since = DEMO_START
    until = DEMO_START + timedelta(days=DEMO_DAYS)

    def page_queries() -> None:
        # Exactly what the feature page asks for on a first render.
        with store.session():
            _page_queries()

    def _page_queries() -> None:
        store.time_bounds(feature)
        store.extra_columns(feature)
        metrics.timeline(store, feature, since, until)
        changes.timeline_changes(store, feature, since, until)

    def split_query() -> None:
        metrics.timeline(store, feature, since, until, split="region")

    def bare_scan() -> None:
        store.rows(
            "SELECT count(*), avg(latency_ms) FROM requests "
            "WHERE feature = ? AND timestamp >= ? AND timestamp < ?",
            [feature, since, until],
        )

    page_queries()  # warm the file cache
    page, split, bare = [], [], []
    for _ in range(args.repeat):  # interleaved, so machine noise hits all three alike
        page += timed(page_queries, 1)
        split += timed(split_query, 1)
        bare += timed(bare_scan, 1)
    med = statistics.median
    print(f"rows stored: {n:,}; feature {feature}: one week")
    print(
        f"feature page queries, all together: median {med(page):.0f} ms "
        f"(p90 {sorted(page)[int(0.9 * len(page))]:.0f} ms)"
    )
    print(f"timeline split by region:           median {med(split):.0f} ms")
    print(f"bare filtered scan (baseline):      median {med(bare):.0f} ms")
    print(f"ratio page / bare scan: {med(page) / med(bare):.1f}x")


if __name__ == "__main__":
    main()
