"""A mapping's text cannot read files: each value is parsed with DuckDB's parser when the
mapping is loaded and accepted only as one scalar expression over the source's columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from logfiles import Desk, write_text

from app.ingest.expressions import check_expression
from app.ingest.mapping import MappingError, load_mapping

LOG = "Time,Model,ms\n5,ChatGPT,900\n65,GPT-4,1500\n"
SECRET = "sk-live-do-not-leak-0123"


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    folder = tmp_path / ".streamlit"
    folder.mkdir()
    path = folder / "secrets.toml"
    path.write_text(f'[backends.unleash]\ntoken = "{SECRET}"\n')
    return path


def mapping(tmp_path: Path, model: str) -> Path:
    return write_text(
        tmp_path / "mapping.yaml",
        "fields:\n"
        '  timestamp: "timestamp \'2026-03-02\' + to_seconds(\\"Time\\")"\n'
        "  feature: \"'chat'\"\n"
        f"  model: {model}\n",
    )


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("\"(SELECT content FROM read_text('{secrets}'))\"", "a subquery is not allowed"),
        ("\"(SELECT * FROM read_csv('{secrets}'))\"", "a subquery is not allowed"),
        ("\"Model IN (SELECT content FROM read_text('{secrets}'))\"", "a subquery is not allowed"),
        ('"EXISTS (SELECT 1)"', "a subquery is not allowed"),
        ("\"Model; COPY (SELECT 1) TO '/tmp/x.csv'\"", "not a statement"),
        ("\"Model FROM read_text('{secrets}')\"", "not a query"),
        ("\"Model UNION SELECT content FROM read_text('{secrets}')\"", "not a set operation"),
        ('"Model, ms"', "not a list"),
        ("\"current_setting('home_directory')\"", "function current_setting reads the environment"),
        ("\"string_agg(Model, ',')\"", "function string_agg is an aggregate"),
        ('"row_number() OVER ()"', "window is not allowed"),
        ("\"read_text('{secrets}')\"", "function read_text is a table function"),
        ('"list_transform([1], x -> x)"', "lambda is not allowed"),
    ],
)
def test_an_expression_that_could_read_beyond_the_row_is_refused_when_loaded(
    tmp_path: Path, secrets_file: Path, model: str, reason: str
):
    m = mapping(tmp_path, model.format(secrets=secrets_file))
    with pytest.raises(MappingError) as caught:
        load_mapping(m)
    message = str(caught.value)
    assert message.startswith(f"{m}: line 4: fields.model: ") and reason in message
    assert SECRET not in message and "\n" not in message


def test_the_secret_never_reaches_the_store_through_a_mapping(
    desk: Desk, tmp_path: Path, secrets_file: Path, capsys
):
    from app.cli import main

    log = write_text(tmp_path / "trace.csv", LOG)
    m = mapping(tmp_path, f"\"(SELECT content FROM read_text('{secrets_file}'))\"")
    code = main(["ingest", str(log), "--mapping", str(m), "--data-dir", str(desk.data_dir)])
    out, err = capsys.readouterr()
    assert code == 1 and "a subquery is not allowed" in err
    assert SECRET not in out + err
    assert not (desk.data_dir / "rollback.duckdb").exists() or desk.count() == 0


@pytest.mark.parametrize(
    "text",
    [
        "Model",
        '"Model"',
        "upper(Model)",
        "'chat'",
        "ms / 1000.0",
        "timestamp '2026-03-02' + to_seconds(\"Time\")",
        "CAST(ms AS DOUBLE)",
        "case when ms > 1000 then 'slow' else null end",
        "coalesce(Model, 'unknown')",
        "Model IN ('a', 'b')",
        "ms BETWEEN 1 AND 2",
        "NOT (ms IS NULL)",
        "rd_epoch(ms)",
    ],
)
def test_scalar_expressions_over_columns_are_accepted(text: str):
    assert check_expression(text).parsed


def test_the_columns_an_expression_reads_are_known():
    assert check_expression('upper(Model) || "Time"').columns == {"Model", "Time"}
    assert not check_expression("Request tokens").parsed  # only usable as a column's name


def test_an_expression_over_a_column_the_source_lacks_names_it(desk: Desk, tmp_path: Path):
    log = write_text(tmp_path / "trace.csv", LOG)
    code, out = desk.ingest(log, "--mapping", mapping(tmp_path, '"upper(Modle)"'))
    assert code == 1
    expected = f"{tmp_path / 'mapping.yaml'}: field model: no column 'Modle' in trace.csv"
    assert out["files"][0]["error"] == expected


def test_a_mapping_path_pointed_at_the_secrets_file_never_shows_its_content(tmp_path, secrets_file, capsys):
    from app.cli import main

    log = write_text(tmp_path / "trace.csv", LOG)
    for target in (secrets_file,):
        code = main(["ingest", str(log), "--mapping", str(target), "--data-dir", str(tmp_path / "d")])
        err = capsys.readouterr().err
        assert code == 1 and str(target) in err and SECRET not in err and "backends" not in err
