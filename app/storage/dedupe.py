"""A loaded file's duplicate rows: request_ids stored already, by another file or by an
earlier row of the same file (the first occurrence, in file order, stays).

Deleting rows in the transaction that inserted them makes DuckDB rewrite every row that
transaction inserted when it commits, on one thread (6.5 s for a 10M-row file). A load of
a whole file with duplicates therefore commits its rows with a note in `meta`
(`dedupe:<file_id>`), then deletes the duplicates in a second transaction, which also sums
the file's rollups and removes the note. A process that stopped in between leaves the note;
every process finishes such loads at its first connection (`finish_pending`), before
anything reads.
"""

from __future__ import annotations

import duckdb

from app.storage import rollups

NOTE = "dedupe:"


def _stored_ids_sql(con: duckdb.DuckDBPyConnection, file_id: int, rows: int) -> str | None:
    """SQL for the request_ids of this file's rows that other files store ($1: file_id);
    None when no other file is stored or this file's rows have no id. Rows parked on their
    way to the quarantine (negative file_id) are no other file's."""
    others, stored = con.execute(
        "SELECT count(*), coalesce(sum(loaded), 0) FROM files WHERE file_id <> ?", [file_id]
    ).fetchone()
    if (
        not others
        or not con.execute("SELECT count(request_id) FROM requests WHERE file_id = ?", [file_id]).fetchone()[
            0
        ]
    ):
        return None
    # The join's hash table is built from the smaller side: a few new lines against a large
    # store look up their ids among the stored ones, not the other way round.
    if rows <= stored:
        return """SELECT o.request_id FROM requests o WHERE o.file_id <> $1 AND o.file_id > 0
                  AND o.request_id IN (SELECT request_id FROM requests WHERE file_id = $1)"""
    return "SELECT request_id FROM requests WHERE file_id <> $1 AND file_id > 0"


def count(con: duckdb.DuckDBPyConnection, file_id: int, rows: int, repeated: int) -> int:
    """How many of this file's `rows` stored rows `delete` would remove; `repeated`: how
    many repeat an earlier row's request_id within the file."""
    n = repeated
    stored_ids = _stored_ids_sql(con, file_id, rows - n)
    if stored_ids:  # once repeats are gone, one row per id stored elsewhere
        n += int(
            con.execute(
                f"""SELECT count(DISTINCT request_id) FROM requests
                WHERE file_id = $1 AND request_id IN ({stored_ids})""",
                [file_id],
            ).fetchone()[0]
        )
    return n


def delete(con: duckdb.DuckDBPyConnection, file_id: int, rows: int, repeated: int) -> int:
    """Delete this file's duplicate rows; returns how many. When some `repeated` an earlier
    row's id, the rows must have been inserted in file order: the first occurrence is the
    lowest rowid."""
    dropped = 0
    if repeated:
        dropped += int(
            con.execute(
                """DELETE FROM requests WHERE rowid IN (
                 SELECT rid FROM (
                   SELECT rowid AS rid, min(rowid) OVER (PARTITION BY request_id) AS first
                   FROM requests
                   WHERE file_id = $1 AND request_id IN (
                     SELECT request_id FROM requests WHERE file_id = $1
                     GROUP BY 1 HAVING count(*) > 1))
                 WHERE rid > first)""",
                [file_id],
            ).fetchone()[0]
        )
    stored_ids = _stored_ids_sql(con, file_id, rows - dropped)
    if stored_ids:
        dropped += int(
            con.execute(
                f"DELETE FROM requests WHERE file_id = $1 AND request_id IN ({stored_ids})", [file_id]
            ).fetchone()[0]
        )
    return dropped


def note(con: duckdb.DuckDBPyConnection, file_id: int, repeated: bool) -> None:
    """Record, in the load's transaction, that the file's duplicates are still stored."""
    con.execute(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
        [f"{NOTE}{int(file_id)}", "repeated" if repeated else "stored"],
    )


def finish(con: duckdb.DuckDBPyConnection, file_id: int) -> int:
    """Inside the caller's transaction: delete the noted file's duplicates, sum its rollups,
    remove the note. Returns how many rows were deleted."""
    row = con.execute("SELECT value FROM meta WHERE key = ?", [f"{NOTE}{int(file_id)}"]).fetchone()
    rows = con.execute("SELECT count(*) FROM requests WHERE file_id = ?", [file_id]).fetchone()[0]
    dropped = delete(con, file_id, int(rows), int(bool(row) and row[0] == "repeated"))
    rollups.drop_file(con, file_id)  # a rebuild of every rollup may have summed it already
    rollups.add_file(con, file_id)
    con.execute("DELETE FROM meta WHERE key = ?", [f"{NOTE}{int(file_id)}"])
    return dropped


def finish_pending(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the caller's transaction: finish every load that stopped between its two
    transactions."""
    for (key,) in con.execute("SELECT key FROM meta WHERE starts_with(key, ?)", [NOTE]).fetchall():
        finish(con, int(key.removeprefix(NOTE)))
