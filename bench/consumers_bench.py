"""The consumers of the aggregate tables, timed on one data directory (an embedded store or a
lake): a week's split by region and by model, triage of the last six hours, the guardrails'
arm comparison over a week, and detection's slice sums over eight days (every feature).

    .venv/bin/python bench/consumers_bench.py --data-dir DIR [--repeat 5] [--label NAME]

Prints one JSON line of medians (seconds). To compare two versions of the code, run it
alternately from each tree (PYTHONPATH) on copies of the same data directory: the figures in
docs/aggregates.md were measured so. The deferred rollups are built before the timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.detection import slices  # noqa: E402
from app.incidents import impact  # noqa: E402
from app.metrics import timeline as metrics  # noqa: E402
from app.rollout import guardrails  # noqa: E402
from app.storage import rollups  # noqa: E402
from app.storage.store import Store  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    store = Store(args.data_dir)
    _, hi = store.time_bounds(None)
    features = store.features()
    feature = "support-reply" if "support-reply" in features else features[0]
    canary = store.scalar(
        "SELECT feature FROM requests GROUP BY 1 ORDER BY count(DISTINCT variant) DESC LIMIT 1"
    )
    with store.connect() as con:
        if hasattr(rollups, "ensure_deferred"):
            rollups.ensure_deferred(con)
    week = hi - timedelta(days=7)

    def split(by: str):
        return metrics.timeline(store, feature, week, hi, bucket="1 hour", split=by)

    cases = {
        "split_region_week": lambda: split("region"),
        "split_model_week": lambda: split("model"),
        "triage_6h": lambda: impact.triage(store, feature, hi - timedelta(hours=6), hi),
        "arms_week": lambda: guardrails.arm_stats(store, canary, week, hi),
        "slice_sums_8d": lambda: slices.slice_hourly(store, hi - timedelta(days=8), hi, None),
    }
    out: dict = {"label": args.label, "load_average": round(os.getloadavg()[0], 2)}
    for name, fn in cases.items():
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        out[name] = round(statistics.median(runs), 4)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
