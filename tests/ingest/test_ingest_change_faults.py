"""Declared-changes files that used to be stored wrong or end in a traceback: a mapping as
a value, an unquoted YAML date, bytes that are not UTF-8."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from logfiles import Desk, write_text

from app.changes import timeline as changes
from app.cli import main
from app.storage.store import Store


def test_a_mapping_or_list_as_a_value_is_an_error_not_python_text(desk: Desk, tmp_path: Path, capsys):
    path = write_text(
        tmp_path / "changes.yaml",
        """changes:
  - {timestamp: "2026-03-02T10:00:00Z", feature: chat, kind: config, from: {a: 1}, to: b}
  - {timestamp: "2026-03-02T10:00:00Z", feature: chat, kind: config, to: [1, 2]}
  - {timestamp: "2026-03-02T11:00:00Z", feature: chat, kind: config, from: a, to: b}
""",
    )
    code = main(["changes", "--load", str(path), "--data-dir", str(desk.data_dir)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1 and err == [
        f"error: {path}: line 2: changes[0].from: expected text or a number, got a mapping",
        f"error: {path}: line 3: changes[1].to: expected text or a number, got a list",
    ]
    stored = changes.list_changes(Store(desk.data_dir))
    assert [(e.from_value, e.to_value) for e in stored] == [("a", "b")]


def test_an_unquoted_yaml_date_is_midnight_utc(desk: Desk, tmp_path: Path, capsys):
    path = write_text(
        tmp_path / "changes.yaml",
        "changes:\n  - {timestamp: 2026-03-02, feature: chat, kind: prompt, to: v2}\n",
    )
    assert main(["changes", "--load", str(path), "--data-dir", str(desk.data_dir)]) == 0
    [event] = changes.list_changes(Store(desk.data_dir))
    assert event.timestamp == datetime(2026, 3, 2)


def test_a_changes_file_that_is_not_utf8_is_one_error_naming_the_line(desk: Desk, tmp_path: Path, capsys):
    path = tmp_path / "changes.yaml"
    path.write_bytes(b"changes:\n  - {timestamp: 2026-03-02, feature: caf\xe9, kind: prompt}\n")
    code = main(["changes", "--load", str(path), "--data-dir", str(desk.data_dir)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: line 2: ") and "not UTF-8 text" in err


def test_a_csv_changes_file_that_is_not_utf8_is_one_error_naming_the_line(desk, tmp_path, capsys):
    path = tmp_path / "changes.csv"
    path.write_bytes(
        b"timestamp,feature,kind\n2026-03-02T10:00:00Z,chat,prompt\n2026-03-02T11:00:00Z,caf\xe9,prompt\n"
    )
    assert main(["changes", "--load", str(path), "--data-dir", str(desk.data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: line 3: ") and "not UTF-8 text" in err
