"""Exporting a post-mortem and the pages' cache key, on the demo week (225k requests).

    .venv/bin/python bench/export_bench.py [--repeat 9]

- export: median time of `postmortem.export` for the demo's canary incident (one verified
  rollback on record), with how many times it opens the DuckDB file and the ledger; the
  baseline, in the same run, is one bare scan of the incident's feature over its window.
- cache key: median time of `ui.common.data_version()`, which covers the DuckDB files and the
  ledger, against its DuckDB part alone (what it covered before).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from app.demo.setup import load_demo  # noqa: E402
from app.incidents import postmortem  # noqa: E402
from app.incidents.log import IncidentLog  # noqa: E402
from app.rollback.actions import execute  # noqa: E402
from app.storage import store as store_module  # noqa: E402
from app.storage.datadir import DataDir  # noqa: E402
from app.storage.store import Store  # noqa: E402

ONSET = datetime(2026, 11, 21, 9)


def median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


class Opens:
    """Counts DuckDB and SQLite connections opened while it is active."""

    def __init__(self) -> None:
        self.duckdb = self.sqlite = 0

    def __enter__(self) -> Opens:
        self._duck, self._lite = store_module.duckdb.connect, sqlite3.connect

        def duck(*a, **k):
            self.duckdb += 1
            return self._duck(*a, **k)

        def lite(*a, **k):
            self.sqlite += 1
            return self._lite(*a, **k)

        store_module.duckdb.connect, sqlite3.connect = duck, lite
        return self

    def __exit__(self, *exc: object) -> None:
        store_module.duckdb.connect, sqlite3.connect = self._duck, self._lite


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="export-bench-")) / "data"
    load_demo(data)
    incident = IncidentLog(data).open(
        "Summaries failing on the canary",
        ["doc-summarizer"],
        "SEV2",
        playbook="canary-failure",
        metric="error_rate",
        onset=ONSET,
        actor="bench",
    )
    assert execute(data, "doc-summarizer", "rollout", 0, operator="bench", incident_id=incident.id).verified

    def export() -> str:
        return postmortem.export(DataDir(data), incident.id)

    export()  # warm: imports, the store's first-open checks
    with Opens() as opens:
        export()
    export_ms = median_ms(export, args.repeat)
    scan_ms = median_ms(
        lambda: Store(data).rows(
            "SELECT count(*), count(error), avg(quality_score) FROM requests "
            "WHERE feature = 'doc-summarizer' AND timestamp >= ?",
            [ONSET],
        ),
        args.repeat,
    )

    import os

    os.environ["ROLLBACK_DESK_DATA"] = str(data)
    from app.ui import common

    def duckdb_part() -> object:
        return Store(data).rows("""SELECT (SELECT count(*) FROM files),
                                          (SELECT max(loaded_at) FROM files),
                                          (SELECT count(*) FROM changes)""")

    key_ms = median_ms(common.data_version, args.repeat)
    duck_ms = median_ms(duckdb_part, args.repeat)
    print(f"duckdb {duckdb.__version__}, {args.repeat} runs each, medians")
    print(
        f"post-mortem export: {export_ms:.0f} ms; opens the DuckDB file {opens.duckdb} time(s) "
        f"and the ledger {opens.sqlite} time(s); bare scan of the feature since the onset: "
        f"{scan_ms:.0f} ms; ratio {export_ms / scan_ms:.1f}"
    )
    print(
        f"page cache key (DuckDB + ledger): {key_ms:.1f} ms; DuckDB part alone: {duck_ms:.1f} ms; "
        f"ratio {key_ms / duck_ms:.2f}"
    )


if __name__ == "__main__":
    main()
