"""Change events: declared (YAML, CSV) with bad entries reported by file and position, and
inferred from the logs (first appearances, silent provider updates) with stable ids."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from logfiles import Desk, write_jsonl, write_text

from app.changes import declared
from app.changes import timeline as changes
from app.storage.store import Store

T0 = datetime(2026, 3, 2)


def test_declared_changes_from_yaml_are_loaded_and_bad_entries_reported(desk: Desk, tmp_path: Path, capsys):
    from app.cli import main

    path = write_text(
        tmp_path / "changes.yaml",
        """changes:
  - {timestamp: "2026-03-02T10:00:00Z", feature: chat, kind: prompt, key: prompt_version,
     from: v1, to: v2, author: maria, description: Shorter replies}
  - {timestamp: "yesterday", feature: chat, kind: prompt}
  - {timestamp: "2026-03-02T11:00:00+01:00", feature: chat, kind: rollout}
  - {timestamp: 1772445600, feature: "", kind: model}
  - just a string
  - {timestamp: "2026-03-02 12:00:00", feature: search, kind: Flag, key: search-canary, to: "10%"}
""",
    )
    code = main(["changes", "--load", str(path), "--data-dir", str(desk.data_dir)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err == [
        f"error: {path}: line 4: changes[1]: timestamp 'yesterday' is not a time (ISO 8601 or epoch)",
        f"error: {path}: line 5: changes[2]: kind 'rollout' is not one of model, prompt, flag, config",
        f"error: {path}: line 6: changes[3].feature: expected a feature name, got ''",
        f"error: {path}: line 7: changes[4]: expected a mapping with timestamp, feature, kind, "
        "got 'just a string'",
    ]
    got = changes.list_changes(Store(desk.data_dir))
    assert [(e.timestamp, e.feature, e.kind, e.key, e.from_value, e.to_value, e.source) for e in got] == [
        (datetime(2026, 3, 2, 10), "chat", "prompt", "prompt_version", "v1", "v2", "declared"),
        (datetime(2026, 3, 2, 12), "search", "flag", "search-canary", None, "10%", "declared"),
    ]
    assert got[0].author == "maria" and got[0].description == "Shorter replies"


def test_declared_changes_from_csv_report_bad_rows_by_line(desk: Desk, tmp_path: Path):
    path = write_text(
        tmp_path / "changes.csv",
        "\n".join(
            [
                "timestamp,feature,kind,key,from,to,author,description",
                '2026-03-02T10:00:00Z,chat,model,model,gpt-4o,gpt-4.1,lee,"Upgrade, finally"',
                "not a time,chat,model,,,,,",
                "2026-03-02T11:00:00Z,chat,oops,,,,,",
            ]
        )
        + "\n",
    )
    events, errors = declared.load_declared(path)
    assert [(e.kind, e.to_value, e.description) for e in events] == [("model", "gpt-4.1", "Upgrade, finally")]
    assert errors == [
        f"{path} line 3: timestamp 'not a time' is not a time (ISO 8601 or epoch)",
        f"{path} line 4: kind 'oops' is not one of model, prompt, flag, config",
    ]


@pytest.mark.parametrize(
    ("body", "suffix", "expected"),
    [
        ("changes: {a: 1}\n", "yaml", "line 1: changes: expected a list of changes, got a mapping"),
        ("change:\n  - {feature: x}\n", "yaml", "line 1: change: unknown key; expected one of changes"),
        ("changes:\n  - [unclosed\n", "yaml", "line 3: not valid YAML"),
        (b"changes:\n  - {feature: caf\xe9}\n", "yaml", "line 2: byte 0xe9 at column 18 is not UTF-8"),
        (b"timestamp,feature,kind\n1,caf\xe9,model\n", "csv", "line 2: byte 0xe9 at column 6 is not UTF-8"),
        ("when,what\n1,2\n", "csv", "CSV header lacks column(s) timestamp, feature, kind"),
    ],
)
def test_an_unusable_changes_file_is_one_error(tmp_path: Path, body: str | bytes, suffix: str, expected: str):
    path = tmp_path / f"changes.{suffix}"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    with pytest.raises(declared.ChangeFileError) as err:
        declared.load_declared(path)
    assert str(err.value).startswith(str(path)) and expected in str(err.value)


def test_a_dated_version_written_without_quotes_is_kept_as_written(tmp_path: Path):
    path = write_text(
        tmp_path / "c.yaml",
        "changes:\n  - {timestamp: 2026-03-02T10:00:00Z, feature: chat,"
        " kind: model, from: 2024-08-06, to: 2024-11-20}\n"
        "  - {timestamp: 2026-03-02T11:00:00Z, feature: chat,"
        " kind: config, to: {a: 1}}\n",
    )
    events, errors = declared.load_declared(path)
    assert [(e.from_value, e.to_value) for e in events] == [("2024-08-06", "2024-11-20")]
    assert errors == [f"{path}: line 3: changes[1].to: expected text or a number, got a mapping"]


def test_loading_declared_changes_twice_adds_nothing(desk: Desk, tmp_path: Path):
    path = write_text(
        tmp_path / "c.yaml",
        "changes:\n  - {timestamp: 2026-03-02T10:00:00Z, feature: chat, kind: config, key: temperature}\n",
    )
    store = Store(desk.data_dir)
    events, _ = declared.load_declared(path)
    assert declared.save_events(store, events) == 1
    assert declared.save_events(store, declared.load_declared(path)[0]) == 0


def _requests(feature: str, hours: int, **dims_by_hour) -> list[dict]:
    """One request every 5 minutes; dims_by_hour maps a field to [(from_hour, value), ...]."""
    out = []
    for i in range(hours * 12):
        t = T0 + timedelta(minutes=5 * i)
        row = {"timestamp": t.isoformat() + "Z", "feature": feature, "request_id": f"{feature}-{i}"}
        for dim, steps in dims_by_hour.items():
            row[dim] = [v for h, v in steps if i / 12 >= h][-1]
        out.append(row)
    return out


def test_inferred_changes_include_new_prompts_models_and_a_silent_provider_update(desk: Desk, tmp_path: Path):
    rows = _requests(
        "search",
        10,
        model=[(0, "gpt-4o")],
        response_model=[(0, "gpt-4o-2024-08-06"), (6, "gpt-4o-2024-11-20")],
        prompt_version=[(0, "q1"), (3, "q2")],
    )
    rows += _requests(
        "summary",
        10,
        model=[(0, "gpt-4.1"), (4, "claude-sonnet-4-5")],
        response_model=[(0, "gpt-4.1"), (4, "claude-sonnet-4-5")],
    )
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    desk.ingest(path)

    got = [e for e in changes.list_changes(Store(desk.data_dir)) if e.source == "inferred"]
    summary = [
        (e.feature, e.kind, e.key, e.from_value, e.to_value, e.silent_update, e.timestamp) for e in got
    ]
    assert summary == [
        ("search", "prompt", "prompt_version", "q1", "q2", False, T0 + timedelta(hours=3)),
        ("summary", "model", "model", "gpt-4.1", "claude-sonnet-4-5", False, T0 + timedelta(hours=4)),
        (
            "search",
            "model",
            "gpt-4o",
            "gpt-4o-2024-08-06",
            "gpt-4o-2024-11-20",
            True,
            T0 + timedelta(hours=6),
        ),
    ]
    silent = got[-1]
    assert "silent provider model update" in silent.description


def test_an_inferred_change_after_a_gap_in_the_logs_names_the_value_before_the_gap(
    desk: Desk, tmp_path: Path
):
    # Two days of gpt-4o-mini, nothing for three days, then gpt-4o: the change is from the
    # model the feature last ran on, however long ago that was.
    before = _requests("chat", 48, model=[(0, "gpt-4o-mini")])
    after = [
        {
            **r,
            "request_id": f"later-{i}",
            "model": "gpt-4o",
            "timestamp": (datetime.fromisoformat(r["timestamp"][:-1]) + timedelta(days=5)).isoformat() + "Z",
        }
        for i, r in enumerate(_requests("chat", 2))
    ]
    desk.ingest(write_jsonl(tmp_path / "before.jsonl", before))
    desk.ingest(write_jsonl(tmp_path / "after.jsonl", after))
    got = [
        (e.key, e.from_value, e.to_value, e.timestamp)
        for e in changes.list_changes(Store(desk.data_dir))
        if e.source == "inferred"
    ]
    assert got == [("model", "gpt-4o-mini", "gpt-4o", T0 + timedelta(days=5))]


def test_inferred_change_ids_are_stable_across_reloads(desk: Desk, tmp_path: Path):
    rows = _requests(
        "search",
        6,
        model=[(0, "gpt-4o")],
        response_model=[(0, "gpt-4o-2024-08-06"), (3, "gpt-4o-2024-11-20")],
    )
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    desk.ingest(path)
    first = [e.change_id for e in changes.list_changes(Store(desk.data_dir))]
    # A fresh data directory and a rewritten (but equal) file give the same ids.
    other = Desk(tmp_path / "other", desk.capsys)
    other.ingest(path)
    write_jsonl(path, rows)
    desk.ingest(path)
    assert first and first == [e.change_id for e in changes.list_changes(Store(desk.data_dir))]
    assert first == [e.change_id for e in changes.list_changes(Store(other.data_dir))]


def test_inferred_changes_follow_a_reload_that_removes_them(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", _requests("chat", 6, prompt_version=[(0, "v1"), (3, "v2")]))
    desk.ingest(path)
    assert len(changes.list_changes(Store(desk.data_dir))) == 1
    write_jsonl(path, _requests("chat", 6, prompt_version=[(0, "v1")]))
    desk.ingest(path)
    assert changes.list_changes(Store(desk.data_dir)) == []


def test_ingest_with_changes_loads_both(desk: Desk, tmp_path: Path):
    log = write_jsonl(tmp_path / "a.jsonl", _requests("chat", 1))
    decl = write_text(
        tmp_path / "c.yaml",
        "changes:\n  - {timestamp: 2026-03-02T00:30:00Z, feature: chat, kind: flag, key: chat-canary}\n",
    )
    code, out = desk.ingest(log, "--changes", decl)
    assert code == 0 and out["loaded"] == 12
    assert [e.kind for e in changes.list_changes(Store(desk.data_dir))] == ["flag"]
