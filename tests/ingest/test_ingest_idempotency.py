"""Loading is idempotent and incremental: the same file twice adds nothing, a grown file
adds what is new, a request_id is stored once, and a load killed half-way leaves the
database as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from logfiles import Desk, big_frame, request, write_jsonl

from app.ingest import pipeline as ingest

ROOT = Path(__file__).resolve().parents[2]


def test_loading_the_same_file_twice_adds_nothing(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [request(i) for i in range(5)] + ["{bad"])
    first = desk.ingest(path)[1]
    second = desk.ingest(path)[1]
    assert (first["loaded"], first["quarantined"]) == (5, 1)
    assert (second["loaded"], second["quarantined"], second["duplicates"]) == (0, 0, 0)
    assert desk.count() == 5 and desk.count("quarantine") == 1


def test_a_grown_file_adds_only_its_new_rows(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [request(i) for i in range(5)] + ["{bad"])
    desk.ingest(path)
    with open(path, "a") as fh:  # the log grows: two more requests, one more broken line
        fh.write('{"timestamp": "2026-03-02T11:00:00Z", "feature": "support-reply", "request_id": "r-5"}\n')
        fh.write("{also bad\n")
        fh.write('{"timestamp": "2026-03-02T11:00:01Z", "feature": "support-reply", "request_id": "r-6"}\n')

    out = desk.ingest(path)[1]

    # Only the new lines were read; positions count from the start of the file.
    assert (out["loaded"], out["quarantined"]) == (2, 1)
    assert sorted(r[0] for r in desk.rows("SELECT request_id FROM requests")) == [f"r-{i}" for i in range(7)]
    assert [r[1] for r in desk.quarantine()] == [6, 8]
    assert desk.rows("SELECT loaded, quarantined FROM files") == [(7, 2)]


def test_a_line_still_being_written_waits_for_the_next_load(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0), "", request(1)])
    desk.ingest(path)
    line = json.dumps(request(2))
    with open(path, "a") as fh:
        fh.write(line[:20])  # the writer is half-way through a line
    assert desk.ingest(path)[1]["loaded"] == 0 and desk.count("quarantine") == 0
    with open(path, "a") as fh:
        fh.write(line[20:] + "\n" + json.dumps(request(0, model="again")) + "\n" + "{bad\n")
    out = desk.ingest(path)[1]
    assert (out["loaded"], out["quarantined"], out["duplicates"]) == (1, 1, 1)
    assert desk.rows("SELECT model FROM requests WHERE request_id = 'r-0'") == [("gpt-4o",)]
    assert [r[1] for r in desk.quarantine()] == [6]  # line 6, blank line 2 counted
    assert desk.ingest(path)[1]["loaded"] == 0


def test_a_first_load_leaves_a_line_still_being_written_for_the_next(desk: Desk, tmp_path: Path, capsys):
    from app.cli import main

    path = tmp_path / "live.jsonl"
    line = json.dumps(request(2))
    path.write_text(json.dumps(request(0)) + "\n\n" + json.dumps(request(1)) + "\n" + line[:25])
    assert main(["ingest", str(path), "--data-dir", str(desk.data_dir)]) == 0
    assert (
        f"{path}: 2 loaded, 0 quarantined, 0 duplicates; the last line, still being "
        "written, waits for the next load"
    ) in capsys.readouterr().out.splitlines()
    assert desk.count("quarantine") == 0
    with open(path, "a") as fh:
        fh.write(line[25:] + "\n" + "{bad\n")
    out = desk.ingest(path)[1]  # only the lines after the two loaded ones are read
    assert (out["loaded"], out["quarantined"]) == (1, 1)
    assert [r[1] for r in desk.quarantine()] == [5]  # numbered from the start of the file
    assert desk.rows("SELECT loaded, quarantined FROM files") == [(3, 1)]


def test_a_last_line_that_is_whole_json_without_a_newline_loads(desk: Desk, tmp_path: Path):
    path = tmp_path / "done.jsonl"
    path.write_text(json.dumps(request(0)) + "\n" + json.dumps(request(1)))
    assert desk.ingest(path)[1]["loaded"] == 2
    assert desk.ingest(path)[1]["loaded"] == 0  # and it is not read again


def test_a_file_of_one_unfinished_line_loads_once_the_line_ends(desk: Desk, tmp_path: Path):
    path = tmp_path / "new.jsonl"
    line = json.dumps(request(0))
    path.write_text(line[:10])
    assert desk.ingest(path)[1]["loaded"] == 0 and desk.count("files") == 0
    path.write_text(line + "\n")
    assert desk.ingest(path)[1]["loaded"] == 1


def test_appended_lines_reach_the_rollups(tmp_path: Path):
    from datetime import datetime

    from app.changes import timeline as changes
    from app.ingest.pipeline import ingest_paths
    from app.metrics import timeline as metrics
    from app.storage.store import Store

    path = write_jsonl(tmp_path / "a.jsonl", [request(i) for i in range(30)])
    store = Store(tmp_path / "data")
    ingest_paths(store, [str(path)])
    with open(path, "a") as fh:
        fh.write(
            "\n".join(
                json.dumps(request(i, model="gpt-5", timestamp=f"2026-03-02T12:00:{i:02d}Z"))
                for i in range(30, 50)
            )
            + "\n"
        )
    assert ingest_paths(store, [str(path)]).files[0].appended
    got = metrics.timeline(
        store, "support-reply", datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 13), bucket="1 hour"
    )
    assert got["requests"].sum() == 50
    assert store.scalar("SELECT count(DISTINCT file_id) FROM rollup_5m") == 1
    assert [e.to_value for e in changes.list_changes(store) if e.key == "model"] == ["gpt-5"]


def test_a_rewritten_file_replaces_its_rows(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [request(i) for i in range(5)])
    desk.ingest(path)
    write_jsonl(path, [request(i, model="gpt-4.1") for i in range(3)])
    desk.ingest(path)
    assert desk.rows("SELECT model, count(*) FROM requests GROUP BY 1") == [("gpt-4.1", 3)]


def test_a_request_id_logged_twice_in_one_file_is_stored_once(desk: Desk, tmp_path: Path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [request(0, model="first"), request(1), request(0, model="second"), request(0, model="third")],
    )
    code, out = desk.ingest(path)
    assert (out["loaded"], out["duplicates"]) == (2, 2)
    assert desk.rows("SELECT model FROM requests WHERE request_id = 'r-0'") == [("first",)]


@pytest.mark.parametrize("more", [0, 20], ids=["smaller-than-the-store", "larger-than-the-store"])
def test_a_request_id_logged_in_two_files_is_stored_once(desk: Desk, tmp_path: Path, more: int):
    # The ids of the smaller side are looked up among the other's: both ways must agree.
    a = write_jsonl(tmp_path / "a.jsonl", [request(0), request(1)])
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [request(1, model="again"), request(2)] + [request(100 + i) for i in range(more)],
    )
    code, out = desk.ingest(a, b)
    assert [(f["loaded"], f["duplicates"]) for f in out["files"]] == [(2, 0), (1 + more, 1)]
    assert desk.count() == 3 + more
    assert desk.rows("SELECT model FROM requests WHERE request_id = 'r-1'") == [("gpt-4o",)]
    # Loading b again (touched, unchanged content) still stores r-1 once.
    os.utime(b, None)
    desk.ingest(b)
    assert desk.count() == 3 + more
    # a, rewritten, now also logs r-2, which b (loaded after it) stores already.
    write_jsonl(a, [request(0, model="rewritten"), request(1), request(2)])
    assert [(f["loaded"], f["duplicates"]) for f in desk.ingest(a)[1]["files"]] == [(2, 1)]
    assert desk.count() == 3 + more


def test_rows_without_request_id_are_all_kept(desk: Desk, tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [request(0, request_id=None)] * 3)
    assert desk.ingest(path)[1]["loaded"] == 3


def _big_parquet(path: Path, rows: int) -> Path:
    big_frame(rows).write_parquet(path)
    return path


def _snapshot(data_dir: Path) -> tuple:
    con = duckdb.connect(str(data_dir / "rollback.duckdb"), read_only=True)
    try:
        return tuple(
            con.execute(f"SELECT count(*), hash(list(t ORDER BY t)) FROM {t} t").fetchone()
            for t in ("requests", "quarantine", "files")
        )
    finally:
        con.close()


def test_a_load_killed_half_way_leaves_the_database_as_it_was(desk: Desk, tmp_path: Path):
    small = write_jsonl(tmp_path / "small.jsonl", [request(i) for i in range(10)] + ["{bad"])
    desk.ingest(small)
    before = _snapshot(desk.data_dir)
    big = _big_parquet(tmp_path / "big.parquet", 2_000_000)
    db = desk.data_dir / "rollback.duckdb"
    size_before = db.stat().st_size
    cmd = [sys.executable, "-m", "app", "ingest", str(big), "--data-dir", str(desk.data_dir), "--json"]

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill it once it has started writing the new rows into the database file.
    deadline = time.monotonic() + 60
    while db.stat().st_size < size_before + (8 << 20) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert proc.poll() is None, "the load finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    assert _snapshot(desk.data_dir) == before
    code, out = desk.ingest(big)
    assert code == 0 and out["loaded"] == 2_000_000
    assert desk.count() == 2_000_010
    assert desk.ingest(big)[1]["loaded"] == 0


@pytest.fixture(params=["ids", "fingerprints"])
def repeats_counted_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with a file's repeats found by counting its ids in DuckDB, and again by
    counting their fingerprints in Polars (as a file of millions of rows is)."""
    if request.param == "fingerprints":
        monkeypatch.setattr(ingest, "FINGERPRINT_FROM_ROWS", 0)
    return request.param


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_the_first_occurrence_wins_in_a_file_read_in_parallel(
    desk: Desk, tmp_path: Path, fmt: str, repeats_counted_by: str
):
    # Large enough for DuckDB to read and insert it in many batches on several threads.
    rows = 400_000
    frame = (
        big_frame(rows)
        .with_columns(model=pl.lit("m"))
        .with_columns(
            # big-7 again near the end, and big-350000 again near the start: first one stays.
            request_id=pl.when(pl.int_range(rows) == rows - 3)
            .then(pl.lit("big-7"))
            .when(pl.int_range(rows) == 11)
            .then(pl.lit("big-350000"))
            .otherwise(pl.col("request_id")),
            model=pl.when(pl.int_range(rows) == rows - 3)
            .then(pl.lit("late"))
            .when(pl.int_range(rows) == 11)
            .then(pl.lit("early"))
            .otherwise(pl.col("model")),
        )
    )
    path = tmp_path / f"big.{fmt}"
    text = frame.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if fmt == "parquet":
        frame.write_parquet(path, row_group_size=20_000)
    elif fmt == "csv":
        text.write_csv(path)
    else:
        text.write_ndjson(path)
    code, out = desk.ingest(path)
    assert (code, out["loaded"], out["duplicates"]) == (0, rows - 2, 2)
    assert desk.rows(
        "SELECT model FROM requests WHERE request_id IN ('big-7', 'big-350000') ORDER BY request_id"
    ) == [("early",), ("m",)]


def test_a_file_with_a_repeated_id_and_a_bad_line_keeps_the_first_and_numbers_the_bad_one(
    desk: Desk, tmp_path: Path
):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [request(0, model="first"), request(1, latency_ms=-5), request(0, model="second")],
    )
    code, out = desk.ingest(path)
    assert (out["loaded"], out["quarantined"], out["duplicates"]) == (1, 1, 1)
    assert desk.rows("SELECT model FROM requests") == [("first",)]
    assert [row for _, row, _ in desk.quarantine()] == [2]


def test_ids_that_share_a_fingerprint_are_compared_in_full(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A fingerprint that every id of one length shares: each file below has a shared one.
    monkeypatch.setattr(ingest, "FINGERPRINT_FROM_ROWS", 0)
    monkeypatch.setattr(ingest, "FINGERPRINT", "hash(length(request_id))")
    distinct = write_jsonl(tmp_path / "a.jsonl", [request(i) for i in range(10, 20)])
    repeated = write_jsonl(tmp_path / "b.jsonl", [request(i) for i in range(30, 40)] + [request(31)])
    assert desk.ingest(distinct)[1]["duplicates"] == 0
    out = desk.ingest(repeated)[1]
    assert (out["loaded"], out["duplicates"]) == (10, 1)
    assert desk.count() == 20


def test_the_fingerprint_tells_apart_patterned_ids_that_duckdbs_string_hash_does_not():
    # Ids like the demo's: feature, seed, counter. DuckDB's hash() alone gives a fifth of
    # these 2M ids a value another id has too; the fingerprint must give none.
    con = duckdb.connect()
    con.execute("""CREATE TABLE ids AS
        SELECT 'ticket-triage-agent-' || (1000 + i // 200000) || '-'
               || lpad((i % 200000)::VARCHAR, 8, '0') AS request_id
        FROM range(2000000) t(i)""")
    ids, fingerprints = con.execute(
        f"SELECT count(DISTINCT request_id), count(DISTINCT {ingest.FINGERPRINT}) FROM ids"
    ).fetchone()
    assert fingerprints == ids == 2_000_000


def test_the_text_report_says_what_happened_to_each_file(desk: Desk, tmp_path: Path, capsys):
    from app.cli import main

    path = write_jsonl(tmp_path / "a.jsonl", [request(0), request(1), request(0), "{bad"])
    assert main(["ingest", str(path), "--data-dir", str(desk.data_dir)]) == 0
    first = capsys.readouterr().out.splitlines()
    assert f"{path}: 2 loaded, 1 quarantined, 1 duplicate" in first
    with open(path, "a") as fh:
        fh.write(json.dumps(request(2)) + "\n")
    main(["ingest", str(path), "--data-dir", str(desk.data_dir)])
    grown = capsys.readouterr().out.splitlines()
    assert (
        f"{path}: 1 loaded, 0 quarantined, 0 duplicates from the lines added since the last load"
    ) in grown
    main(["ingest", str(path), "--data-dir", str(desk.data_dir)])
    assert f"{path}: unchanged since the last load" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("in_kernel", [True, False])
def test_a_copy_of_part_of_a_file_holds_exactly_those_bytes(tmp_path: Path, monkeypatch, in_kernel: bool):
    from app.ingest import appends

    if not in_kernel:  # a file system that refuses copy_file_range

        def refuse(*args):
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(appends, "_copy_in_kernel", refuse)
    path = tmp_path / "a.jsonl"
    data = bytes(range(256)) * 9000
    path.write_bytes(data)
    with appends.TailCopy(path, 1000, len(data) - 77) as copy:
        assert copy.read_bytes() == data[1000:-77]
    assert not copy.exists()


def test_an_uploaded_file_is_whole_so_its_cut_last_line_is_quarantined(tmp_path: Path):
    from app.ingest.pipeline import ingest_paths
    from app.storage.store import Store

    path = tmp_path / "upload.jsonl"
    path.write_text(json.dumps(request(0)) + "\n" + json.dumps(request(1))[:25])
    store = Store(tmp_path / "data")
    result = ingest_paths(store, [str(path)], whole=[str(path)])
    assert (result.loaded, result.quarantined, result.files[0].waiting) == (1, 1, False)
    assert store.rows("SELECT source_row, reason FROM quarantine")[0][0] == 2


def test_a_good_row_is_no_duplicate_of_a_quarantined_row_with_its_id(desk: Desk, tmp_path: Path):
    # The bad row is quarantined, not stored: the good row with the same id is the first
    # stored, whatever other files the store holds.
    desk.ingest(write_jsonl(tmp_path / "a.jsonl", [request(5)]))
    out = desk.ingest(write_jsonl(tmp_path / "b.jsonl", [request(0, latency_ms=-1), request(0)]))[1]
    assert (out["loaded"], out["quarantined"], out["duplicates"]) == (1, 1, 0)
    assert desk.count() == 2


def test_a_load_stopped_before_deleting_its_duplicates_is_finished_by_the_next_process(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A file's rows are committed first and its duplicates deleted in a second transaction;
    # a process that stops in between leaves a note, and the next one finishes the load.
    from app.storage import dedupe
    from app.storage.store import Store

    desk.ingest(write_jsonl(tmp_path / "a.jsonl", [request(7)]))

    def stop(con, file_id):
        raise RuntimeError("stopped")

    monkeypatch.setattr(dedupe, "finish", stop)
    desk.ingest(write_jsonl(tmp_path / "b.jsonl", [request(0), request(1), request(0), request(7)]))
    monkeypatch.undo()
    raw = duckdb.connect(str(desk.data_dir / "rollback.duckdb"))  # as the stop left it
    assert raw.execute("SELECT count(*) FROM requests WHERE file_id = 2").fetchone()[0] == 4
    assert raw.execute("SELECT count(*) FROM meta WHERE key LIKE 'dedupe:%'").fetchone()[0] == 1
    raw.close()

    store = Store(desk.data_dir)
    assert sorted(r[0] for r in store.rows("SELECT request_id FROM requests")) == ["r-0", "r-1", "r-7"]
    assert store.scalar("SELECT sum(requests) FROM rollup_5m") == 3
    assert store.scalar("SELECT count(*) FROM meta WHERE key LIKE 'dedupe:%'") == 0
    assert store.rows("SELECT loaded, duplicates FROM files ORDER BY file_id") == [(1, 0), (2, 2)]
