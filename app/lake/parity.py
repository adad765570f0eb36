"""Are two builds of the aggregate tables the same? Counts must be equal and sums equal to a
relative 1e-9 (the engines add in different orders), row for row on each table's keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from app.lake.tables import table as table_view
from app.storage.aggregates import MEASURE_NAMES, TABLES

REL_TOL = 1e-9


@dataclass
class TableDiff:
    table: str
    rows_a: int
    rows_b: int
    only_a: int
    only_b: int
    mismatched: list[str] = field(default_factory=list)  # "column at key: a != b", a few

    @property
    def equal(self) -> bool:
        return self.only_a == 0 and self.only_b == 0 and not self.mismatched and self.rows_a == self.rows_b


def compare(a: str, b: str) -> list[TableDiff]:
    diffs = []
    for name, keys in TABLES.items():
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        table_view(con, a, name)
        con.execute(f"ALTER VIEW {name} RENAME TO ta")
        table_view(con, b, name)
        con.execute(f"ALTER VIEW {name} RENAME TO tb")
        cols = [
            c
            for c in ("users", "n", *MEASURE_NAMES)
            if c in {r[0] for r in con.execute("DESCRIBE ta").fetchall()}
        ]
        on = " AND ".join(f"ta.{k} IS NOT DISTINCT FROM tb.{k}" for k in keys)
        rows_a = con.execute("SELECT count(*) FROM ta").fetchone()[0]
        rows_b = con.execute("SELECT count(*) FROM tb").fetchone()[0]
        only_a = con.execute(f"SELECT count(*) FROM ta ANTI JOIN tb ON {on}").fetchone()[0]
        only_b = con.execute(f"SELECT count(*) FROM tb ANTI JOIN ta ON {on}").fetchone()[0]
        diff = TableDiff(name, rows_a, rows_b, only_a, only_b)
        for c in cols:
            kind = con.execute(f"SELECT typeof(ta.{c}) FROM ta LIMIT 1").fetchone()
            if kind and kind[0] == "DOUBLE":
                cond = (
                    f"NOT ((ta.{c} IS NULL AND tb.{c} IS NULL) OR "
                    f"abs(ta.{c} - tb.{c}) <= {REL_TOL} * greatest(abs(ta.{c}), abs(tb.{c}), 1e-300))"
                )
            else:
                cond = f"ta.{c} IS DISTINCT FROM tb.{c}"
            bad = con.execute(
                f"SELECT {', '.join('ta.' + k for k in keys)}, ta.{c}, tb.{c} "
                f"FROM ta JOIN tb ON {on} WHERE {cond} LIMIT 3"
            ).fetchall()
            diff.mismatched += [f"{c} at {r[: len(keys)]}: {r[-2]!r} != {r[-1]!r}" for r in bad]
        diffs.append(diff)
        con.close()
    return diffs
