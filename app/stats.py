"""The statistical tests, on aggregates (counts, sums, histograms), never on raw rows.

- Proportions (error rate, negative-feedback rate): matched hour-of-day rates shrunk toward the
  pooled rate, checked against the exact binomial tail (`matched_proportions`).
  `stratified_proportions` (Cochran-Mantel-Haenszel) is no longer called by the detector.
- Two-sample and one-sample z tests used by triage and attribution live here too.
- Skewed or bounded measures (quality score, latency, cost): a stratified Mann-Whitney
  (Wilcoxon rank-sum summed over strata) computed exactly from binned counts, ties included.
- Multiple testing: Bonferroni over the windows scanned, Holm over features x metrics.
- Sequential: the normal-mixture SPRT (mSPRT), whose p-value stays valid at every look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sst


@dataclass(frozen=True)
class TestResult:
    z: float  # positive = the window is larger than the baseline
    p_greater: float  # one-sided p for "window larger"
    p_less: float  # one-sided p for "window smaller"


def _result(num: float, var: float) -> TestResult:
    if var <= 0:
        return TestResult(0.0, 1.0, 1.0)
    z = num / math.sqrt(var)
    return TestResult(z, float(sst.norm.sf(z)), float(sst.norm.cdf(z)))


def stratified_proportions(
    x_base: np.ndarray, n_base: np.ndarray, x_win: np.ndarray, n_win: np.ndarray
) -> TestResult:
    """Cochran-Mantel-Haenszel: events in the window against the same strata's baseline."""
    x_base, n_base, x_win, n_win = (np.asarray(a, dtype=float) for a in (x_base, n_base, x_win, n_win))
    n = n_base + n_win
    m = x_base + x_win
    ok = (n_base > 0) & (n_win > 0) & (n > 1)
    if not ok.any():
        return TestResult(0.0, 1.0, 1.0)
    n, m, nb, nw, xw = n[ok], m[ok], n_base[ok], n_win[ok], x_win[ok]
    expected = nw * m / n
    var = nb * nw * m * (n - m) / (n * n * (n - 1))
    # continuity correction toward zero keeps small counts honest
    diff = float((xw - expected).sum())
    diff = math.copysign(max(abs(diff) - 0.5, 0.0), diff)
    return _result(diff, float(var.sum()))


MAX_RATE_PRIOR = 1e4


def rate_prior(x: np.ndarray, n: np.ndarray) -> float:
    """How many requests' worth of the pooled rate each stratum's rate is shrunk by: the
    method-of-moments strength of a beta prior over the strata. Strata that agree (their rates
    vary no more than sampling does) are pooled; a real hour-of-day pattern keeps its own."""
    ok = n > 0
    if ok.sum() < 2:
        return MAX_RATE_PRIOR
    p = x[ok].sum() / n[ok].sum()
    if p <= 0 or p >= 1:
        return MAX_RATE_PRIOR
    rates = x[ok] / n[ok]
    between = float(np.average((rates - p) ** 2, weights=n[ok]))
    sampling = p * (1 - p) * ok.sum() / n[ok].sum()
    tau2 = between - sampling
    if tau2 <= 0:
        return MAX_RATE_PRIOR
    return float(min(max(p * (1 - p) / tau2 - 1, 0.0), MAX_RATE_PRIOR))


def matched_proportions(
    x_base: np.ndarray, n_base: np.ndarray, x_win: np.ndarray, n_win: np.ndarray
) -> tuple[TestResult, float]:
    """Events in the window against the baseline rate of the same hours of day.

    Each stratum's baseline rate is shrunk toward the pooled rate (`rate_prior`: an hour of day
    seen on only a day or two of baseline says little on its own unless the hours really
    differ); the window's expected count is the sum of its strata's rates, with the baseline's
    own uncertainty in the variance, checked against the exact binomial tail. Returns the test
    and the matched baseline rate."""
    xb, nb, xw, nw = (np.asarray(a, dtype=float) for a in (x_base, n_base, x_win, n_win))
    if nb.sum() <= 0 or nw.sum() <= 0:
        return TestResult(0.0, 1.0, 1.0), float("nan")
    prior = rate_prior(xb, nb)
    pooled = (xb.sum() + 0.5) / (nb.sum() + 1)  # Jeffreys: no events is not a rate of zero
    rate = (xb + prior * pooled) / (nb + prior)
    expected = float((nw * rate).sum())
    # The baseline's own uncertainty: each stratum's share of its rate from its own requests,
    # and the pooled part shared by every stratum (added as standard deviations: an upper bound).
    own = nb / (nb + prior)
    v = rate * (1 - rate)
    own_var = float((nw * nw * own * own * np.divide(v, nb, out=np.zeros_like(v), where=nb > 0)).sum())
    pooled_var = float((nw * (1 - own)).sum()) ** 2 * pooled * (1 - pooled) / nb.sum()
    var = float((nw * v).sum()) + (math.sqrt(own_var) + math.sqrt(pooled_var)) ** 2
    diff = float(xw.sum()) - expected
    diff = math.copysign(max(abs(diff) - 0.5, 0.0), diff)
    matched = expected / nw.sum()
    # The exact tail against the rate the baseline cannot rule out: one more event than seen.
    cautious = max(matched, (xb.sum() + 1) / (nb.sum() + 1))
    return conservative(_result(diff, max(var, 1e-12)), exact_binomial(xw.sum(), nw.sum(), cautious)), matched


def exact_binomial(x: float, n: float, p0: float) -> TestResult:
    """`x` events in `n` trials against a known rate `p0`, from the binomial tails: honest
    where the normal approximation is not (a few events in a short window)."""
    n_i, x_i = int(round(n)), int(round(x))
    if n_i <= 0:
        return TestResult(0.0, 1.0, 1.0)
    p0 = min(max(p0, 1e-9), 1 - 1e-9)
    sd = math.sqrt(n_i * p0 * (1 - p0))
    return TestResult(
        (x_i - n_i * p0) / sd, float(sst.binom.sf(x_i - 1, n_i, p0)), float(sst.binom.cdf(x_i, n_i, p0))
    )


def conservative(a: TestResult, b: TestResult) -> TestResult:
    """The weaker of two tests of the same question, side by side."""
    return TestResult(min(a.z, b.z, key=abs), max(a.p_greater, b.p_greater), max(a.p_less, b.p_less))


def stratified_rank_test(base: np.ndarray, win: np.ndarray) -> TestResult:
    """Mann-Whitney summed over strata, from histograms `base[s, b]` and `win[s, b]` whose bins
    are ordered by value. Ties (same bin) count one half, and the variance is tie-corrected."""
    base = np.asarray(base, dtype=float)
    win = np.asarray(win, dtype=float)
    n1 = base.sum(axis=1)
    n2 = win.sum(axis=1)
    ok = (n1 > 0) & (n2 > 0)
    if not ok.any():
        return TestResult(0.0, 1.0, 1.0)
    base, win, n1, n2 = base[ok], win[ok], n1[ok], n2[ok]
    below = np.cumsum(base, axis=1) - base  # baseline values strictly below each bin
    u = (win * (below + 0.5 * base)).sum(axis=1)  # pairs where the window value is larger
    n = n1 + n2
    t = base + win
    ties = (t**3 - t).sum(axis=1)
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    return _result(float((u - n1 * n2 / 2.0).sum()), float(var.sum()))


def two_proportions_z(x1: float, n1: float, x0: float, n0: float) -> float:
    """z of rate x1/n1 above rate x0/n0, pooled standard error (0 without data)."""
    if not n1 or not n0:
        return 0.0
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n1 + 1 / n0))
    return (x1 / n1 - x0 / n0) / se


def two_means_z(s1: float, ss1: float, n1: float, s0: float, ss0: float, n0: float) -> float:
    """z of mean s1/n1 above mean s0/n0 from sums and sums of squares, pooled variance
    (0 with fewer than two values on a side)."""
    if n1 < 2 or n0 < 2:
        return 0.0
    var = max((ss1 + ss0) / (n1 + n0) - ((s1 + s0) / (n1 + n0)) ** 2, 1e-12)
    return (s1 / n1 - s0 / n0) / math.sqrt(var * (1 / n1 + 1 / n0))


def welch_z(m1: float, sd1: float, n1: float, m0: float, sd0: float, n0: float) -> float:
    """z of mean m1 above mean m0 from each side's mean, standard deviation and count,
    unpooled (Welch) standard error (0 with fewer than two values on a side or no spread)."""
    if not n1 or not n0 or n1 < 2 or n0 < 2:
        return 0.0
    se = math.sqrt(sd1**2 / n1 + sd0**2 / n0)
    return (m1 - m0) / se if se > 0 else 0.0


def excess_z(total: float, n: float, mean0: float, var0: float) -> float:
    """z of n values summing to `total` above a known mean and variance."""
    if n <= 0 or var0 <= 0:
        return 0.0
    return (total - n * mean0) / math.sqrt(n * var0)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def histogram_quantile(counts: np.ndarray, edges: np.ndarray, q: float) -> float | None:
    """Quantile of a histogram whose bin i spans [edges[i], edges[i+1]), linear inside a bin."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return None
    cum = np.cumsum(counts)
    target = q * total
    i = int(np.searchsorted(cum, target))
    i = min(i, counts.size - 1)
    before = cum[i] - counts[i]
    frac = (target - before) / counts[i] if counts[i] > 0 else 0.5
    return float(edges[i] + frac * (edges[i + 1] - edges[i]))


# Confidence intervals ------------------------------------------------------------------

Z95 = 1.959963984540054
Z90 = 1.6448536269514722  # one-sided 5%


def wilson_interval(x: float, n: float, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(mean: float, sd: float, n: float, z: float = Z95) -> tuple[float, float]:
    if n <= 1 or not math.isfinite(sd):
        return (float("nan"), float("nan"))
    half = z * sd / math.sqrt(n)
    return (mean - half, mean + half)


def quantile_rank_levels(n: float, q: float = 0.95, z: float = Z95) -> tuple[float, float]:
    """Distribution-free interval for a quantile: the quantile levels of the order statistics
    that bracket it with ~95% confidence (binomial normal approximation)."""
    if n <= 0:
        return (0.0, 1.0)
    half = z * math.sqrt(q * (1 - q) / n)
    return (max(0.0, q - half), min(1.0, q + half))


# Sequential test -----------------------------------------------------------------------


def msprt_lambda(delta: float, var_delta: float, tau2: float) -> float:
    """Mixture likelihood ratio for an estimate `delta` ~ N(theta, var_delta) of H0 theta = 0
    against the mixture theta ~ N(0, tau2). Rejecting when it reaches 1/alpha keeps the
    type I error below alpha however often it is looked at (Ville's inequality)."""
    if var_delta <= 0 or tau2 <= 0:
        return 1.0
    ratio = var_delta / (var_delta + tau2)
    exponent = delta * delta * tau2 / (2 * var_delta * (var_delta + tau2))
    return math.sqrt(ratio) * math.exp(min(exponent, 700.0))


def always_valid_p(delta: float, var_delta: float, tau2: float, previous: float = 1.0) -> float:
    """The always-valid p-value after one more look: the running minimum of 1 / Lambda."""
    return min(previous, 1.0 / max(msprt_lambda(delta, var_delta, tau2), 1e-300), 1.0)


# Sample size -----------------------------------------------------------------------------


def sample_size_proportion(p: float, delta: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Canary requests needed to detect a rise from p to p + delta against a large control."""
    p2 = min(max(p + delta, 1e-6), 1 - 1e-6)
    p = min(max(p, 1e-6), 1 - 1e-6)
    za = sst.norm.isf(alpha / 2)
    zb = sst.norm.isf(1 - power)
    n = (za * math.sqrt(p * (1 - p)) + zb * math.sqrt(p2 * (1 - p2))) ** 2 / (delta * delta)
    return int(math.ceil(n))
