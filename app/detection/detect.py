"""Degradation tests and onsets, per feature and metric.

For each feature and metric the hourly series is scanned for the window that best explains
a degradation: a step (lasting to the end), a ramp (gradual drift reaching its full size
after 6 to 72 hours) or a transient (1 to 24 hours). The scan is a weighted least-squares
fit with hour-of-day effects, so a daily cycle (busy afternoons, nightly quality dips) is
absorbed by the seasonal terms rather than taken for a change. The chosen window is then
tested against every earlier hour *of the same hours of day* (stratified tests, app/stats.py),
Bonferroni-adjusted for the number of windows scanned and Holm-adjusted across all features
and metrics examined. A degradation must also clear the minimum effect and sample sizes in
the thresholds file, else it is no finding; too few samples make it "inconclusive".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np

from app import stats
from app.detection.findings import Inconclusive, format_value
from app.detection.hourly import Histogram, HourlyData, hourly_p95
from app.detection.slices import SliceDetection
from app.detection.thresholds import METRIC_DIRECTION, METRIC_NAMES, Thresholds
from app.storage.schema import SPLIT_DIMENSIONS
from app.storage.store import Store

RAMP_HOURS = (6, 12, 24, 36, 48, 72)
TRANSIENT_HOURS = (1, 2, 3, 4, 6, 12, 24)
MIN_BASELINE_HOURS = 6  # hours of baseline before the first onset the scan may place
PROPORTIONS = {"error_rate": ("errors", "n"), "negative_feedback_rate": ("neg_n", "fb_n")}
SAMPLE_NOUN = {"quality_score": "scored requests", "negative_feedback_rate": "requests with feedback"}


@dataclass(frozen=True)
class Detection:
    """A tested degradation window, before attribution."""

    feature: str
    metric: str
    onset: datetime
    end: datetime
    shape: str
    baseline: float
    current: float
    onset_lo: datetime  # onsets the data cannot tell apart from `onset` (likelihood-ratio band)
    onset_hi: datetime
    p_raw: float  # the window's test, Bonferroni-adjusted for the windows scanned
    n_baseline: int
    n_current: int
    severity: float
    p_value: float = 1.0  # after Holm across features x metrics
    slice: tuple[str, str] | None = None  # (dimension, value) when only a slice degraded
    seasonal: tuple[float, ...] | None = None  # baseline mean of `measure` per hour of day
    # A ramp's fit per start (time, log-likelihood against the best), for the onset's prior.
    ramp_profile: tuple[tuple[datetime, float], ...] | None = None


@dataclass(frozen=True)
class WindowTest:
    result: stats.TestResult
    baseline: float | None
    current: float | None
    n_baseline: int
    n_current: int


# Hourly series -----------------------------------------------------------------------------


def metric_series(d: HourlyData, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The hourly value of a metric and its weight (the number of observations)."""
    s = d.sums
    if metric in PROPORTIONS:
        num, den = PROPORTIONS[metric]
        w = s[den]
        y = np.divide(s[num], w, out=np.zeros_like(w), where=w > 0)
    elif metric == "quality_score":
        w = s["q_n"]
        y = np.divide(s["q_sum"], w, out=np.zeros_like(w), where=w > 0)
    elif metric == "cost_per_request_usd":
        # The hourly mean of log cost: real token counts have tails that make the plain mean
        # jump with one long request; the test itself is a rank test on the histogram.
        h = d.hists[metric]
        w = h.counts.sum(axis=1)
        y = np.divide(h.counts @ log_centres(h), w, out=np.zeros_like(w), where=w > 0)
    else:
        w = s["lat_n"].copy()
        y = np.nan_to_num(hourly_p95(d.hists[metric]), nan=0.0)
    return y, np.where(np.isfinite(y), w, 0.0)


def log_centres(h: Histogram) -> np.ndarray:
    """The log of each bin's centre for a log-binned histogram (latency, cost)."""
    logs = np.log(h.edges)
    return (logs[:-1] + logs[1:]) / 2


def _stratum_matrix(strata: np.ndarray) -> np.ndarray:
    return (strata[:, None] == np.arange(24)[None, :]).astype(float)


@dataclass(frozen=True)
class Windows:
    """Every window the scan examines: start, end, shape and shape length per row. Each is a
    regressor over the hours: rising linearly by 1/`rate` per hour from `start` to `mid`
    (a ramp: (h - start + 0.5) / length), then 1 from `mid` to `end`, 0 elsewhere."""

    start: np.ndarray
    end: np.ndarray
    shape: np.ndarray
    length: np.ndarray
    mid: np.ndarray
    rate: np.ndarray


@lru_cache(maxsize=8)  # every feature and metric of one analysis scans the same windows
def candidate_windows(hours: int, first: int, min_hours: int) -> Windows:
    taus = np.arange(first, max(hours - min_hours + 1, first))
    parts = [(taus, np.full(taus.size, hours), "step", 0, taus, 1)]
    for r in RAMP_HOURS:
        parts.append((taus, np.full(taus.size, hours), "ramp", r, np.minimum(taus + r, hours), r))
    for length in TRANSIENT_HOURS:
        tt = taus[taus + length < hours]
        parts.append((tt, tt + length, "transient", length, tt, 1))
    return Windows(
        start=np.concatenate([p[0] for p in parts]),
        end=np.concatenate([p[1] for p in parts]),
        shape=np.concatenate([np.full(p[0].size, p[2]) for p in parts]),
        length=np.concatenate([np.full(p[0].size, p[3]) for p in parts]),
        mid=np.concatenate([p[4] for p in parts]),
        rate=np.concatenate([np.full(p[0].size, float(p[5])) for p in parts]),
    )


def _window_terms(
    windows: Windows, w: np.ndarray, y_dm: np.ndarray, strata: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`_fit_terms` for the scan's windows, from running sums over the hours (per hour of day
    for the stratum sums): each window is a linear piece and a flat piece, so its sums are
    differences of running sums, without a row per window and hour."""
    hours = np.arange(w.size, dtype=float)
    v = w * y_dm

    def run(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])

    def seg(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return p[hi] - p[lo]

    a, m, e = windows.start, windows.mid, windows.end
    off, r = a - 0.5, windows.rate
    pw, phw, ph2w = run(w), run(hours * w), run(hours * hours * w)
    pv, phv = run(v), run(hours * v)
    cross = (seg(phv, a, m) - off * seg(pv, a, m)) / r + seg(pv, m, e)
    raw = (seg(ph2w, a, m) - 2 * off * seg(phw, a, m) + off * off * seg(pw, a, m)) / (r * r) + seg(pw, m, e)
    s = _stratum_matrix(strata)
    sw, shw = run(w[:, None] * s), run((hours * w)[:, None] * s)  # [H + 1, 24]
    gws = (seg(shw, a, m) - off[:, None] * seg(sw, a, m)) / r[:, None] + seg(sw, m, e)
    ws = w @ s
    energy = raw - (gws * gws / np.where(ws > 0, ws, 1.0)).sum(axis=1)
    return cross, np.where(energy > 1e-9 * np.maximum(raw, 1e-300), energy, 0.0)


def _fit_terms(
    g: np.ndarray, g2: np.ndarray, w: np.ndarray, y_dm: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each regressor (rows of `g`) fitted with hour-of-day effects by weighted least
    squares: its cross-product with the series and its energy, both after removing each hour
    of day's weighted mean. `y_dm` is already demeaned, so the cross-product needs no demeaned
    regressor (sum_h w g_dm y_dm = sum_h w g y_dm), and the energy is sum w g^2 less each
    stratum's (sum w g)^2 / sum w: two products with the weights instead of a demeaned copy
    of every regressor."""
    ws = w @ s
    gws = g @ (w[:, None] * s)  # [K, 24]
    cross = g @ (w * y_dm)
    raw = g2 @ w
    energy = raw - (gws * gws / np.where(ws > 0, ws, 1.0)).sum(axis=1)
    # A regressor constant within every hour of day carries no change: rounding leaves a dust.
    return cross, np.where(energy > 1e-9 * np.maximum(raw, 1e-300), energy, 0.0)


@dataclass(frozen=True)
class ScanResult:
    start: int
    end: int
    shape: str
    start_lo: int  # the band of starts whose fit is not clearly worse (same shape)
    start_hi: int
    tried: int
    sigma2: float = 0.0  # residual variance per unit weight of the fit (hour-of-day + window)


def scan(
    y: np.ndarray,
    w: np.ndarray,
    strata: np.ndarray,
    first: int,
    direction: int,
    min_hours: int = 1,
    min_weight: float = 0.0,
    min_inside: float | None = None,
) -> ScanResult | None:
    """The window whose shape best explains a move in the bad direction, by the reduction in
    weighted squared error of a fit with hour-of-day effects; and how many windows were tried.
    Windows with fewer than `min_inside` observations inside them (default `min_weight`) or
    fewer than `min_weight` before them are not tried."""
    windows = candidate_windows(len(y), first, min_hours)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    inside = min_weight if min_inside is None else min_inside
    keep = (cum[windows.end] - cum[windows.start] >= inside) & (cum[windows.start] >= min_weight)
    if not keep.any() or w.sum() <= 0:
        return None
    s = _stratum_matrix(strata)
    y_dm = y - ((w * y) @ s / np.where(w @ s > 0, w @ s, 1.0)) @ s.T
    cross, energy = _window_terms(windows, w, y_dm, strata)
    gain = np.where(
        keep & (energy > 0) & (np.sign(cross) == direction), cross**2 / np.maximum(energy, 1e-12), -1.0
    )
    best = int(np.argmax(gain))
    if gain[best] <= 0:
        return None
    # Residual variance per unit weight, for the band of starts within chi2(1, 95%) of the best.
    dof = max(int((w > 0).sum()) - 25, 1)
    sigma2 = max(float((w * y_dm * y_dm).sum()) - float(gain[best]), 0.0) / dof
    # Parsimony: a ramp or a transient has one parameter more than a step (its length), so it
    # must beat the best step by a likelihood ratio of chi2(1, 99%) to be preferred.
    steps = windows.shape == "step"
    if windows.shape[best] != "step" and steps.any():
        best_step = int(np.flatnonzero(steps)[np.argmax(gain[steps])])
        if gain[best_step] > 0 and gain[best] - gain[best_step] < 6.63 * sigma2:
            best = best_step
    shape, length = windows.shape[best], windows.length[best]
    # A ramp's start trades off against its length, so its band spans every ramp length.
    alike = windows.shape == shape
    if shape != "ramp":
        alike &= windows.length == length
    same = alike & keep & (gain >= gain[best] - 3.84 * sigma2)
    starts = windows.start[same] if same.any() else windows.start[best : best + 1]
    return ScanResult(
        int(windows.start[best]),
        int(windows.end[best]),
        str(shape),
        int(starts.min()),
        int(starts.max()),
        int(keep.sum()),
        sigma2,
    )


RAMP_STEP_HOURS = 0.25  # resolution of a ramp's start
RAMP_MAX_HOURS = 96
RAMP_SEARCH_HOURS = 6  # around the scan's band of starts


def ramp_start(
    y: np.ndarray, w: np.ndarray, strata: np.ndarray, chosen: ScanResult, first: int, direction: int
) -> RampFit | None:
    """A ramp's start, in hours from the series' start: where the series begins to move. The
    scan's ramps start on whole hours and reach their full size after one of a few lengths, so
    a ramp of another length is fitted by one that starts hours early or late. Here the broken
    line (flat at the baseline, rising linearly from the start for any whole number of hours up
    to four days, flat again) is fitted on quarter-hour starts around the scan's band, with the
    same hour-of-day effects; returns the best start and the band of starts within chi2(1, 95%)
    of it."""
    hours = len(y)
    lo = max(float(first), chosen.start_lo - RAMP_SEARCH_HOURS)
    hi = min(float(hours - 1), chosen.start_hi + RAMP_SEARCH_HOURS)
    if hi <= lo or chosen.sigma2 <= 0:
        return None
    taus = np.arange(lo, hi + 1e-9, RAMP_STEP_HOURS)
    centre = np.arange(hours) + 0.5
    s = _stratum_matrix(strata)
    ws = w @ s
    y_dm = y - ((w * y) @ s / np.where(ws > 0, ws, 1.0)) @ s.T
    gain = np.full(taus.size, -1.0)  # best over lengths, per start
    for length in range(1, RAMP_MAX_HOURS + 1):
        g = np.clip((centre[None, :] - taus[:, None]) / length, 0.0, 1.0)
        cross, energy = _fit_terms(g, g * g, w, y_dm, s)
        ok = (energy > 0) & (np.sign(cross) == direction)
        gain = np.maximum(gain, np.where(ok, cross**2 / np.maximum(energy, 1e-12), -1.0))
    best = int(np.argmax(gain))
    if gain[best] <= 0:
        return None
    close = taus[gain >= gain[best] - 3.84 * chosen.sigma2]
    loglik = np.where(gain > 0, (gain - gain[best]) / (2 * chosen.sigma2), -np.inf)
    return RampFit(float(taus[best]), float(close.min()), float(close.max()), taus, loglik)


@dataclass(frozen=True)
class RampFit:
    """A ramp's start, its band (hours from the series' start) and the fit of every start
    tried (log-likelihood relative to the best)."""

    start: float
    lo: float
    hi: float
    taus: np.ndarray
    loglik: np.ndarray


# The window's test ---------------------------------------------------------------------


def _by_stratum(values: np.ndarray, mask: np.ndarray, strata: np.ndarray) -> np.ndarray:
    return np.bincount(strata[mask], weights=values[mask], minlength=24)


def compare_window(
    d: HourlyData, metric: str, base: np.ndarray, win: np.ndarray, after: np.ndarray | None = None
) -> WindowTest:
    """Window hours against baseline hours of the same hours of day. The baseline value is
    seasonally matched: each hour of day weighted as it is in the window. `after`: the hours
    after a window that ended, the baseline of the hours of day not seen before it (quality,
    latency and cost)."""
    s, strata = d.sums, d.strata
    if metric in PROPORTIONS:
        num, den = PROPORTIONS[metric]
        xb, nb = _by_stratum(s[num], base, strata), _by_stratum(s[den], base, strata)
        xw, nw = _by_stratum(s[num], win, strata), _by_stratum(s[den], win, strata)
        if nb.sum() <= 0 or nw.sum() <= 0:
            return WindowTest(stats.TestResult(0.0, 1.0, 1.0), None, None, int(nb.sum()), int(nw.sum()))
        result, baseline = stats.matched_proportions(xb, nb, xw, nw)
        return WindowTest(result, baseline, float(xw.sum() / nw.sum()), int(nb.sum()), int(nw.sum()))
    hist = d.hists[metric]
    onehot = _stratum_matrix(strata)
    hb = onehot[base].T @ hist.counts[base]  # [24, bins]
    hw = onehot[win].T @ hist.counts[win]
    nb, nw = hb.sum(axis=1), hw.sum(axis=1)
    # Hours of day the baseline has not seen yet (a range with no history before it, an
    # episode in the first evening) are compared with the same hours of day after the window
    # when it has ended: the only like-for-like baseline they have. (The pooled baseline would
    # take a feature's usual evening for a change.)
    unseen = (nb <= 0) & (nw > 0)
    if after is not None and unseen.any():
        ha = onehot[after].T @ hist.counts[after]
        hb = np.where(unseen[:, None], ha, hb)
        nb = hb.sum(axis=1)
    n_base = int(nb.sum())
    ok = nb > 0
    result = stats.stratified_rank_test(hb[ok], hw[ok])
    n_cur = nw[ok].sum()
    if n_cur == 0:
        return WindowTest(result, None, None, n_base, 0)
    if metric == "latency_p95_ms":
        matched = ((nw[ok] / nb[ok])[:, None] * hb[ok]).sum(axis=0)
        baseline = stats.histogram_quantile(matched, hist.edges, 0.95)
        current = stats.histogram_quantile(hw[ok].sum(axis=0), hist.edges, 0.95)
    else:
        n_key, sum_key = ("q_n", "q_sum") if metric == "quality_score" else ("cost_n", "cost_sum")
        sb, cb = _by_stratum(s[sum_key], base, strata), _by_stratum(s[n_key], base, strata)
        sw, cw = _by_stratum(s[sum_key], win, strata), _by_stratum(s[n_key], win, strata)
        if after is not None:
            sa, ca = _by_stratum(s[sum_key], after, strata), _by_stratum(s[n_key], after, strata)
            sb, cb = np.where(cb > 0, sb, sa), np.where(cb > 0, cb, ca)
        mean_b = np.divide(sb, cb, out=np.zeros(24), where=cb > 0)
        ok2 = (cb > 0) & (cw > 0)
        baseline = float((cw[ok2] * mean_b[ok2]).sum() / cw[ok2].sum()) if ok2.any() else None
        current = float(sw[ok2].sum() / cw[ok2].sum()) if ok2.any() else None
    return WindowTest(result, baseline, current, n_base, int(n_cur))


SEASONAL_PRIOR = 50.0  # an hour of day's own baseline mean counts as shrunk by this many values


def seasonal_means(
    d: HourlyData, metric: str, base: np.ndarray, threshold: float
) -> tuple[float, ...] | None:
    """The baseline mean of the per-request `measure` for each hour of day (shrunk toward the
    pooled mean), so the onset's change point compares like hours with like: an evening that
    is always slower is not taken for the step."""
    strata = d.strata
    if metric in ("latency_p95_ms", "cost_per_request_usd"):  # log, as ONSET_MEASURE_SQL reads it
        h = d.hists[metric]
        num_h, den_h = h.counts @ log_centres(h), h.counts.sum(axis=1)
    else:
        key = {
            "error_rate": ("errors", "n"),
            "negative_feedback_rate": ("neg_n", "fb_n"),
            "quality_score": ("q_sum", "q_n"),
        }
        num_h, den_h = d.sums[key[metric][0]], d.sums[key[metric][1]]
    num = np.bincount(strata[base], weights=num_h[base], minlength=24)
    den = np.bincount(strata[base], weights=den_h[base], minlength=24)
    if den.sum() <= 0:
        return None
    pooled = num.sum() / den.sum()
    return tuple(float(x) for x in (num + SEASONAL_PRIOR * pooled) / (den + SEASONAL_PRIOR))


def dispersion(d: HourlyData, metric: str, y: np.ndarray, w: np.ndarray, sigma2: float) -> float:
    """How much more the hourly values scatter than independent requests would make them
    (at least 1): users with their own habits and clumps of traffic make requests of one hour
    alike. The window's test is widened by it. (Latency's hourly p95 has no simple per-request
    variance: 1.)"""
    total = w.sum()
    if total <= 0 or sigma2 <= 0:
        return 1.0
    if metric in PROPORTIONS:
        p = float((w * y).sum() / total)
        unit = p * (1 - p)
    elif metric in ("quality_score", "cost_per_request_usd"):
        h = d.hists[metric]
        counts = h.counts.sum(axis=0)
        # In the unit of the hourly series: score, or log cost.
        mid = log_centres(h) if metric == "cost_per_request_usd" else (h.edges[:-1] + h.edges[1:]) / 2
        if counts.sum() <= 1:
            return 1.0
        mean = (counts * mid).sum() / counts.sum()
        unit = float((counts * (mid - mean) ** 2).sum() / counts.sum())
    else:
        return 1.0
    return max(1.0, sigma2 / unit) if unit > 0 else 1.0


# Metrics whose window test is widened by the users' design effect (below), and the z above
# which it is not read: no design effect seen in practice brings such a window back under the
# significance level after Bonferroni and Holm, and the query is a scan of the feature's rows.
CLUSTERED_METRICS = ("quality_score",)
CLUSTER_CHECK_Z = 15.0


def user_design_effect(store: Store, feature: str, start: datetime, onset: datetime, end: datetime) -> float:
    """How much wider the difference between the window's mean score and the baseline's is when
    each user's requests are taken as one cluster (the cluster-robust variance, users as
    clusters) than when every request is independent; at least 1. Users keep their own habits
    (one grades lower than another, a heavy user writes a tenth of the requests), so a quiet
    feature's window can be a handful of users: its mean moves with who came, not with what
    changed."""
    rows = store.rows(
        """WITH x AS (SELECT coalesce(user_id, request_id) AS u, quality_score AS q,
                             timestamp >= ? AS win
                      FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?
                        AND quality_score IS NOT NULL AND error IS NULL),
                m AS (SELECT win, avg(q) AS mu, count(*) AS n, var_pop(q) AS v FROM x GROUP BY win),
                c AS (SELECT x.win, sum(x.q - m.mu) AS s FROM x JOIN m USING (win)
                      GROUP BY x.u, x.win)
           SELECT m.win, any_value(m.n), any_value(m.v), sum(c.s * c.s)
           FROM m JOIN c USING (win) GROUP BY m.win""",
        [onset, feature, start, end],
    )
    parts = {bool(r[0]): (float(r[1]), float(r[2] or 0.0), float(r[3] or 0.0)) for r in rows}
    if len(parts) < 2:
        return 1.0
    iid = sum(v / n for n, v, _ in parts.values() if n > 0)
    robust = sum(c / (n * n) for n, _, c in parts.values() if n > 0)
    return max(1.0, robust / iid) if iid > 0 else 1.0


def window_floor(need: int) -> int:
    """Observations a degraded window needs: a tenth of the baseline's, at least 20. A short
    outage in a small feature holds few requests; the exact tests keep it honest."""
    return max(20, need // 10)


def threshold_effect(t: Thresholds, metric: str, baseline: float) -> float:
    m = t.metric(metric)
    return max(m.min_effect, m.min_relative * abs(baseline), 1e-12)


# Per feature and metric ------------------------------------------------------------------


def detect_metric(
    d: HourlyData, metric: str, since: datetime, t: Thresholds, store: Store | None = None
) -> Detection | Inconclusive | None:
    """The feature-metric's most likely degradation window and its test. With `store`, a score
    window's test is also widened by the users' design effect (`user_design_effect`)."""
    direction = METRIC_DIRECTION[metric]
    need = t.metric(metric).min_samples
    y, w = metric_series(d, metric)
    first_i = max(d.index_of(since), 0)
    in_window = w[first_i:].sum()
    if w.sum() == 0:
        return None  # the metric is not recorded for this feature
    if in_window < 2 * need:
        noun = SAMPLE_NOUN.get(metric, "requests")
        return Inconclusive(
            d.feature,
            metric,
            f"only {int(in_window)} {noun} in the window; at least {2 * need} are needed to judge",
        )
    has_data = np.flatnonzero(w > 0)
    first = max(first_i, int(has_data[0]) + MIN_BASELINE_HOURS)
    chosen = scan(y, w, d.strata, first, direction, int(t.min_window_hours), need, window_floor(need))
    if chosen is None:
        return None
    start, end, shape, tried = chosen.start, chosen.end, chosen.shape, chosen.tried
    hours = np.arange(d.hours)
    test = compare_window(d, metric, hours < start, (hours >= start) & (hours < end), hours >= end)
    if test.baseline is None or test.current is None:
        return None
    effect = direction * (test.current - test.baseline)
    needed = threshold_effect(t, metric, test.baseline)
    if effect < needed:
        return None
    if test.n_current < window_floor(need) or test.n_baseline < need:
        noun = SAMPLE_NOUN.get(metric, "requests")
        return Inconclusive(
            d.feature,
            metric,
            (
                f"{metric} moved from {format_value(metric, test.baseline)} to "
                f"{format_value(metric, test.current)} from {d.time_of(start):%Y-%m-%d %H:%M}Z, "
                f"but on {test.n_current} {noun} since and {test.n_baseline} before "
                f"(at least {need} each are needed)"
            ),
        )
    seasonal = seasonal_means(d, metric, hours < start, test.baseline)
    phi = dispersion(d, metric, y, w, chosen.sigma2)
    if (
        store is not None
        and metric in CLUSTERED_METRICS
        and abs(test.result.z) / math.sqrt(phi) < CLUSTER_CHECK_Z
    ):
        phi = max(phi, user_design_effect(store, d.feature, d.start, d.time_of(start), d.time_of(end)))
    z = test.result.z / math.sqrt(phi)
    p_one = max(
        test.result.p_greater if direction > 0 else test.result.p_less,
        float(stats.sst.norm.sf(direction * z)),
    )
    onset, onset_lo, onset_hi = d.time_of(start), d.time_of(chosen.start_lo), d.time_of(chosen.start_hi + 1)
    profile = None
    if shape == "ramp":
        fitted = ramp_start(y, w, d.strata, chosen, first, direction)
        if fitted is not None:
            onset, onset_lo, onset_hi = (
                d.start + timedelta(hours=h) for h in (fitted.start, fitted.lo, fitted.hi)
            )
            profile = tuple(
                (d.start + timedelta(hours=float(h)), float(v))
                for h, v in zip(fitted.taus, fitted.loglik, strict=True)
            )
    return Detection(
        feature=d.feature,
        metric=metric,
        onset=onset,
        end=d.time_of(end),
        shape=shape,
        baseline=test.baseline,
        current=test.current,
        onset_lo=onset_lo,
        onset_hi=onset_hi,
        p_raw=min(1.0, p_one * tried),
        n_baseline=test.n_baseline,
        n_current=test.n_current,
        severity=effect / needed,
        seasonal=seasonal,
        ramp_profile=profile,
    )


def detect(
    hourly: dict[str, HourlyData],
    since: datetime,
    t: Thresholds,
    metrics: tuple[str, ...] = METRIC_NAMES,
    slices: list[SliceDetection] | None = None,
    store: Store | None = None,
) -> tuple[list[Detection], list[Inconclusive]]:
    """Significant degradations (Holm across every feature and metric tested) and the
    feature-metrics that could not be judged."""
    tested: list[Detection] = []
    inconclusive: list[Inconclusive] = []
    family = 0
    for name in sorted(hourly):
        for metric in metrics:
            out = detect_metric(hourly[name], metric, since, t, store)
            if isinstance(out, Inconclusive):
                inconclusive.append(out)
            elif out is not None:
                tested.append(out)
            if not isinstance(out, Inconclusive) and hourly[name].sums[_weight_key(metric)].sum() > 0:
                family += 1
    judged = {(i.feature, i.metric) for i in inconclusive}
    from_slices = [
        slice_detection(sd, hourly[sd.feature])
        for sd in slices or []
        if sd.feature in hourly and (sd.feature, sd.metric) not in judged
    ]
    # Holm over the whole family (totals and slices of every feature-metric): untested
    # members count with p = 1.
    every = tested + from_slices
    family *= 2 if slices is not None else 1
    ps = [d.p_raw for d in every] + [1.0] * max(family - len(every), 0)
    adjusted = stats.holm(ps)[: len(every)]
    found: dict[tuple[str, str], Detection] = {}
    for d, p in zip(every, adjusted, strict=True):
        if p < t.significance and (d.feature, d.metric) not in found:  # totals first
            found[(d.feature, d.metric)] = _with_p(d, p)
    return list(found.values()), inconclusive


def slice_detection(sd: SliceDetection, d: HourlyData) -> Detection:
    """A degradation seen only in a slice, as a detection of its feature."""
    end = d.time_of(d.hours)
    return Detection(
        feature=sd.feature,
        metric=sd.metric,
        onset=sd.onset,
        end=end,
        shape="step",
        baseline=sd.baseline,
        current=sd.current,
        onset_lo=sd.onset,
        onset_hi=sd.onset + timedelta(hours=1),
        p_raw=sd.p_raw,
        n_baseline=sd.n_baseline,
        n_current=sd.n_current,
        severity=sd.severity,
        slice=(sd.dimension, sd.value),
    )


def _weight_key(metric: str) -> str:
    return {
        "quality_score": "q_n",
        "error_rate": "n",
        "latency_p95_ms": "lat_n",
        "cost_per_request_usd": "cost_n",
        "negative_feedback_rate": "fb_n",
    }[metric]


def _with_p(d: Detection, p: float) -> Detection:
    return replace(d, p_value=p)


# Onset within the hour -----------------------------------------------------------------

MEASURE_SQL = {
    "error_rate": "CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END",
    "quality_score": "quality_score",
    "latency_p95_ms": (
        "CASE WHEN latency_ms IS NULL OR error IS NOT NULL THEN NULL "
        "WHEN latency_ms > ? THEN 1.0 ELSE 0.0 END"
    ),
    "cost_per_request_usd": "CASE WHEN error IS NULL THEN cost_usd END",
    "negative_feedback_rate": "CASE WHEN feedback = -1 THEN 1.0 WHEN feedback IS NOT NULL THEN 0.0 END",
}


# Where the onset's change point reads another quantity than `measure`: log latency and log
# cost, whose baseline per hour of day comes from their histograms (`seasonal_means`). A
# slowdown or a price change scales the whole distribution; its log mean moves by the log of
# the factor for every request, where the share above the baseline p95 only sees the few that
# cross it (a 1.35x step moves it from 5% to about 10%): the log dates a step with a fraction
# of the requests, which matters in the quiet hours.
ONSET_MEASURE_SQL = {
    "latency_p95_ms": "CASE WHEN error IS NULL AND latency_ms IS NOT NULL "
    "THEN ln(greatest(latency_ms, 0.01)) END",
    "cost_per_request_usd": "CASE WHEN error IS NULL AND cost_usd IS NOT NULL "
    "THEN ln(greatest(cost_usd, 1e-9)) END",
}


def measure(metric: str, baseline: float) -> tuple[str, list]:
    """A per-request quantity whose mean moves with the metric (for p95 latency: the share of
    requests slower than the baseline p95), as SQL with its parameters."""
    return MEASURE_SQL[metric], ([baseline] if metric == "latency_p95_ms" else [])


@dataclass(frozen=True)
class OnsetEstimate:
    at: datetime
    lo: datetime  # the onsets the data cannot tell apart from `at`
    hi: datetime


ONSET_SEARCH_BEFORE = timedelta(hours=3)  # the hourly band can miss a step by an hour or two
ONSET_SEARCH_AFTER = timedelta(hours=2)


def refine_onset(
    store: Store,
    det: Detection,
    base_mean: float,
    base_var: float,
    where: list[tuple[str, str]] | None = None,
    changes: list[datetime] | None = None,
) -> OnsetEstimate:
    """The onset to the nearest 5 minutes, or to the minute of a recorded change: a single
    change point in the contribution of the degraded requests (`where`: the scope's slice
    values, or all) to the feature's metric, searched from three hours before the hourly onset
    band to two hours after it (over a transient's whole episode), on 5-minute buckets. The
    change is of known size (the level of the whole degraded window against each hour of
    day's baseline), so each bucket counts by its requests: an empty night hour neither
    places nor blocks the onset, and one noisy hour just after it does not pull it along.
    `changes`: the times of the feature's recorded changes, a priori as likely to be the
    onset as every other time in the search together (`change_prior`). A ramp keeps the onset
    and band of its broken-line fit (`ramp_start`), or takes a change the fit cannot tell
    from it."""
    hourly = OnsetEstimate(det.onset, det.onset_lo, det.onset_hi)
    if det.shape == "ramp":
        return _ramp_onset(det, changes or []) or hourly
    direction = METRIC_DIRECTION[det.metric]
    lo = det.onset_lo - ONSET_SEARCH_BEFORE
    last = det.end if det.shape == "transient" else min(det.onset_hi + ONSET_SEARCH_AFTER, det.end)
    buckets = _onset_buckets(store, det, base_mean, where, ONSET_BUCKET_MINUTES, lo - LEVEL_BEFORE, det.end)
    if buckets is None:
        return hourly
    starts, n, excess, var = buckets
    if det.metric not in ONSET_MEASURE_SQL:
        var = max(var, base_var)
    # The levels before and after: the day before the search, and from the end of the hourly
    # onset band on (a slice can sit above its feature's baseline before anything changed).
    early = starts < np.datetime64(lo)
    before = float(excess[early].sum() / n[early].sum()) if n[early].sum() > 0 else 0.0
    late = starts >= np.datetime64(det.onset_hi)
    if n[late].sum() <= 0:
        late = ~early
    after = float(excess[late].sum() / n[late].sum())
    size = after - before
    if direction * size <= 0:
        return hourly
    starts, n, excess = starts[~early], n[~early], excess[~early]
    if starts.size < 3:
        return hourly
    # Log-likelihood of a change at each bucket's start against none in the searched range
    # (normal approximation with the per-request variance).
    gain = np.cumsum(((excess - n * (before + after) / 2) * size / var)[::-1])[::-1]
    can = starts < np.datetime64(last)
    if not can.any():
        return hourly
    best = int(np.argmax(np.where(can, gain, -np.inf)))
    if gain[best] <= 0:
        return hourly
    close = can & (gain >= gain[best] - CHI2_95 / 2)
    at = _as_datetime(starts[best])
    band = (_as_datetime(starts[close].min()), _as_datetime(starts[close].max()))
    prior = change_prior(starts, gain, can, changes or [], ONSET_BUCKET_MINUTES)
    if prior is not None:
        at = prior
        band = (min(band[0], at), max(band[1], at))
    return OnsetEstimate(at, band[0], band[1])


CHI2_95 = 3.84
ONSET_BUCKET_MINUTES = 5
LEVEL_BEFORE = timedelta(hours=24)  # read before the search for the level before the onset


def _ramp_onset(det: Detection, changes: list[datetime]) -> OnsetEstimate | None:
    """A ramp's onset at a recorded change when the broken-line fit cannot tell it from its
    best start (the prior of `change_prior`, over the starts the fit tried)."""
    if not det.ramp_profile or not changes:
        return None
    starts = np.array([np.datetime64(t) for t, _ in det.ramp_profile])
    loglik = np.array([v for _, v in det.ramp_profile])
    can = np.isfinite(loglik)
    if not can.any():
        return None
    at = change_prior(starts, loglik, can, changes, int(RAMP_STEP_HOURS * 60), earliest=False)
    if at is None:
        return None
    return OnsetEstimate(at, min(det.onset_lo, at), max(det.onset_hi, at))


def change_prior(
    starts: np.ndarray,
    loglik: np.ndarray,
    can: np.ndarray,
    changes: list[datetime],
    minutes: int,
    earliest: bool = True,
) -> datetime | None:
    """The recorded change taken as the onset, if any. `loglik`: the fit of a change at each
    start (buckets `minutes` wide), `can`: the starts searched. Prior: the onset is at one of
    the recorded changes in the search with probability one half, shared among them, and
    anywhere else with the other half, so the best fitting change is taken when its
    log-likelihood is within log(starts / changes) of the best start's. A change is the
    likeliest cause of a step, and the quiet hours often cannot date one better than a few
    hours. With `earliest` (a step, whose band is minutes to an hour wide), of the changes the
    data cannot tell apart (within chi2(1, 95%) of the best fitting one) the earliest is
    taken: its requests and a later one's were degraded alike."""
    first, stop = starts[can].min(), starts[can].max() + np.timedelta64(minutes, "m")
    inside = [c for c in changes if first <= np.datetime64(c) < stop]
    if not inside:
        return None
    best = float(loglik[can].max())
    fits = []
    for c in inside:
        i = max(int(np.searchsorted(starts, np.datetime64(c), side="right")) - 1, 0)
        fits.append((float(loglik[i]), c))
    value, at = max(fits)
    if best - value > math.log(int(can.sum()) / len(inside)):
        return None
    return min(c for v, c in fits if v >= value - CHI2_95 / 2) if earliest else at


def _as_datetime(x: np.datetime64) -> datetime:
    return x.astype("datetime64[us]").astype(datetime)


def _onset_buckets(
    store: Store,
    det: Detection,
    base_mean: float,
    where: list[tuple[str, str]] | None,
    minutes: int,
    lo: datetime,
    hi: datetime,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """Per bucket between `lo` and `hi`: its start, its requests, and the excess of the
    degraded requests over each hour of day's baseline; and the per-request variance."""
    rows = _bucket_rows(store, det, base_mean, where, minutes, lo, hi, own=True)
    if rows is None or len(rows) < 3:
        return None
    starts = np.array([np.datetime64(r[0]) for r in rows])
    n = np.array([r[1] for r in rows], dtype=float)
    excess = np.array([r[2] for r in rows], dtype=float)
    total = n.sum()
    sq, sm = sum(float(r[3]) for r in rows), sum(float(r[4]) for r in rows)
    return starts, n, excess, max(sq / total - (sm / total) ** 2, 1e-12)


def refine_end(
    store: Store,
    det: Detection,
    onset: datetime,
    data_end: datetime,
    base_mean: float,
    base_var: float,
    where: list[tuple[str, str]] | None = None,
) -> datetime:
    """A transient's end to the nearest 5 minutes: the change point back toward the baseline
    between its onset and two hours after its hourly end."""
    hi = min(det.end + timedelta(hours=2), data_end)
    lo = onset + timedelta(minutes=5)
    if hi <= lo:
        return det.end
    back = -METRIC_DIRECTION[det.metric]
    coarse = _change_point(store, det, base_mean, base_var, where, 15, lo, hi, back)
    if coarse is None:
        return det.end
    fine = _change_point(
        store,
        det,
        base_mean,
        base_var,
        where,
        5,
        max(lo, coarse.at - timedelta(minutes=30)),
        min(hi, coarse.at + timedelta(minutes=30)),
        back,
    )
    return (fine or coarse).at


def _change_point(
    store: Store,
    det: Detection,
    base_mean: float,
    base_var: float,
    where: list[tuple[str, str]] | None,
    minutes: int,
    lo: datetime,
    hi: datetime,
    direction: int,
) -> OnsetEstimate | None:
    """The single change point of the metric between `lo` and `hi` in `direction`."""
    rows = _bucket_rows(store, det, base_mean, where, minutes, lo, hi)
    if rows is None:
        return None
    rows = [r for r in rows if r[1]]
    if len(rows) < 3:
        return None
    n = np.array([r[1] for r in rows], dtype=float)
    s = np.array([r[2] for r in rows], dtype=float)  # excess of the degraded requests
    k = np.arange(1, len(rows))
    n1, s1 = np.cumsum(n)[:-1], np.cumsum(s)[:-1]
    n2, s2 = n.sum() - n1, s.sum() - s1
    diff = s2 / n2 - s1 / n1
    gain = np.where(direction * diff > 0, n1 * n2 / (n1 + n2) * diff**2, 0.0)
    best = int(np.argmax(gain))
    if gain[best] <= 0:
        return None
    # Likelihood-ratio band: change points whose fit is within chi2(1, 95%) of the best, with
    # the per-request variance of the quantity read (over the searched range).
    total = n.sum()
    sq, sm = sum(float(r[3]) for r in rows), sum(float(r[4]) for r in rows)
    var = max(sq / total - (sm / total) ** 2, base_var if det.metric not in ONSET_MEASURE_SQL else 0.0, 1e-12)
    close = k[gain >= gain[best] - 3.84 * var]
    return OnsetEstimate(rows[k[best]][0], rows[int(close.min())][0], rows[int(close.max())][0])


def _bucket_rows(
    store: Store,
    det: Detection,
    base_mean: float,
    where: list[tuple[str, str]] | None,
    minutes: int,
    lo: datetime,
    hi: datetime,
    own: bool = False,
) -> list[tuple] | None:
    """Per bucket: start, observations, excess of the degraded requests over the baseline (of
    their hour of day when known), sum of squares and sum of the quantity read. The counts and
    sums are the feature's (the excess is then the slice's contribution to its metric), or with
    `own` the degraded requests' own."""
    expr, params = measure(det.metric, det.baseline)
    if det.metric in ONSET_MEASURE_SQL:
        if det.seasonal is None:
            return None
        expr, params = ONSET_MEASURE_SQL[det.metric], []
    pred, pred_params = "TRUE", []
    if where:
        pred = " OR ".join(f"{d} = ?" for d, _ in where if d in SPLIT_DIMENSIONS) or "TRUE"
        pred_params = [v for d, v in where if d in SPLIT_DIMENSIONS]
    # Against each hour of day's own baseline when known (a daily cycle is not a change).
    expected, expected_params = "?", [base_mean]
    if det.seasonal is not None:
        expected, expected_params = "list_extract(?::DOUBLE[], hour(timestamp) + 1)", [list(det.seasonal)]
    mine = f" FILTER (WHERE {pred})" if own else ""
    rows = store.rows(
        f"""SELECT time_bucket(INTERVAL '{int(minutes)} minutes', timestamp) AS b,
                   count(x){mine}, coalesce(sum(x - {expected}) FILTER (WHERE {pred}), 0),
                   coalesce(sum(x * x){mine}, 0), coalesce(sum(x){mine}, 0)
            FROM (SELECT *, {expr} AS x FROM requests
                  WHERE feature = ? AND timestamp >= ? AND timestamp < ?)
            GROUP BY 1 ORDER BY 1""",
        [
            *(pred_params if own else []),
            *expected_params,
            *pred_params,
            *(pred_params * 2 if own else []),
            *params,
            det.feature,
            lo,
            hi,
        ],
    )
    return [r for r in rows if r[1]]
