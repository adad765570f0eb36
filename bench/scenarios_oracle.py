"""How visible each incident of the independent suite is to someone who knows the answer.

    .venv/bin/python bench/scenarios_oracle.py [--quick] [--family NAME ...]

For every incident, the affected requests (the feature, or its slice or user) from the true
onset (a ramp: from its full size) to its end or the end of the window are compared with a
control: the same requests in the week before the onset, or,
when the slice did not exist before (a canary, a new client), the feature's other requests
over the same hours. One-sided z: two proportions for error and thumbs-down rates, Welch for
mean quality and cost, and for p95 latency the share of requests above the control's p95
against 5%. The suite promises z >= 6 for every incident: a miss is the detector's.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.independent_traffic import generate  # noqa: E402
from bench.scenarios_independent import FAMILIES, Incident, cases  # noqa: E402

PROMISED_Z = 6.0
BEFORE = timedelta(days=7)
MIN_CONTROL = 30


def _proportion_z(bad_after: int, n_after: int, bad_before: int, n_before: int) -> float:
    if n_after == 0 or n_before == 0:
        return 0.0
    p1, p0 = bad_after / n_after, bad_before / n_before
    pooled = (bad_after + bad_before) / (n_after + n_before)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_after + 1 / n_before))
    return (p1 - p0) / se


def _welch_z(after: pl.Series, before: pl.Series, sign: int) -> float:
    a, b = after.drop_nulls(), before.drop_nulls()
    if a.len() < 2 or b.len() < 2:
        return 0.0
    se = math.sqrt(a.var() / a.len() + b.var() / b.len())
    return sign * (a.mean() - b.mean()) / se if se > 0 else 0.0


def metric_z(metric: str, after: pl.DataFrame, before: pl.DataFrame) -> float:
    if metric == "error_rate":
        bad_after, bad_before = after["error"].is_not_null().sum(), before["error"].is_not_null().sum()
        return _proportion_z(bad_after, after.height, bad_before, before.height)
    ok_after, ok_before = after.filter(pl.col("error").is_null()), before.filter(pl.col("error").is_null())
    if metric == "negative_feedback_rate":
        fa, fb = ok_after["feedback"].drop_nulls(), ok_before["feedback"].drop_nulls()
        return _proportion_z((fa == -1).sum(), fa.len(), (fb == -1).sum(), fb.len())
    if metric == "quality_score":
        return _welch_z(ok_after["quality_score"], ok_before["quality_score"], -1)
    if metric == "cost_per_request_usd":
        return _welch_z(ok_after["cost_usd"], ok_before["cost_usd"], 1)
    if ok_before.height < MIN_CONTROL or ok_after.height == 0:
        return 0.0
    p95 = ok_before["latency_ms"].quantile(0.95)
    share = (ok_after["latency_ms"] > p95).mean()
    return (share - 0.05) / math.sqrt(0.05 * 0.95 / ok_after.height)


def incident_z(data: pl.DataFrame, inc: Incident, until: datetime) -> float:
    feat = data.filter(pl.col("feature") == inc.feature)
    mine = pl.lit(True)
    if inc.scope in ("slice", "single_user"):
        dim, value = inc.slices[0]
        mine = pl.col(dim) == value
    start = inc.onset + timedelta(hours=inc.ramp_hours)
    stop = inc.end or until
    ts = pl.col("timestamp")
    after = feat.filter(mine & (ts >= start) & (ts < stop))
    before = feat.filter(mine & (ts < inc.onset) & (ts >= inc.onset - BEFORE))
    if before.height < MIN_CONTROL:
        before = feat.filter(~mine & (ts >= start) & (ts < stop))
    return metric_z(inc.metric, after, before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--family", action="append", default=[], metavar="NAME")
    args = parser.parse_args(argv)
    unknown = [f for f in args.family if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown family {', '.join(unknown)}")
    weakest: list[tuple[float, str, str]] = []
    for case in cases(args.family or None, quick=args.quick):
        if not case.incidents:
            continue
        data = generate(case.world)
        for inc in case.incidents:
            z = incident_z(data, inc, case.until or case.world.end)
            weakest.append((z, case.name, f"{inc.feature} {inc.metric} {inc.scope}"))
            flag = "" if z >= PROMISED_Z else f"   below {PROMISED_Z:.0f}"
            print(f"{case.name}: {inc.metric} z = {z:.1f}{flag}", flush=True)
    weakest.sort()
    below = [w for w in weakest if w[0] < PROMISED_Z]
    print(f"\n{len(weakest)} incidents; z below {PROMISED_Z:.0f}: {len(below)}; weakest:")
    for z, name, what in weakest[:5]:
        print(f"  {z:.1f}  {name}  {what}")
    return 1 if below else 0


if __name__ == "__main__":
    raise SystemExit(main())
