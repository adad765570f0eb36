"""The thresholds file: defaults without it, overrides with it, errors that name file and key."""

from __future__ import annotations

import pytest

from app.detection.thresholds import DEFAULTS, ThresholdsError, load_thresholds, thresholds_path


def test_no_file_means_the_defaults(tmp_path):
    t = load_thresholds(tmp_path)
    assert t == DEFAULTS
    assert [s.percent for s in t.ladder] == [1, 5, 20, 50, 100]


def test_overrides_apply_and_the_rest_stays_default(tmp_path):
    thresholds_path(tmp_path).write_text(
        "significance: 0.001\nmetrics:\n  error_rate: {min_samples: 500}\n"
        "rollout:\n  steps:\n    - {percent: 10, min_hours: 1, min_samples: 100}\n"
        "    - {percent: 100}\n"
    )
    t = load_thresholds(tmp_path)
    assert t.significance == 0.001
    assert t.metric("error_rate").min_samples == 500
    assert t.metric("error_rate").min_relative == DEFAULTS.metric("error_rate").min_relative
    assert [s.percent for s in t.ladder] == [10, 100]


@pytest.mark.parametrize(
    "text, names",
    [
        ("significance: high\n", "line 1: significance: expected a number > 0 and <= 0.5, got 'high'"),
        ("significance: 0.7\n", "line 1: significance: expected a number > 0 and <= 0.5, got 0.7"),
        (
            "metrics:\n  quality: {min_effect: 0.1}\n",
            "line 2: metrics.quality: unknown name; expected a metric name: one of quality_score, error_rate",
        ),
        (
            "metrics:\n  error_rate: {min_effect: -1}\n",
            "line 2: metrics.error_rate.min_effect: expected a number >= 0, got -1",
        ),
        (
            "rollout:\n  steps:\n    - {percent: 50}\n    - {percent: 20}\n",
            "line 4: rollout.steps[1].percent: expected more than the step before (50), got 20",
        ),
        (
            "rollout:\n  steps:\n    - {percent: 50}\n",
            "line 3: rollout.steps[0].percent: expected the last step to be 100 percent, got 50",
        ),
        (
            "rollout:\n  metrics: [error_rate, quality]\n",
            "line 2: rollout.metrics[1]: expected a metric name: one of quality_score",
        ),
        ("colour: blue\n", "line 1: colour: unknown key; expected one of lookback_days, metrics"),
        ("significance: [\n", "line 2: not valid YAML"),
    ],
)
def test_bad_values_name_the_file_the_line_and_the_key(tmp_path, text, names):
    path = thresholds_path(tmp_path)
    path.write_text(text)
    with pytest.raises(ThresholdsError) as err:
        load_thresholds(tmp_path)
    assert f"{path}: {names}" in str(err.value)


def test_an_empty_file_means_the_defaults(tmp_path):
    thresholds_path(tmp_path).write_text("# nothing overridden yet\n")
    assert load_thresholds(tmp_path) == DEFAULTS
