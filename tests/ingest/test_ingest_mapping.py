"""Mapping files: column names, SQL expressions and constants; a broken one is an error that
names the field and the mapping file."""

from __future__ import annotations

from pathlib import Path

import pytest
from logfiles import Desk, write_text

from app.ingest.mapping import MappingError, load_mapping

LOG = (
    "\n".join(
        [
            "Time,Model,Request tokens,Response tokens,ms",
            "5,ChatGPT,100,20,900",
            "65,GPT-4,200,0,1500",
        ]
    )
    + "\n"
)


def mapping(tmp_path: Path, body: str) -> Path:
    return write_text(tmp_path / "mapping.yaml", body)


def test_columns_expressions_and_constants_map_to_canonical_fields(desk: Desk, tmp_path: Path):
    log = write_text(tmp_path / "trace.csv", LOG)
    m = mapping(
        tmp_path,
        """fields:
  timestamp: "timestamp '2023-11-16' + to_seconds(\\"Time\\")"
  feature: "'chat'"
  model: Model
  input_tokens: Request tokens
  output_tokens: Response tokens
  latency_ms: ms
  error: "case when \\"Response tokens\\" = 0 then 'failed' end"
""",
    )
    code, out = desk.ingest(log, "--mapping", m)
    assert code == 0 and out["loaded"] == 2
    assert desk.rows("""SELECT strftime(timestamp, '%H:%M:%S'), feature, model, input_tokens,
                               output_tokens, latency_ms, error, extra FROM requests ORDER BY 1""") == [
        ("00:00:05", "chat", "ChatGPT", 100, 20, 900.0, None, '{"Time":5}'),
        ("00:01:05", "chat", "GPT-4", 200, 0, 1500.0, "failed", '{"Time":65}'),
    ]


def test_fields_left_out_come_from_same_named_columns(desk: Desk, tmp_path: Path):
    log = write_text(tmp_path / "a.csv", "ts,feature,model\n2026-03-02 10:00:00,chat,gpt-4o\n")
    code, out = desk.ingest(log, "--mapping", mapping(tmp_path, "fields:\n  timestamp: ts\n"))
    assert code == 0
    assert desk.rows("SELECT feature, model FROM requests") == [("chat", "gpt-4o")]


def test_a_mapped_value_that_is_bad_on_one_row_quarantines_that_row(desk: Desk, tmp_path: Path):
    log = write_text(tmp_path / "a.csv", "when,what\n2026-03-02 10:00:00,chat\nsoon,chat\n")
    m = mapping(tmp_path, "fields:\n  timestamp: when\n  feature: what\n")
    code, out = desk.ingest(log, "--mapping", m)
    assert (out["loaded"], out["quarantined"]) == (1, 1)
    assert desk.quarantine()[0][2] == "row 2: timestamp 'soon' is not a time"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('fields:\n  timestamp: "to_seconds(\\"Time\\"" \n  feature: "\'chat\'"\n', "timestamp"),
        (
            "fields:\n  timestamp: \"timestamp '2023-11-16'\"\n  feature: \"'chat'\"\n  model: Modell\n",
            "model",
        ),
        (
            "fields:\n  timestamp: \"timestamp '2023-11-16'\"\n  feature: \"'chat'\"\n"
            "  input_tokens: Request tokenz\n",
            "input_tokens",
        ),
        (
            'fields:\n  timestamp: "timestamp \'2023-11-16\'"\n  feature: "no_such_function(Model)"\n',
            "feature",
        ),
    ],
)
def test_a_broken_expression_or_missing_column_names_the_field_and_the_mapping_file(
    desk: Desk, tmp_path: Path, body: str, field: str
):
    log = write_text(tmp_path / "trace.csv", LOG)
    m = mapping(tmp_path, body)
    code, out = desk.ingest(log, "--mapping", m)
    error = out["files"][0]["error"]
    assert code == 1
    assert error.startswith(f"{m}: field {field}: ") and "trace.csv" in error and "\n" not in error
    assert desk.count() == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("fields: [1, 2]\n", "line 1: fields: expected a mapping of canonical field -> source column"),
        (
            "fields:\n  latency: ms\n",
            "line 2: fields.latency: unknown name; expected a canonical field: one of timestamp, feature",
        ),
        ("fields:\n  model: [a]\n", "line 2: fields.model: expected a column name or a SQL expression"),
        ("fields:\n  model: x\nextra: 1\n", "line 3: extra: unknown key; expected one of fields"),
        ("fields:\n  model: x\n  model: y\n", "line 3: fields.model: written twice in one mapping"),
        ("model: x\n", "line 1: model: unknown key"),
        ("fields:\n  model: 'x\n", "line 3: not valid YAML"),
    ],
)
def test_an_invalid_mapping_file_is_reported_with_the_file_and_key(tmp_path: Path, body: str, expected: str):
    m = mapping(tmp_path, body)
    with pytest.raises(MappingError) as err:
        load_mapping(m)
    assert str(err.value).startswith(str(m)) and expected in str(err.value)


def test_the_cli_reports_an_invalid_mapping_file_and_exits_1(desk: Desk, tmp_path: Path, capsys):
    from app.cli import main

    m = mapping(tmp_path, "fields:\n  latency: ms\n")
    code = main(["ingest", str(tmp_path), "--mapping", str(m), "--data-dir", str(desk.data_dir)])
    assert code == 1 and f"error: {m}: line 2: fields.latency: unknown name" in capsys.readouterr().err


def test_changing_the_mapping_reloads_the_file(desk: Desk, tmp_path: Path):
    log = write_text(tmp_path / "trace.csv", LOG)
    base = 'fields:\n  timestamp: "timestamp \'2023-11-16\' + to_seconds(\\"Time\\")"\n'
    desk.ingest(log, "--mapping", mapping(tmp_path, base + "  feature: \"'chat'\"\n"))
    desk.ingest(log, "--mapping", mapping(tmp_path, base + "  feature: \"'assistant'\"\n"))
    assert desk.rows("SELECT feature, count(*) FROM requests GROUP BY 1") == [("assistant", 2)]
