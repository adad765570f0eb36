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
        "    - {percent: 100}\n")
    t = load_thresholds(tmp_path)
    assert t.significance == 0.001
    assert t.metric("error_rate").min_samples == 500
    assert t.metric("error_rate").min_relative == DEFAULTS.metric("error_rate").min_relative
    assert [s.percent for s in t.ladder] == [10, 100]


@pytest.mark.parametrize("text, names", [
    ("significance: high\n", "significance"),
    ("metrics:\n  quality: {min_effect: 0.1}\n", "metrics.quality"),
    ("metrics:\n  error_rate: {min_effect: -1}\n", "min_effect"),
    ("rollout:\n  steps:\n    - {percent: 50}\n    - {percent: 20}\n", "rollout.steps[1]"),
    ("rollout:\n  steps:\n    - {percent: 50}\n", "100 percent"),
    ("colour: blue\n", "colour"),
    ("significance: [\n", "line"),
])
def test_bad_values_name_the_file_and_the_key(tmp_path, text, names):
    path = thresholds_path(tmp_path)
    path.write_text(text)
    with pytest.raises(ThresholdsError) as err:
        load_thresholds(tmp_path)
    assert str(path) in str(err.value)
    assert names in str(err.value)
