"""Log files on disk: which format each is, and the DuckDB SQL that reads it.

Every reader yields a relation with `__row` (line number for JSONL, row number for CSV and
Parquet), `__bad` (why the line could not be read at all, else NULL) and the source
columns. Canonical-named columns are read as text so that ingest can validate their types
itself and quarantine a row rather than fail a file.
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.schema import FIELD_NAMES

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
           ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class UnreadableFile(ValueError):
    """A file that cannot be loaded at all; the message names it and says why."""


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str  # jsonl | csv | parquet
    gzipped: bool


def detect(path: Path) -> SourceFile:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise UnreadableFile(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(none)'}; "
            "expected .jsonl, .csv or .parquet, optionally .gz"
        )
    return SourceFile(path=path, format=fmt, gzipped=gz)


def expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files named by paths, directories (recursively) and globs; and the names that match nothing."""
    found: list[Path] = []
    missing: list[str] = []
    for spec in paths:
        p = Path(spec)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.is_file() and _loadable(q)))
        elif p.exists():
            found.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            files = [m for m in matches if m.is_file()]
            if files:
                found.extend(files)
            else:
                missing.append(spec)
    seen: set[Path] = set()
    unique = []
    for f in found:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(r)
    return unique, missing


def _loadable(path: Path) -> bool:
    try:
        detect(path)
        return True
    except UnreadableFile:
        return False


def literal(text: str) -> str:
    """A SQL string literal (quotes doubled), for file paths in table functions."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Staging:
    """Decompresses a gzipped Parquet file (DuckDB reads .gz CSV/JSONL natively)."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self._tmp: str | None = None

    def __enter__(self) -> Path:
        if self.source.format == "parquet" and self.source.gzipped:
            fd, self._tmp = tempfile.mkstemp(suffix=".parquet")
            with os.fdopen(fd, "wb") as out, gzip.open(self.source.path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            return Path(self._tmp)
        return self.source.path

    def __exit__(self, *exc: object) -> None:
        if self._tmp:
            os.unlink(self._tmp)


def reader_sql(con, source: SourceFile, readable: Path) -> tuple[str, list[tuple[str, str]]]:
    """SQL for the source relation and its (column, type) list, without __row/__bad."""
    path = literal(str(readable))
    if source.format == "parquet":
        cols = con.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()
        columns = [(c[0], c[1]) for c in cols]
        select = ", ".join(ident(c) for c, _ in columns)
        sql = (f"SELECT file_row_number + 1 AS __row, NULL::VARCHAR AS __bad, {select} "
               f"FROM read_parquet({path}, file_row_number = true)")
        return sql, columns
    if source.format == "csv":
        header = con.execute(
            f"DESCRIBE SELECT * FROM read_csv({path}, all_varchar = true)"
        ).fetchall()
        text_cols = {c[0]: "VARCHAR" for c in header if c[0] in FIELD_NAMES}
        types = "{" + ", ".join(f"{literal(k)}: 'VARCHAR'" for k in text_cols) + "}"
        opts = f"store_rejects = true, types = {types}" if text_cols else "store_rejects = true"
        cols = con.execute(f"DESCRIBE SELECT * FROM read_csv({path}, {opts})").fetchall()
        columns = [(c[0], c[1]) for c in cols]
        select = ", ".join(ident(c) for c, _ in columns)
        sql = (f"SELECT row_number() OVER () AS __row, NULL::VARCHAR AS __bad, {select} "
               f"FROM read_csv({path}, {opts})")
        return sql, columns
    # JSONL: read lines as text so a broken line is quarantined with its number.
    try:
        cols = con.execute(
            f"DESCRIBE SELECT * FROM read_json({path}, format = 'newline_delimited', "
            "ignore_errors = true, sample_size = 20000, maximum_object_size = 67108864)"
        ).fetchall()
    except Exception:  # a file whose sample has no parseable object: every line is bad
        cols = []
    columns = []
    exprs = []
    for name, typ, *_ in cols:
        if name in FIELD_NAMES or typ in ("JSON", "VARCHAR"):
            columns.append((name, "VARCHAR"))
            exprs.append(f"json_extract_string(__j, {literal('$.' + ident(name))}) AS {ident(name)}")
        else:
            columns.append((name, typ))
            exprs.append(
                f"TRY_CAST(json_extract(__j, {literal('$.' + ident(name))}) AS {typ}) AS {ident(name)}"
            )
    lines = (f"read_csv({path}, columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '', "
             "escape = '', header = false, auto_detect = false, max_line_size = 67108864)")
    extracted = (", " + ", ".join(exprs)) if exprs else ""
    sql = f"""
        SELECT __row, CASE WHEN __j IS NULL THEN 'broken JSON'
                           WHEN json_type(__j) <> 'OBJECT' THEN 'not a JSON object' END AS __bad
               {extracted}
        FROM (SELECT __row, TRY(json(line)) AS __j
              FROM (SELECT row_number() OVER () AS __row, line FROM {lines})
              WHERE line IS NOT NULL AND trim(line) <> '')"""
    return sql, columns


def csv_rejects(con) -> list[tuple[int, str, str]]:
    """(line, reason, raw line) for the CSV rows DuckDB could not parse in the last read."""
    try:
        rows = con.execute(
            """SELECT line, string_agg(DISTINCT error_type || ': ' || error_message, '; '),
                      any_value(csv_line)
               FROM reject_errors GROUP BY line ORDER BY line"""
        ).fetchall()
    except Exception:
        return []
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]
