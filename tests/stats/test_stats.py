"""The tests on aggregates agree with textbook versions on raw data, and hold their error rates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sst
from statsmodels.stats.contingency_tables import StratifiedTable

from app import stats


def test_rank_test_from_histograms_matches_mann_whitney_on_raw_values():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 20, 400)
    b = rng.integers(2, 22, 300)
    edges = np.arange(0, 23)
    ha, _ = np.histogram(a, edges)
    hb, _ = np.histogram(b, edges)
    ours = stats.stratified_rank_test(ha[None, :], hb[None, :])
    ref = sst.mannwhitneyu(b, a, alternative="greater", use_continuity=False, method="asymptotic")
    assert abs(ours.p_greater - ref.pvalue) < 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_stratified_proportions_match_statsmodels_cochran_mantel_haenszel(seed: int):
    rng = np.random.default_rng(seed)
    strata = rng.integers(2, 12)
    n_base = rng.integers(50, 5000, strata)
    n_win = rng.integers(20, 2000, strata)
    rate = rng.uniform(0.005, 0.2, strata)
    x_base = rng.binomial(n_base, rate)
    x_win = rng.binomial(n_win, rate * rng.uniform(0.6, 1.6))
    # One 2x2 table per stratum: rows window / baseline, columns event / no event.
    tables = np.stack(
        [[[xw, nw - xw], [xb, nb - xb]] for xb, nb, xw, nw in zip(x_base, n_base, x_win, n_win, strict=True)],
        axis=-1,
    )
    table = StratifiedTable(tables)
    reference = table.test_null_odds(correction=True)

    ours = stats.stratified_proportions(x_base, n_base, x_win, n_win)

    assert ours.z**2 == pytest.approx(reference.statistic, rel=1e-9)
    one_sided = ours.p_greater if ours.z > 0 else ours.p_less
    assert one_sided == pytest.approx(reference.pvalue / 2, rel=1e-9)
    # The sign says which side is worse: the window's odds above the baseline's means z > 0.
    assert (ours.z > 0) == (table.oddsratio_pooled > 1)


def test_stratification_keeps_a_busier_window_from_looking_worse():
    # Afternoons have more errors and the window is mostly afternoons: same rate per stratum.
    rate = np.array([0.01, 0.05])
    n_base, n_win = np.array([5000, 5000]), np.array([500, 4500])
    x_base, x_win = rate * n_base, rate * n_win
    z = stats.stratified_proportions(x_base, n_base, x_win, n_win).z
    assert abs(z) < 0.5
    pooled = stats.stratified_proportions(
        x_base.sum(keepdims=True),
        n_base.sum(keepdims=True),
        x_win.sum(keepdims=True),
        n_win.sum(keepdims=True),
    )
    assert pooled.z > 4  # what an unstratified comparison would wrongly call a regression


def test_holm_is_monotone_and_never_below_raw():
    raw = [0.01, 0.04, 0.03, 0.2]
    adjusted = stats.holm(raw)
    assert adjusted == [0.04, 0.09, 0.09, 0.2]
    assert all(a >= r for a, r in zip(adjusted, raw, strict=True))


def test_histogram_quantile_is_close_to_the_raw_quantile():
    rng = np.random.default_rng(3)
    x = rng.lognormal(7, 0.5, 20000)
    b = np.floor(np.log(x) * 20).astype(int)
    lo = b.min()
    counts = np.bincount(b - lo)
    edges = np.exp(np.arange(lo, lo + counts.size + 1) / 20)
    ours = stats.histogram_quantile(counts, edges, 0.95)
    assert abs(ours / np.quantile(x, 0.95) - 1) < 0.02


def test_msprt_keeps_its_type_one_error_however_often_it_looks():
    rng = np.random.default_rng(5)
    alpha, runs, looks, rejected = 0.05, 400, 50, 0
    for _ in range(runs):
        x = rng.normal(0, 1, looks * 20)
        y = rng.normal(0, 1, looks * 20)
        p = 1.0
        for k in range(1, looks + 1):
            n = 20 * k
            delta = x[:n].mean() - y[:n].mean()
            p = stats.always_valid_p(delta, 2.0 / n, tau2=0.1, previous=p)
        rejected += p < alpha
    assert rejected / runs <= alpha


def test_msprt_finds_a_real_difference():
    rng = np.random.default_rng(6)
    x, y = rng.normal(0.5, 1, 2000), rng.normal(0, 1, 2000)
    p = stats.always_valid_p(x.mean() - y.mean(), 2.0 / 2000, tau2=0.1)
    assert p < 1e-6


def test_sample_size_grows_as_the_effect_shrinks():
    big = stats.sample_size_proportion(0.01, 0.02)
    small = stats.sample_size_proportion(0.01, 0.005)
    assert small > 4 * big > 0


def test_wilson_interval_contains_the_rate():
    lo, hi = stats.wilson_interval(5, 100)
    assert lo < 0.05 < hi and 0 <= lo and hi <= 1


def test_welch_z_matches_scipy_welch_t_on_large_samples():
    from scipy import stats as sst

    rng = np.random.default_rng(7)
    a, b = rng.normal(0.70, 0.10, 4000), rng.normal(0.72, 0.20, 3000)
    z = stats.welch_z(b.mean(), b.std(ddof=1), b.size, a.mean(), a.std(ddof=1), a.size)
    t = sst.ttest_ind(b, a, equal_var=False).statistic
    assert z == pytest.approx(t, rel=1e-9)
    assert stats.welch_z(0.5, 0.1, 1, 0.4, 0.1, 100) == 0.0  # one value: no test
    assert stats.welch_z(0.5, 0.0, 10, 0.5, 0.0, 10) == 0.0  # no spread, no difference
