"""Playbooks: the shipped ones are valid and cover the five incident kinds; broken files are
refused with errors naming the file, the line, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.incidents.notify import load_templates
from app.incidents.playbooks import (
    ACTIONS,
    PHASES,
    PLACEHOLDERS,
    PlaybookError,
    fill,
    load_playbook,
    load_playbooks,
    suggest,
)
from app.rollback.actions import Action

GOOD = """\
id: tiny
title: A tiny playbook
applies_when:
  metrics: [error_rate]
steps:
  - id: look
    phase: detect
    title: Look at {feature}
    instructions: Errors of **{feature}** since {onset}.
  - id: roll-back
    phase: rollback
    title: Canary to 0%
    instructions: Roll back.
    actions:
      - action: rollout
        params: {percentage: 0}
"""


def write(tmp_path: Path, text: str, name: str = "pb.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    return caught.value.errors


def test_every_shipped_playbook_is_valid_and_the_five_kinds_are_there():
    playbooks, errors = load_playbooks()
    assert errors == []
    ids = {p.id for p in playbooks}
    assert {
        "prompt-regression",
        "model-regression",
        "canary-failure",
        "runaway-agent",
        "provider-outage",
    } <= ids
    for pb in playbooks:
        assert [s.phase for s in pb.steps][0] == "detect"
        assert {"triage", "rollback", "communicate", "postmortem"} <= {s.phase for s in pb.steps}


def test_playbook_actions_are_exactly_the_console_flag_actions():
    assert set(ACTIONS) == {str(a) for a in Action}


def test_runaway_agent_offers_kill_switch_and_dry_run_and_rate_limit():
    pb = {p.id: p for p in load_playbooks()[0]}["runaway-agent"]
    actions = {a.action for s in pb.steps for a in s.actions}
    assert {"kill", "pause", "resume-agent"} <= actions
    assert any("rate limit" in s.title.lower() for s in pb.steps)


def test_provider_outage_has_no_change_to_roll_back():
    pb = {p.id: p for p in load_playbooks()[0]}["provider-outage"]
    assert pb.applies_when.change_kinds == ("none",)


def test_message_templates_use_only_known_placeholders():
    import re

    templates = load_templates()
    assert {"internal-update", "customer-update", "resolution-notice"} <= set(templates)
    for t in templates.values():
        for name in re.findall(r"\{([a-z_][a-z0-9_.]*)\}", t.text):
            assert name in PLACEHOLDERS, (t.id, name)


def test_a_good_file_loads_with_its_steps_and_action_parameters(tmp_path):
    pb = load_playbook(write(tmp_path, GOOD))
    assert pb.id == "tiny" and [s.id for s in pb.steps] == ["look", "roll-back"]
    assert pb.steps[1].actions[0].params == {"percentage": 0}
    assert pb.steps[1].actions[0].label() == "rollout(percentage=0)"


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "id: x\ntitle: [unclosed\nsteps: []\n")
    [error] = errors_of(path)
    assert str(path) in error and "line 3" in error and "not valid YAML" in error


@pytest.mark.parametrize(
    "broken, expected",
    [
        (
            GOOD.replace("phase: rollback", "phase: rollbak"),
            "line 11: steps[1].phase: expected an incident phase: one of "
            + ", ".join(PHASES)
            + ", got 'rollbak'",
        ),
        (
            GOOD.replace("action: rollout", "action: reboot"),
            "line 15: steps[1].actions[0].action: expected a flag action: one of kill, resume, rollout",
        ),
        (
            GOOD.replace("{percentage: 0}", "{percentage: 150}"),
            "line 16: steps[1].actions[0].params.percentage: expected a percentage from 0 to 100, got 150",
        ),
        (
            GOOD.replace("{percentage: 0}", "{percent: 0}"),
            "line 16: steps[1].actions[0].params.percent: unknown parameter; rollout takes percentage",
        ),
        (
            GOOD.replace("since {onset}", "since {onsett}"),
            "line 9: steps[0].instructions: expected placeholders among",
        ),
        (
            GOOD.replace("metrics: [error_rate]", "metrics: [errors]"),
            "line 4: applies_when.metrics[0]: expected a metric name: one of error_rate",
        ),
        (
            GOOD.replace("id: roll-back", "id: look"),
            "line 10: steps[1].id: expected a step id unique in the playbook, got 'look'",
        ),
        (GOOD.replace("title: A tiny playbook\n", ""), "line 1: title: missing; this key is required"),
        (
            GOOD.replace("title: A tiny playbook", "title: ' '"),
            "line 2: title: expected non-empty text, got ' '",
        ),
        (
            GOOD.replace("    title: Canary to 0%\n", "    title: Canary to 0%\n    colour: red\n"),
            "line 13: steps[1].colour: unknown key; expected one of actions, checks, id, instructions, "
            "phase, "
            "title",
        ),
        (
            "id: tiny\ntitle: T\nsteps: []\n",
            "line 3: steps: expected a non-empty list of steps, got an empty list",
        ),
        ("- just\n- a list\n", "line 1: (top level): expected a mapping with id, title"),
    ],
)
def test_a_broken_file_is_refused_with_file_line_key_and_expectation(tmp_path, broken, expected):
    path = write(tmp_path, broken)
    errors = errors_of(path)
    assert any(str(path) in e and expected in e for e in errors), errors


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    broken = GOOD.replace("phase: rollback", "phase: later").replace("action: rollout", "action: x")
    assert len(errors_of(write(tmp_path, broken))) == 2


def _with_query(sql: str) -> str:
    body = "\n".join("          " + line for line in sql.splitlines())
    return GOOD.replace(
        "    instructions: Roll back.\n",
        f"""    instructions: Roll back.
    checks:
      - kind: query
        title: A query
        sql: |
{body}
""",
    )


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("DELETE FROM requests", "not a SELECT"),
        ("COPY requests TO '/tmp/out.csv'", "not a SELECT"),
        ("ATTACH 'other.duckdb'", "not a SELECT"),
        ("SELECT 1; SELECT 2", "DuckDB reads 2 statements"),  # the old regular expression let it through
        ("SELECT 1; DROP TABLE requests", "not a SELECT"),
        ("SELEC error FROM requests", "DuckDB cannot parse it"),
        ("WITH x AS (SELECT 1) DELETE FROM requests", "not a SELECT"),
    ],
)
def test_a_query_check_must_be_exactly_one_select_as_duckdb_parses_it(tmp_path, sql, why):
    [error] = errors_of(write(tmp_path, _with_query(sql)))
    assert "line 17: steps[1].checks[0].sql: expected one read-only SELECT" in error and why in error


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT error, count(*) AS n FROM requests\n"
        "WHERE feature = $feature AND timestamp >= $since\nGROUP BY ALL",
        "WITH recent AS (SELECT * FROM requests WHERE timestamp >= $since) SELECT count(*) FROM recent",
        "SELECT 'update' AS word, 'delete me' AS label",  # the old pattern took these words for writes
        "SELECT model FROM requests UNION SELECT response_model FROM requests",
    ],
)
def test_a_single_select_is_accepted_whatever_words_it_contains(tmp_path, sql):
    pb = load_playbook(write(tmp_path, _with_query(sql)))
    assert pb.steps[1].checks[0].sql.strip() == sql


def test_a_folder_reports_broken_files_and_duplicate_ids_but_keeps_the_good_ones(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    write(tmp_path, "id: [", "c.yaml")
    playbooks, errors = load_playbooks(tmp_path)
    assert [p.id for p in playbooks] == ["tiny"]
    assert any("b.yaml" in e and "unique id" in e for e in errors)
    assert any("c.yaml" in e and "not valid YAML" in e for e in errors)


def test_placeholders_are_filled_and_unknown_facts_are_marked():
    text = "Roll back {feature} ({impact.requests} requests); suspect {suspect_change}."
    filled = fill(text, {"feature": "doc-summarizer", "impact.requests": "1,041"})
    assert filled == "Roll back doc-summarizer (1,041 requests); suspect (unknown)."


def test_suggestions_put_the_matching_playbook_first():
    playbooks = load_playbooks()[0]

    def best(**wanted: str) -> str:
        return suggest(playbooks, **wanted)[0].id

    assert best(metric="error_rate", change_kind="flag", scope="partial") == "canary-failure"
    assert best(metric="quality_score", change_kind="prompt") == "prompt-regression"
    assert best(metric="quality_score", change_kind="silent_update") == "model-regression"
    assert best(metric="error_rate", change_kind="none", scope="total") == "provider-outage"
    assert best(metric="error_rate", scope="single_user") == "runaway-agent"


def test_one_binary_file_among_the_playbooks_is_reported_and_the_others_load(tmp_path):
    import shutil

    from app.incidents.playbooks import PLAYBOOKS_DIR, load_playbooks

    folder = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS_DIR, folder)
    good, _ = load_playbooks(folder)
    (folder / "zz-broken.yaml").write_bytes(b"id: x\n\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    loaded, errors = load_playbooks(folder)
    assert [p.id for p in loaded] == [p.id for p in good] and good
    assert len(errors) == 1 and errors[0].startswith(f"{folder / 'zz-broken.yaml'}: line 2: ")
    assert "not UTF-8 text" in errors[0]


def test_a_binary_message_template_is_reported_and_the_others_load(tmp_path):
    import shutil

    from app.incidents.notify import TEMPLATES_DIR, read_templates

    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, folder)
    good, _ = read_templates(folder)
    (folder / "broken.md").write_bytes(b"Hello\n\xff\xfe\x00")
    templates, problems = read_templates(folder)
    assert set(templates) == set(good) and good
    assert len(problems) == 1 and problems[0].startswith(f"{folder / 'broken.md'}: line 2: ")
    assert "not UTF-8 text" in problems[0]
