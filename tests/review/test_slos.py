"""slos.yaml: objectives load with their defaults; a bad file names the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.review.slos import DEFAULT_ALERTS, SloConfigError, load_slos, parse_slos, parse_window

GOOD = """\
window_days: 14
features:
  support-reply:
    objectives:
      - {name: availability, sli: success_rate, objective: 0.99}
      - name: fast
        sli: latency
        threshold_ms: 3000
        objective: 0.95
    cost: {per_day_usd: 40}
  doc-summarizer:
    window_days: 7
    objectives:
      - {sli: quality, threshold: 0.7, objective: 0.9}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "slos.yaml").write_text(text)
    return tmp_path


def test_a_missing_file_means_no_objectives_and_the_workbook_alert_rules(tmp_path: Path):
    config = load_slos(tmp_path)
    assert config.features == {}
    assert config.window_days == 28
    assert [(r.burn_rate, r.long_min, r.short_min) for r in config.alerts] == [
        (14.4, 60, 5),
        (6.0, 360, 30),
        (1.0, 4320, 360),
    ]


def test_objectives_load_with_the_file_window_as_default(tmp_path: Path):
    config = load_slos(write(tmp_path, GOOD))
    sr = config.for_feature("support-reply")
    assert sr.window_days == 14
    assert [(o.name, o.sli, o.objective, o.threshold) for o in sr.objectives] == [
        ("availability", "success_rate", 0.99, None),
        ("fast", "latency", 0.95, 3000.0),
    ]
    assert sr.cost.per_day_usd == 40 and sr.cost.per_request_usd is None
    doc = config.for_feature("doc-summarizer")
    assert doc.window_days == 7 and doc.objectives[0].name == "quality"
    assert config.for_feature("code-assistant") is None
    assert config.alerts == DEFAULT_ALERTS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("objective: 0.99", "objective: 99"),
            "line 5: features.support-reply.objectives[0].objective: expected the target share of good "
            "events, strictly between 0 and 1 (e.g. 0.99), got 99",
        ),
        (
            GOOD.replace("sli: latency", "sli: speed"),
            "line 7: features.support-reply.objectives[1].sli: expected an SLI: one of success_rate, "
            "latency, quality, feedback, got 'speed'",
        ),
        (
            GOOD.replace("        threshold_ms: 3000\n", ""),
            "line 6: features.support-reply.objectives[1].threshold_ms: missing; a latency objective "
            "needs threshold_ms",
        ),
        (
            GOOD.replace("cost: {per_day_usd: 40}", "cost: {per_week_usd: 40}"),
            "line 10: features.support-reply.cost.per_week_usd: unknown key; expected one of "
            "per_day_usd, per_request_usd",
        ),
        (
            GOOD.replace("cost: {per_day_usd: 40}", "cost: {}"),
            "line 10: features.support-reply.cost: expected a mapping with per_request_usd and/or "
            "per_day_usd, got an empty mapping",
        ),
        (
            GOOD.replace("window_days: 14", "window_days: fortnight"),
            "line 1: window_days: expected a number of days from 1 to 366, got 'fortnight'",
        ),
        (
            GOOD + "alerts:\n  - {burn_rate: 10, long: 5m, short: 1h}\n",
            "line 16: alerts[0].short: the short window (1h) must be shorter than the long one (5m)",
        ),
        (
            GOOD + "alerts:\n  - {burn_rate: 10, long: 1 hour, short: 5m}\n",
            "line 16: alerts[0].long: expected a window like 5m, 1h or 3d",
        ),
        (
            GOOD + "alerts:\n  - {burn_rate: 10, long: 1h}\n",
            "line 16: alerts[0].short: missing; expected a window like 5m, 1h or 3d",
        ),
        (
            GOOD + "alerts:\n  - {burn_rate: 10, long: 1h, short: 5m, severity: pager}\n",
            "line 16: alerts[0].severity: expected a severity: one of page, ticket, got 'pager'",
        ),
        (
            GOOD.replace("{sli: quality, threshold: 0.7, objective: 0.9}", "{sli: quality, objective: 0.9}"),
            "line 14: features.doc-summarizer.objectives[0].threshold: missing; a quality objective "
            "needs threshold",
        ),
        (
            GOOD.replace(
                "{sli: quality, threshold: 0.7, objective: 0.9}",
                "{sli: feedback, threshold: 0.7, objective: 0.9}",
            ),
            "line 14: features.doc-summarizer.objectives[0].threshold: only a quality objective takes "
            "threshold",
        ),
    ],
)
def test_a_bad_value_is_named_with_its_file_line_and_key(tmp_path: Path, text: str, expected: str):
    with pytest.raises(SloConfigError) as err:
        load_slos(write(tmp_path, text))
    assert str(err.value).startswith(str(tmp_path / "slos.yaml") + ": ")
    assert expected in str(err.value)
    assert len(err.value.problems) == 1


def test_two_objectives_on_one_sli_are_refused(tmp_path: Path):
    text = GOOD.replace("sli: latency", "sli: success_rate").replace("        threshold_ms: 3000\n", "")
    with pytest.raises(
        SloConfigError,
        match=r"line 7: .*already has a success_rate objective "
        r"\(objectives\[0\], line 5\); one per SLI",
    ):
        load_slos(write(tmp_path, text))


def test_every_problem_is_listed_in_file_order(tmp_path: Path):
    text = GOOD.replace("window_days: 14", "window_days: 0").replace("sli: latency", "sli: speed")
    with pytest.raises(SloConfigError) as err:
        load_slos(write(tmp_path, text + "alerts:\n  - {burn_rate: 10, long: 5m, short: 1h}\n"))
    assert [(p.line, p.key) for p in err.value.problems] == [
        (1, "window_days"),
        (7, "features.support-reply.objectives[1].sli"),
    ]
    # the meaning checks run on a file that passed the schema
    assert "alerts[0].short" not in str(err.value)


def test_settings_built_in_code_are_checked_by_the_same_schema():
    with pytest.raises(SloConfigError) as err:
        parse_slos({"features": {"f": {"objectives": [{"sli": "latency", "objective": 1.5}]}}})
    assert str(err.value) == (
        "slos.yaml: features.f.objectives[0].objective: expected the target "
        "share of good events, strictly between 0 and 1 (e.g. 0.99), got 1.5"
    )


def test_an_empty_file_means_no_objectives(tmp_path: Path):
    config = load_slos(write(tmp_path, "# nothing yet\n"))
    assert config.features == {} and config.alerts == DEFAULT_ALERTS


def test_broken_yaml_names_the_line(tmp_path: Path):
    with pytest.raises(SloConfigError, match=r"slos.yaml: line 3:"):
        load_slos(write(tmp_path, "features:\n  a: {objectives: [\n  b: ]]\n"))


def test_custom_alert_rules_replace_the_defaults(tmp_path: Path):
    config = load_slos(
        write(
            tmp_path,
            GOOD + "alerts:\n  - {name: fast, burn_rate: 10, long: 2h, short: 10m, severity: ticket}\n",
        )
    )
    [rule] = config.alerts
    assert (rule.name, rule.severity, rule.burn_rate, rule.long_min, rule.short_min) == (
        "fast",
        "ticket",
        10.0,
        120,
        10,
    )


def test_windows_are_minutes():
    assert [parse_window(w) for w in ("5m", "1h", "3d", "0m", "h", "1.5h", 5)] == [
        5,
        60,
        4320,
        None,
        None,
        90,
        None,
    ]
