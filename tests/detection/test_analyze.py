"""Given logs with one known story per feature, analyze finds each story and nothing else."""

from __future__ import annotations

from datetime import timedelta

from app.detection.findings import AnalysisResult, Finding

from .stories import at, declared


def findings_of(result: AnalysisResult, feature: str) -> list[Finding]:
    return [f for f in result.findings if f.feature == feature]


def main_finding(result: AnalysisResult, feature: str, metric: str) -> Finding:
    found = [f for f in findings_of(result, feature) if f.metric == metric]
    assert found, f"no {metric} finding for {feature}: {[f.title for f in result.findings]}"
    return found[0]


def test_prompt_step_is_found_with_its_onset_and_the_prompt_change_first(story_result):
    f = main_finding(story_result, "prompt-step", "quality_score")
    assert abs(f.onset - at(3, 14, 20)) <= timedelta(minutes=30)
    assert f.current < f.baseline - 0.05
    assert f.p_value < 0.01
    assert f.scope.kind == "total"
    top = f.suspects[0].change
    assert (top.kind, top.to_value) == ("prompt", "p2")
    # the harmless config change ten minutes later touched the same requests but came after
    others = [s for s in f.suspects if s.change.key == "temperature"]
    assert not others or others[0].score < f.suspects[0].score


def test_clean_feature_with_strong_daily_cycle_and_harmless_changes_has_no_finding(story_result):
    assert findings_of(story_result, "clean") == []


def test_findings_are_degradations_only_and_most_severe_first(story_result):
    severities = [f.severity for f in story_result.findings]
    assert severities == sorted(severities, reverse=True)
    for f in story_result.findings:
        worse = f.current < f.baseline if f.metric == "quality_score" else f.current > f.baseline
        assert worse, f.title


def test_too_few_samples_is_inconclusive_never_a_regression(story_result):
    assert findings_of(story_result, "tiny") == []
    tiny = [i for i in story_result.inconclusive if i.feature == "tiny"]
    assert any(i.metric == "quality_score" for i in tiny)
    assert all("need" in i.reason for i in tiny)


def test_one_noisy_user_is_single_user_not_a_feature_regression(story_result):
    f = main_finding(story_result, "single-user", "error_rate")
    assert f.scope.kind == "single_user"
    (s,) = f.scope.slices
    assert (s.dimension, s.value) == ("user_id", "u-09999")
    assert 0.02 < s.share < 0.15
    assert s.current > 0.3


def test_region_breakage_is_partial_with_the_region_slice(story_result):
    f = main_finding(story_result, "region-break", "error_rate")
    assert f.scope.kind == "partial"
    assert [(s.dimension, s.value) for s in f.scope.slices] == [("region", "ap-south")]
    assert f.scope.slices[0].current > f.scope.slices[0].baseline + 0.1
    # the config change at the right time touched every region: it cannot explain it well
    assert all(s.score < 0.5 for s in f.suspects)


def test_silent_provider_update_is_the_first_suspect(story_result):
    f = main_finding(story_result, "silent-update", "quality_score")
    top = f.suspects[0]
    assert top.change.kind == "model" and top.change.silent_update
    assert top.change.to_value == "gpt-4o-2024-11-20"
    assert top.as_dict()["source"] == "inferred"
    assert "silent" in top.evidence.lower()


def test_canary_errors_point_at_the_rollout_and_the_canary_slice(story_result):
    f = main_finding(story_result, "canary", "error_rate")
    assert f.scope.kind == "partial"
    assert ("variant", "canary") in [(s.dimension, s.value) for s in f.scope.slices]
    assert f.suspects[0].change.key == "canary-rollout"
    broad = [s for s in f.suspects if s.change.key == "max_tokens"]
    assert not broad or broad[0].score < 0.5 * f.suspects[0].score


def test_gradual_drift_is_found_with_the_model_change_first(story_result):
    f = main_finding(story_result, "drift", "quality_score")
    assert f.onset - at(2, 8) < timedelta(hours=12)
    assert f.suspects[0].change.to_value == "gpt-4o-mini"


def test_extra_changes_join_the_suspects(stories):
    from app.detection.analysis import analyze

    extra = declared(at(2, 16, 40), "region-break", "config", "region", "ap-south-1", "ap-south")
    result = analyze(stories, feature="region-break", extra_changes=[extra])
    f = main_finding(result, "region-break", "error_rate")
    assert f.suspects[0].change.change_id == extra.change_id


def test_an_empty_window_gives_an_empty_result(stories):
    from app.detection.analysis import analyze

    result = analyze(stories, feature="no-such-feature")
    assert result.as_dict() == {"findings": [], "inconclusive": [], "events": []}


def test_metrics_that_broke_together_share_one_scan_with_the_same_tables(stories):
    from datetime import timedelta

    from polars.testing import assert_frame_equal

    from app.detection import attribute
    from app.detection.detect import Detection

    feature = stories.rows("SELECT feature FROM requests GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    lo, hi = stories.time_bounds(feature)
    onset, end = lo + (hi - lo) * 0.6, lo + (hi - lo) * 0.8

    def det(metric: str, baseline: float) -> Detection:
        return Detection(
            feature, metric, onset, end, "step", baseline, baseline * 2, onset, onset, 0.0, 1, 1, 1.0
        )

    dets = [det("error_rate", 0.02), det("latency_p95_ms", 900.0), det("quality_score", 0.8)]
    together = attribute.slice_tables(stories, dets, onset, lo, hi + timedelta(seconds=1))
    for d, table in zip(dets, together, strict=True):
        alone = attribute.slice_table(stories, d, onset, lo, hi + timedelta(seconds=1))
        assert table.height > 10  # every dimension's values in three periods
        assert_frame_equal(
            table.sort("period", "dimension", "value"), alone.sort("period", "dimension", "value")
        )
    # Each table carries its own metric: the quality sums are not the error counts.
    assert together[0]["s"].sum() != together[2]["s"].sum()
    assert together[1]["p95"].is_not_null().any() and together[0]["p95"].is_null().all()
