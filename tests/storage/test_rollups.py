"""The rollups kept at ingest hold what a hand computation over the rows gives."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

from app.ingest.pipeline import ingest_paths
from app.storage import rollups
from app.storage.aggregates import LOG_BIN_WIDTH, ZERO_BIN, bin_bounds
from app.storage.store import Store

# One hour of "chat": successes and failures, a free request, scores on a bin's edge.
ROWS = [
    # minute, latency_ms, cost_usd, quality_score, error
    (1, 100.0, 0.002, 0.50, None),
    (2, 100.0, 0.002, 0.505, None),
    (3, 250.0, 0.0, 1.0, None),
    (7, 40.0, 0.001, None, "timeout"),
    (8, 99.5, None, 0.25, None),
    (9, 12.0, 0.0005, None, "rate_limit"),
]


def _log_bin(x: float, base: float = 1.01) -> int:
    return math.floor(math.log(x) / math.log(base)) if x > 0 else ZERO_BIN


@pytest.fixture
def store(tmp_path: Path) -> Store:
    lines = [
        {
            "timestamp": f"2026-03-02T10:{m:02d}:00Z",
            "feature": "chat",
            "request_id": f"r{m}",
            "model": "m1",
            "latency_ms": lat,
            "cost_usd": cost,
            "quality_score": q,
            "error": err,
        }
        for m, lat, cost, q, err in ROWS
    ]
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    store = Store(tmp_path / "data")
    assert ingest_paths(store, [str(path)]).loaded == len(ROWS)
    return store


def _hist(store: Store) -> dict[tuple[str, bool, int], int]:
    """hist_1h of the fixture's hour, as a reader sees it (the deferred histograms built)."""
    with store.connect() as con:
        rollups.ensure_deferred(con)
    return {
        (metric, ok, b): n
        for metric, ok, b, n in store.rows(
            "SELECT metric, ok, bin, sum(n)::INT FROM hist_1h WHERE bucket = '2026-03-02 10:00' GROUP BY ALL"
        )
    }


def test_histograms_split_success_from_failure_in_the_contracts_bins(store: Store):
    want: dict[tuple[str, bool, int], int] = {}
    for _, lat, cost, q, err in ROWS:
        ok = err is None
        for metric, value, base in (("latency_ms", lat, 1.01), ("cost_usd", cost, 1.01**5)):
            if value is not None:
                key = (metric, ok, _log_bin(value, base))
                want[key] = want.get(key, 0) + 1
        if q is not None:
            key = ("quality_score", ok, math.floor(q * 100))
            want[key] = want.get(key, 0) + 1
    assert _hist(store) == want
    # By hand: 99.5 ms and both 100 ms share a 1% bin, 0.505 is in the bin of 0.50, a score of 1
    # has its own bin, a free request is in the contract's zero bin.
    assert want[("latency_ms", True, 462)] == 3
    assert want[("quality_score", True, 50)] == 2
    assert want[("quality_score", True, 100)] == 1
    assert want[("cost_usd", True, ZERO_BIN)] == 1
    # Cost bins are 1.01^5 wide: 0.002 in bin floor(ln 0.002 / ln 1.0510) = -125.
    assert want[("cost_usd", True, -125)] == 2
    assert ("latency_ms", False, _log_bin(40.0)) in want


def test_latency_bins_are_one_percent_wide_and_cost_bins_five_times_that():
    assert LOG_BIN_WIDTH == pytest.approx(math.log(rollups.BIN_BASE), rel=1e-15)
    assert bin_bounds("latency_ms", 462) == pytest.approx((1.01**462, 1.01**463))
    assert bin_bounds("cost_usd", -125) == pytest.approx((1.01 ** (-625), 1.01 ** (-620)))
    assert _log_bin(100.0) == 462 and _log_bin(99.5) == 462 and _log_bin(100.3) == 463


def test_rollup_keeps_success_only_cost_beside_the_totals(store: Store):
    got = store.rows(
        "SELECT sum(requests), sum(errors), sum(cost_n), sum(cost_sum), sum(ok_cost_n), sum(ok_cost_sum) "
        "FROM rollup_5m"
    )[0]
    assert got[:3] == (6, 2, 5)
    assert got[3] == pytest.approx(0.002 + 0.002 + 0.0 + 0.001 + 0.0005)
    assert got[4] == 3
    assert got[5] == pytest.approx(0.004)


def test_old_rollups_are_rebuilt_into_the_new_tables_on_open(store: Store):
    before = _hist(store)
    sums = store.rows("SELECT * EXCLUDE (ok_cost_n, ok_cost_sum) FROM rollup_5m ORDER BY bucket")
    # The previous version's layout: no success split, latency alone in latency_hist_1h.
    con = duckdb.connect(str(store.path))
    con.execute("DROP TABLE hist_1h")
    con.execute("ALTER TABLE rollup_5m DROP COLUMN ok_cost_n")
    con.execute("ALTER TABLE rollup_5m DROP COLUMN ok_cost_sum")
    con.execute(
        "CREATE TABLE latency_hist_1h (file_id INTEGER, feature VARCHAR, bucket TIMESTAMP, "
        "bin INTEGER, n BIGINT)"
    )
    con.execute("INSERT INTO latency_hist_1h VALUES (1, 'chat', TIMESTAMP '2026-03-02 10:00', 462, 3)")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'rollup_version'")
    con.close()

    reopened = Store(store.data_dir)
    tables = {r[0] for r in reopened.rows("SELECT table_name FROM duckdb_tables()")}
    assert "latency_hist_1h" not in tables and "hist_1h" in tables
    assert reopened.scalar("SELECT value FROM meta WHERE key = 'rollup_version'") == rollups.VERSION
    assert _hist(reopened) == before
    assert reopened.rows("SELECT * EXCLUDE (ok_cost_n, ok_cost_sum) FROM rollup_5m ORDER BY bucket") == sums
    assert reopened.scalar("SELECT sum(ok_cost_n) FROM rollup_5m") == 3


def test_a_file_that_grew_adds_only_its_new_rows_to_the_histograms(store: Store, tmp_path: Path):
    path = tmp_path / "logs.jsonl"
    extra = {"timestamp": "2026-03-02T10:30:00Z", "feature": "chat", "request_id": "r30", "latency_ms": 100.0}
    path.write_text(path.read_text() + json.dumps(extra) + "\n")
    ingest_paths(store, [str(path)])
    hist = _hist(store)
    assert hist[("latency_ms", True, 462)] == 4
    assert sum(n for (metric, _, _), n in hist.items() if metric == "latency_ms") == len(ROWS) + 1


def test_cost_and_quality_histograms_wait_for_their_first_reader(store: Store, tmp_path: Path):
    metrics = "SELECT DISTINCT metric FROM hist_1h ORDER BY 1"
    # The load builds the latency histogram (the timeline reads it) and lists its file.
    assert store.rows(metrics) == [("latency_ms",)]
    assert store.rows("SELECT file_id FROM rollup_pending") != []
    with store.connect() as con:
        assert rollups.ensure_deferred(con) == 1
        assert rollups.ensure_deferred(con) == 0  # nothing left to build
    assert store.rows(metrics) == [("cost_usd",), ("latency_ms",), ("quality_score",)]
    assert store.rows("SELECT * FROM rollup_pending") == []
    built = _hist(store)

    # Detection's hourly frames build them too: a second load is pending until they run.
    other = tmp_path / "more.jsonl"
    other.write_text(
        json.dumps(
            {
                "timestamp": "2026-03-02T10:40:00Z",
                "feature": "chat",
                "request_id": "x1",
                "latency_ms": 100.0,
                "cost_usd": 0.002,
                "quality_score": 0.5,
            }
        )
        + "\n"
    )
    ingest_paths(store, [str(other)])
    assert store.scalar("SELECT count(*) FROM rollup_pending") == 1
    from datetime import datetime

    from app.detection.hourly import load_hourly

    load_hourly(store, datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 11))
    assert store.scalar("SELECT count(*) FROM rollup_pending") == 0
    after = _hist(store)
    assert after[("cost_usd", True, -125)] == built[("cost_usd", True, -125)] + 1
    assert after[("quality_score", True, 50)] == built[("quality_score", True, 50)] + 1


ONE_MORE = {"timestamp": "2026-03-02T11:05:00Z", "feature": "chat", "request_id": "z1", "user_id": "u9"}


def test_dimension_and_user_hours_are_built_by_their_first_reader_and_leave_with_their_file(
    store: Store, tmp_path: Path
):
    # The load lists its file; the first reader builds agg_dim_1h, agg_user_1h and
    # hist_dim_1h from it, with the figures a hand count of ROWS gives.
    assert store.scalar("SELECT count(*) FROM agg_dim_1h") == 0
    with store.connect() as con:
        assert rollups.ensure_deferred(con) == 1
    rows = store.rows(
        """SELECT value, requests, errors, ok_cost_n, ok_latency_n FROM agg_dim_1h
           WHERE dimension = 'model' ORDER BY 1"""
    )
    ok = [r for r in ROWS if r[4] is None]
    assert rows == [("m1", len(ROWS), len(ROWS) - len(ok), sum(r[2] is not None for r in ok), len(ok))]
    # a dimension no request carries is one value, '(none)', holding every request
    assert store.rows("SELECT value, requests FROM agg_dim_1h WHERE dimension = 'variant'") == [("(none)", 6)]
    lnsum = store.scalar("SELECT ok_latency_lnsum FROM agg_dim_1h WHERE dimension = 'region'")
    assert lnsum == pytest.approx(sum(math.log(lat) for _, lat, _, _, err in ROWS if err is None))
    assert store.scalar("SELECT count(*) FROM agg_user_1h") == 0  # no request names a user
    bins = dict(store.rows("SELECT bin, n FROM hist_dim_1h WHERE dimension = 'model'"))
    assert bins == {
        b: sum(1 for _, lat, *_ in ROWS if _log_bin(lat) == b) for b in {_log_bin(r[1]) for r in ROWS}
    }
    # A second file is pending until read; replacing a file takes its rows with it.
    other = tmp_path / "more.jsonl"
    other.write_text(json.dumps(ONE_MORE) + "\n")
    ingest_paths(store, [str(other)])
    assert store.scalar("SELECT count(*) FROM agg_user_1h") == 0
    with store.connect() as con:
        assert rollups.ensure_deferred(con) == 1
    assert store.rows("SELECT user_id, requests FROM agg_user_1h") == [("u9", 1)]
    file_id = store.scalar("SELECT DISTINCT file_id FROM requests WHERE request_id = 'z1'")
    with store.connect() as con:
        rollups.drop_file(con, file_id)
    assert store.scalar("SELECT count(*) FROM agg_user_1h") == 0
    assert store.scalar("SELECT sum(requests) FROM agg_dim_1h WHERE dimension = 'model'") == len(ROWS)


def test_readers_racing_to_build_the_deferred_rollups_all_see_them_whole(tmp_path: Path):
    # The app's sessions are threads of one process, each with its own connection: whichever
    # builds the pending rollups, every reader's query after its ensure_deferred sees them all.
    import threading

    from app.demo.setup import load_demo

    load_demo(tmp_path / "demo", scale=0.3)
    store = Store(tmp_path / "demo")
    total = store.request_count()
    # as a load leaves them: every file pending, the deferred tables empty
    store.execute("INSERT INTO rollup_pending SELECT DISTINCT file_id FROM requests")
    for table in rollups.VIEWS.values():
        store.execute(f"DELETE FROM {table}")
    seen: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def reader() -> None:
        try:
            start.wait()
            with Store(tmp_path / "demo").connect() as con:
                rollups.ensure_deferred(con)
                seen.append(
                    con.execute("SELECT sum(requests) FROM agg_dim_1h WHERE dimension = 'model'").fetchall()[
                        0
                    ][0]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert seen == [total] * 4
    assert store.scalar("SELECT count(*) FROM rollup_pending") == 0
