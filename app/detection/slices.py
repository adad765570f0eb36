"""Slice-level detection: a degradation confined to a few percent of a feature's requests.

A canary served to 5% of the traffic can be ten times worse than control while the feature's
total barely moves, so totals alone miss it. Here every value of every split dimension but
users is compared with *the rest of the same feature in the same hours*, from one grouped
scan of hourly aggregates:

- a value first seen inside the range (a canary arm, a new prompt or model) is tested over its
  whole life against the rest of the feature in the hours it was served;
- a value seen from the start is scanned for a step in its gap to the rest (the gap after
  against the gap before), so a lasting difference (one region always slower) is no finding.

Users are not tested as slices (their habits differ and shift by the hour): a degradation's
concentration by user decides `single_user` in the scope rule instead.

Comparing within the same hours cancels the daily and weekly cycles and needs no history
before the range. Significance is Bonferroni over every value and step position tested in a
feature-metric; the effect must clear the metric's thresholds; symptoms (a value set by the
failure itself) are skipped (app/detection/scope.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy import stats as sst

from app import stats
from app.detection.hourly import floor_hour, frame_query
from app.detection.scope import USER_DIMENSION, SliceExcess, is_symptom
from app.detection.thresholds import METRIC_DIRECTION, Thresholds
from app.storage import aggregates, rollups, spans
from app.storage.schema import SPLIT_DIMENSIONS
from app.storage.store import Store

MIN_SHARE_OF_REST = 0.0  # any share: a 1% canary counts
MAX_SLICE_SHARE = 0.6  # a value serving most requests is the total's business
NEW_AFTER = timedelta(hours=1)  # first seen this long after the range start: a new value
MIN_BEFORE_HOURS = 24  # a step in an old value's gap needs a day of gap before it

# Per metric: the per-request quantity compared (count, sum, sum of squares), from the scan.
_MEASURES = {
    "error_rate": ("n", "errors", "errors"),
    "negative_feedback_rate": ("fb_n", "neg_n", "neg_n"),
    "quality_score": ("q_n", "q_sum", "q_ss"),
    "cost_per_request_usd": ("cost_n", "cost_sum", "cost_ss"),
    "latency_p95_ms": ("lat_n", "lat_lsum", "lat_lss"),  # log latency: scale-free
}
_SUMS = (
    "n",
    "errors",
    "q_n",
    "q_sum",
    "q_ss",
    "cost_n",
    "cost_sum",
    "cost_ss",
    "fb_n",
    "neg_n",
    "lat_n",
    "lat_lsum",
    "lat_lss",
)


@dataclass(frozen=True)
class SliceDetection:
    feature: str
    metric: str
    dimension: str
    value: str
    onset: datetime
    baseline: float  # the rest of the feature in the same hours (or the value's own gap before)
    current: float
    p_raw: float  # Bonferroni over the values and positions tested
    n_baseline: int
    n_current: int
    severity: float
    new_value: bool


# This module's sums under the aggregate contract's names (docs/aggregates.md): latency, cost
# and their squares over successful requests, latency on the log scale.
_TABLE_SUMS = {
    "n": "requests",
    "errors": "errors",
    "q_n": "quality_n",
    "q_sum": "quality_sum",
    "q_ss": "quality_sumsq",
    "cost_n": "ok_cost_n",
    "cost_sum": "ok_cost_sum",
    "cost_ss": "ok_cost_sumsq",
    "fb_n": "feedback_n",
    "neg_n": "feedback_neg",
    "lat_n": "ok_latency_n",
    "lat_lsum": "ok_latency_lnsum",
    "lat_lss": "ok_latency_lnsumsq",
}
_DIMS = [d for d in SPLIT_DIMENSIONS if d != USER_DIMENSION]


def slice_hourly(store: Store, since: datetime, until: datetime, feature: str | None) -> pl.DataFrame:
    """Hourly sums per feature, dimension and value (users excepted) over [since, until): the
    whole hours from the aggregate table `agg_dim_1h`, the partial hour at each end from the
    requests (app/storage/spans.py), so the sums are those of the requests exactly."""
    span = spans.cut(since, until, timedelta(hours=1))
    params: dict = {"feature": feature}
    parts = []
    if span.inner is not None:
        params["lo"], params["hi"] = span.inner
        listed = ", ".join(f"'{d}'" for d in _DIMS)
        sums = ", ".join(f"CAST(coalesce(sum({col}), 0) AS DOUBLE) AS {c}" for c, col in _TABLE_SUMS.items())
        parts.append(
            f"""SELECT feature, dimension, value, bucket AS hour, {sums} FROM agg_dim_1h
                WHERE ($feature IS NULL OR feature = $feature) AND bucket >= $lo AND bucket < $hi
                      AND dimension IN ({listed})
                GROUP BY ALL"""
        )
    if span.edges:
        conds = []
        for k, (lo, hi) in enumerate(span.edges):
            params[f"e{k}lo"], params[f"e{k}hi"] = lo, hi
            conds.append(f"(timestamp >= $e{k}lo AND timestamp < $e{k}hi)")
        parts.append(_raw_sql(" OR ".join(conds)))
    if not parts:
        return pl.DataFrame()
    with store.connect() as con:
        rollups.ensure_deferred(con)
    # An hour is whole or partial, never both: the parts hold different hours.
    return frame_query(store, " UNION ALL ".join(f"({p})" for p in parts), params)


def _raw_sql(when: str) -> str:
    """The sums of `slice_hourly` from the requests matching `when`, by the contract's
    definitions (aggregates.MEASURES). One scan sums them per hour and combination of values
    (a few hundred per feature-hour); each dimension's sums are rolled up from those."""
    dims = ", ".join(_DIMS)
    ln = "ln(greatest(latency_ms, 0.01))"
    ok = aggregates.IS_OK
    rows = {
        "n": "1",
        "errors": f"CASE WHEN {ok} THEN 0 ELSE 1 END",
        "q_n": "CASE WHEN quality_score IS NULL THEN 0 ELSE 1 END",
        "q_sum": "coalesce(quality_score, 0)",
        "q_ss": "coalesce(quality_score * quality_score, 0)",
        "cost_n": f"CASE WHEN cost_usd IS NOT NULL AND {ok} THEN 1 ELSE 0 END",
        "cost_sum": f"CASE WHEN {ok} THEN coalesce(cost_usd, 0) ELSE 0 END",
        "cost_ss": f"CASE WHEN {ok} THEN coalesce(cost_usd * cost_usd, 0) ELSE 0 END",
        "fb_n": "CASE WHEN feedback IS NULL THEN 0 ELSE 1 END",
        "neg_n": "CASE WHEN feedback = -1 THEN 1 ELSE 0 END",
        "lat_n": f"CASE WHEN latency_ms IS NOT NULL AND {ok} THEN 1 ELSE 0 END",
        "lat_lsum": f"CASE WHEN {ok} THEN coalesce({ln}, 0) ELSE 0 END",
        "lat_lss": f"CASE WHEN {ok} THEN coalesce({ln} * {ln}, 0) ELSE 0 END",
    }
    per_dim = " UNION ALL ".join(
        f"""SELECT feature, '{d}' AS dimension, coalesce(CAST({d} AS VARCHAR), '(none)') AS value,
                   hour, {", ".join(f"CAST(sum({c}) AS DOUBLE) AS {c}" for c in _SUMS)}
            FROM combos GROUP BY ALL"""
        for d in _DIMS
    )
    return f"""
        WITH rows AS (
            SELECT feature, {dims}, date_trunc('hour', timestamp) AS hour,
                   {", ".join(f"{sql} AS {c}" for c, sql in rows.items())}
            FROM requests
            WHERE ($feature IS NULL OR feature = $feature) AND ({when})),
        combos AS MATERIALIZED (
            SELECT feature, {dims}, hour, {", ".join(f"sum({c}) AS {c}" for c in _SUMS)}
            FROM rows GROUP BY ALL)
        {per_dim}"""


PARTITION = "model"  # every request has one value of it (missing counts as "(none)")


def detect_slices(
    frame: pl.DataFrame,
    start: datetime,
    until: datetime,
    since: datetime,
    t: Thresholds,
    metrics: tuple[str, ...],
) -> list[SliceDetection]:
    """The most significant slice degradation per feature and metric (p before Holm)."""
    out: list[SliceDetection] = []
    if frame.is_empty():
        return out
    start = floor_hour(start)
    hours = int(np.ceil((until - start) / timedelta(hours=1)))
    first_i = max(int((since - start) // timedelta(hours=1)), 0)
    frame = frame.with_columns(i=((pl.col("hour") - start).dt.total_seconds() // 3600).cast(pl.Int64))
    for (feature,), part in frame.group_by("feature"):
        part = part.filter((pl.col("i") >= 0) & (pl.col("i") < hours))
        total = {}
        whole = part.filter(pl.col("dimension") == PARTITION)
        for c in _SUMS:
            a = np.zeros(hours)
            np.add.at(a, whole["i"].to_numpy(), whole[c].fill_null(0).to_numpy().astype(float))
            total[c] = a
        failed = part.group_by("dimension", "value").agg(
            (pl.col("errors").sum() / pl.col("n").sum()).alias("failed")
        )
        symptoms = {
            (r[0], r[1])
            for r in failed.iter_rows()
            if is_symptom(SliceExcess(r[0], r[1], 0, 0.0, r[2] or 0.0))
        }
        series, dropped = {}, {}
        for (dim, value), rows in part.group_by("dimension", "value"):
            idx = rows["i"].to_numpy()
            arrs = {}
            for c in _SUMS:
                a = np.zeros(hours)
                np.add.at(a, idx, rows[c].fill_null(0).to_numpy().astype(float))
                arrs[c] = a
            if (dim, value) in symptoms:  # neither a slice nor part of its dimension's rest
                gone = dropped.setdefault(str(dim), {c: np.zeros(hours) for c in _SUMS})
                for c in _SUMS:
                    gone[c] += arrs[c]
                continue
            series[(str(dim), str(value))] = arrs
        rests = {dim: {c: total[c] - gone[c] for c in _SUMS} for dim, gone in dropped.items()}
        data_start = int(np.flatnonzero(total["n"] > 0)[0]) if total["n"].any() else 0
        for metric in metrics:
            best = _best_for_metric(str(feature), metric, series, total, rests, data_start, first_i, start, t)
            if best is not None:
                out.append(best)
    return out


def _stats(arrs: dict[str, np.ndarray], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_key, s_key, ss_key = _MEASURES[metric]
    return arrs[n_key], arrs[s_key], arrs[ss_key]


def _effect_ok(metric: str, baseline: float, current: float, t: Thresholds) -> float:
    """Severity (effect / minimum effect), 0 when the effect is too small."""
    m = t.metric(metric)
    effect = METRIC_DIRECTION[metric] * (current - baseline)
    needed = max(m.min_effect, m.min_relative * abs(baseline), 1e-12)
    return effect / needed if effect >= needed else 0.0


def _best_for_metric(
    feature: str,
    metric: str,
    series: dict,
    total: dict,
    rests: dict,
    data_start: int,
    first_i: int,
    start: datetime,
    t: Thresholds,
) -> SliceDetection | None:
    direction = METRIC_DIRECTION[metric]
    tn, ts, tss = _stats(total, metric)
    if tn[first_i:].sum() <= 0:
        return None
    need = t.metric(metric).min_samples
    floor = max(20, need // 10)
    # Per-request variance from the pooled data (proportions: p(1-p)).
    pooled_mean = ts.sum() / max(tn.sum(), 1)
    if metric in ("error_rate", "negative_feedback_rate"):
        var = max(pooled_mean * (1 - pooled_mean), 1e-9)
    else:
        var = max(tss.sum() / max(tn.sum(), 1) - pooled_mean**2, 1e-12)
    candidates: list[tuple[float, SliceDetection]] = []
    tests = 0
    for (dim, value), arrs in series.items():
        n, s, _ = _stats(arrs, metric)
        base_n, base_s, _ = _stats(rests.get(dim, total), metric)
        rn, rs = base_n - n, base_s - s
        seen = np.flatnonzero(arrs["n"] > 0)
        if seen.size == 0 or n[first_i:].sum() < floor:
            continue
        if dim == USER_DIMENSION:
            # Users are judged by how concentrated a degradation is (app/detection/scope.py), not
            # as slices: each has habits of their own that shift from hour to hour and day to
            # day, so a user's own "step" is usually just that user.
            continue
        first_seen = int(seen[0])
        gaps = HourlyGaps.of(n, s, rn, rs, var)
        if first_seen >= data_start + 1 and first_seen >= first_i:
            # A new value: its whole life against the rest in the same hours.
            live = (np.arange(len(n)) >= first_seen) & gaps.ok
            if n[live].sum() > MAX_SLICE_SHARE * base_n[live].sum() or rn[live].sum() < need:
                continue  # it replaced the old value: the totals judge it
            tests += 1
            res = gaps.test(live, None, direction)
            onset, new = first_seen, True
        else:
            if n[first_i:].sum() > MAX_SLICE_SHARE * base_n[first_i:].sum():
                continue
            res, tried, onset = gaps.scan(max(first_i, data_start + MIN_BEFORE_HOURS), floor, need, direction)
            tests += tried
            new = False
        if res is None:
            continue
        z, gap, n_cur, n_base = res
        live = gaps.ok & (np.arange(len(n)) >= onset)
        cur_mean = float(s[live].sum() / max(n[live].sum(), 1))
        current_value = _level(metric, cur_mean, total)
        baseline_value = _level(metric, cur_mean - gap, total)
        severity = _effect_ok(metric, baseline_value, current_value, t)
        if severity <= 0:
            continue
        p = float(sst.norm.sf(z))
        if metric in ("error_rate", "negative_feedback_rate"):  # few events: the exact tail too
            events = float(s[live].sum())
            p = max(p, stats.exact_binomial(events, n[live].sum(), baseline_value).p_greater)
        det = SliceDetection(
            feature,
            metric,
            dim,
            value,
            start + timedelta(hours=onset),
            baseline_value,
            current_value,
            p,
            n_base,
            n_cur,
            severity,
            new,
        )
        candidates.append((z, det))
    if not candidates:
        return None
    z, det = max(candidates, key=lambda c: c[0])
    return SliceDetection(**{**det.__dict__, "p_raw": min(1.0, det.p_raw * max(tests, 1))})


@dataclass(frozen=True)
class HourlyGaps:
    """Per hour: how much worse a slice is than the rest of its feature, its standard error,
    and the hour's weight. Weights are the slice's requests capped at three times their median
    hour, so one burst (a client retrying 400 times) cannot stand for a whole period."""

    gap: np.ndarray
    se2: np.ndarray
    w: np.ndarray
    n: np.ndarray
    ok: np.ndarray

    @classmethod
    def of(cls, n, s, rn, rs, var) -> HourlyGaps:
        ok = (n > 0) & (rn > 0)
        gap = np.where(
            ok,
            np.divide(s, n, out=np.zeros_like(s), where=n > 0)
            - np.divide(rs, rn, out=np.zeros_like(rs), where=rn > 0),
            0.0,
        )
        se2 = np.where(ok, var * (1 / np.maximum(n, 1) + 1 / np.maximum(rn, 1)), 0.0)
        cap = 3 * np.median(n[ok]) if ok.any() else 0.0
        return cls(gap, se2, np.where(ok, np.minimum(n, cap), 0.0), n, ok)

    def test(self, cur, before, direction):
        """z of the mean gap in `cur`, with the gap and the sample sizes."""
        w = self.w[cur]
        total = w.sum()
        if total <= 0:
            return None
        gap = (w * self.gap[cur]).sum() / total
        v = (w * w * self.se2[cur]).sum() / total**2
        z = direction * gap / math.sqrt(max(v, 1e-30))
        return (z, gap, int(self.n[cur].sum()), 0) if z > 0 else None

    def scan(self, first: int, floor: float, need: float, direction: int):
        """The step in the gap (mean after minus mean before) with the largest z, over every
        hour from `first`; with how many positions were tried and the step's hour."""
        cw, cwg, cw2 = (
            np.concatenate([[0.0], np.cumsum(x)])
            for x in (self.w, self.w * self.gap, self.w * self.w * self.se2)
        )
        cn = np.concatenate([[0.0], np.cumsum(np.where(self.ok, self.n, 0.0))])
        taus = np.arange(first, len(self.w))
        if taus.size == 0:
            return None, 0, 0
        wb, gb, vb, nb = cw[taus], cwg[taus], cw2[taus], cn[taus]
        wa, ga, va, na = cw[-1] - wb, cwg[-1] - gb, cw2[-1] - vb, cn[-1] - nb
        good = (na >= floor) & (nb >= need) & (wa > 0) & (wb > 0)
        if not good.any():
            return None, 0, 0
        taus, wb, gb, vb, nb, wa, ga, va, na = (x[good] for x in (taus, wb, gb, vb, nb, wa, ga, va, na))
        step = ga / wa - gb / wb
        z = direction * step / np.sqrt(va / wa**2 + vb / wb**2)
        k = int(np.argmax(z))
        if z[k] <= 0:
            return None, int(taus.size), 0
        return (float(z[k]), float(step[k]), int(na[k]), int(nb[k])), int(taus.size), int(taus[k])


def _level(metric: str, mean: float, total: dict) -> float:
    """The metric's value for a mean of the compared quantity (latency: log-latency back to a
    p95 in milliseconds, with the feature's spread)."""
    if metric != "latency_p95_ms":
        return float(mean)
    n, s, ss = total["lat_n"].sum(), total["lat_lsum"].sum(), total["lat_lss"].sum()
    sd = math.sqrt(max(ss / n - (s / n) ** 2, 0.0)) if n else 0.0
    return math.exp(mean + 1.645 * sd)
