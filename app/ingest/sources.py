"""Log files on disk: which format each is, and the DuckDB SQL that reads it.

Every reader yields a relation with `__row` (line number for JSONL, data row number for CSV
and Parquet, counting from 1), `__bad` (why the line could not be read at all, else NULL),
`__raw` (the line or row as text, for the quarantine) and the source columns. Columns named
in `text` are read as text, so that ingest can check their values itself and quarantine a
row rather than fail a file; the other columns keep the type DuckDB detects.
"""

from __future__ import annotations

import errno
import glob
import gzip
import json
import mmap
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from app.ingest import sniff

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

MAX_LINE_BYTES = 64 << 20
# The JSON reader's buffers follow its largest object: at 64 MiB it hands the insert
# batches that leave part-filled row groups, which the next checkpoint rewrites (about half
# a second per million rows). Lines longer than this are read line by line instead.
JSON_READER_MAX_OBJECT = 16 << 20
# JSONL is read one line per value; a delimiter no JSON text contains keeps each line whole.
_NO_DELIMITER = "\x01\x02\x03\x04"
_JSON_SCALARS = (
    "VARCHAR",
    "BOOLEAN",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "TIME",
    "UUID",
    "JSON",
)


class UnreadableFile(ValueError):
    """A file that cannot be loaded at all; the message names it and says why."""


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str  # jsonl | csv | parquet
    gzipped: bool
    kind: str = ""  # telemetry held in that format: otlp | langfuse | langfuse-scores

    @property
    def unit(self) -> str:
        """What a position in this file counts: JSONL lines, CSV and Parquet rows."""
        return "line" if self.format == "jsonl" else "row"


def detect_format(path: Path, kind: str | None = None) -> SourceFile:
    """The file's format from its name, and the telemetry it holds: `kind` when given
    (`ingest --format`), else told by its content (app/ingest/sniff.py)."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise UnreadableFile(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(none)'}; "
            "expected .jsonl, .csv or .parquet, optionally .gz"
        )
    if kind is None:
        kind = sniff.sniff(path, fmt, gz)
    return SourceFile(path=path, format=fmt, gzipped=gz, kind=kind)


def expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files named by paths, directories (recursively) and globs; and the names that match nothing."""
    files, missing, _ = expand_with_links(paths)
    return files, missing


def expand_with_links(paths: list[str]) -> tuple[list[Path], list[str], list[tuple[Path, str]]]:
    """Like `expand`, plus the symbolic links found in directories that were not followed,
    each with the reason (a loop, a link to nothing, a link to a folder)."""
    found: list[Path] = []
    missing: list[str] = []
    links: list[tuple[Path, str]] = []
    for spec in paths:
        p = Path(spec)
        if p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_symlink() and not q.name.startswith("."):
                    reason = _unfollowed_link(q)
                    if reason:
                        links.append((q, reason))
                        continue
                if q.is_file() and _loadable(q):
                    found.append(q)
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
    return unique, missing, links


def _unfollowed_link(link: Path) -> str | None:
    """Why a link in a folder is not loaded, or None when it leads to a file."""
    try:
        target = link.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop, skipped"
        return "symbolic link to nothing (dangling), skipped"
    if stat.S_ISDIR(target.st_mode):
        return "symbolic link to a folder, not followed (name the folder itself to load it)"
    return None


def _loadable(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    try:
        detect_format(path, kind="")  # the name alone says whether a file can be loaded
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


@dataclass(frozen=True)
class Layout:
    """What DuckDB detects in a file: its columns and types (and for CSV the header and the
    date formats its sniffer recognised)."""

    columns: list[tuple[str, str]]
    header: bool = True
    date_format: str | None = None
    timestamp_format: str | None = None


SAMPLE_ROWS = 20480
_JSON_TYPES = {
    "VARCHAR": "VARCHAR",
    "UBIGINT": "BIGINT",
    "BIGINT": "BIGINT",
    "DOUBLE": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "NULL": "VARCHAR",
}


def _csv_options(readable: Path) -> str:
    return (
        f"{literal(str(readable))}, sample_size = {SAMPLE_ROWS}, "
        f"max_line_size = {MAX_LINE_BYTES}, store_rejects = true"
    )


def _lines(path: str, rejects: bool = False) -> str:
    """A JSONL file as one text value per line, blank lines included (they keep numbers).

    A line that is not UTF-8 text is skipped; with `rejects` it is noted in DuckDB's
    reject tables (`csv_rejects`), so that it is quarantined with its number."""
    skip = ", ignore_errors = true" + (", store_rejects = true" if rejects else "")
    return (
        f"read_csv({path}, columns = {{'line': 'VARCHAR'}}, delim = {literal(_NO_DELIMITER)}, "
        "quote = '', escape = '', header = false, auto_detect = false, strict_mode = false, "
        f"max_line_size = {MAX_LINE_BYTES}{skip})"
    )


def inspect(con, source: SourceFile, readable: Path) -> Layout:
    """The file's columns and the types DuckDB detects for them."""
    if readable.stat().st_size == 0:
        return Layout(columns=[])
    if source.format == "parquet":
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(readable))})").fetchall()
        return Layout(columns=[(r[0], r[1]) for r in rows])
    if source.format == "csv":
        header, date_format, ts_format, cols = con.execute(
            f"""SELECT HasHeader, DateFormat, TimestampFormat, Columns
                FROM sniff_csv({_csv_options(readable)})"""
        ).fetchone()
        return Layout(
            columns=[(c["name"], c["type"]) for c in cols],
            header=bool(header),
            date_format=date_format,
            timestamp_format=ts_format,
        )
    try:
        rows = con.execute(
            f"""DESCRIBE SELECT * FROM read_json({literal(str(readable))},
                  format = 'newline_delimited', ignore_errors = true,
                  sample_size = {SAMPLE_ROWS}, maximum_object_size = {JSON_READER_MAX_OBJECT})"""
        ).fetchall()
    except duckdb.Error:
        rows = []
    if rows and [(r[0], r[1]) for r in rows] != [("json", "JSON")]:
        return Layout(columns=[(r[0], "VARCHAR" if r[1] == "NULL" else r[1]) for r in rows])
    # A sample with lines that are not objects: the keys of the objects among the first
    # lines, in order of first appearance; broken lines and non-objects are passed over.
    structure = con.execute(
        f"""SELECT json_group_structure(j) FROM (
              SELECT TRY(json(line)) AS j FROM (SELECT line FROM {_lines(literal(str(readable)))}
                                                LIMIT {SAMPLE_ROWS}))
            WHERE json_type(j) = 'OBJECT'"""
    ).fetchone()[0]
    shape = json.loads(structure) if structure else {}
    if not isinstance(shape, dict):
        return Layout(columns=[])
    return Layout(
        columns=[(k, _JSON_TYPES.get(v, "JSON") if isinstance(v, str) else "JSON") for k, v in shape.items()]
    )


def reader_sql(
    source: SourceFile,
    readable: Path,
    layout: Layout,
    text: set[str],
    fast_types: dict[str, str] | None = None,
    numbered: bool = True,
) -> str:
    """SQL for the relation `__row, __bad, __raw, <columns>`; columns in `text` as VARCHAR.

    `fast_types` (JSONL only) reads with DuckDB's JSON reader, the columns it names in the
    given types: that reader fails on a line it cannot read or a value that is not of its
    column's type (so the file must then be read line by line), and numbers objects rather
    than lines (see `blank_lines`). Numbering makes that reader keep the file's order on
    one thread; `numbered=False` leaves `__row` NULL and reads in parallel."""
    path = literal(str(readable))
    columns = layout.columns
    if source.format == "parquet":
        select = ", ".join(
            f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" if c in text else ident(c) for c, _ in columns
        )
        return (
            f"SELECT file_row_number + 1 AS __row, NULL::VARCHAR AS __bad, "
            f"{_raw_struct(columns)} AS __raw, {select} "
            f"FROM read_parquet({path}, file_row_number = true)"
        )
    if source.format == "csv":
        row = "row_number() OVER ()" if numbered else "NULL::BIGINT"
        return _csv_sql(f"(SELECT {row} AS __row, * FROM {_csv_reader(readable, layout)})", layout, text)
    if fast_types is not None:
        row = "row_number() OVER ()" if numbered else "NULL::BIGINT"
        return (
            f"SELECT {row} AS __row, NULL::VARCHAR AS __bad, "
            f"{_raw_struct(columns)} AS __raw, {', '.join(ident(c) for c, _ in columns)} "
            f"FROM {_json_reader(path, columns, text, fast_types)}"
        )
    return _jsonl_sql(
        f"(SELECT row_number() OVER () AS __row, line FROM {_lines(path, True)})", columns, text
    )


# A numbered read keeps the file's order on one thread, and so does everything after it in
# the same statement: checks and the insert ran single-threaded (every CSV load, and a JSONL
# file with one bad row: 5 times slower). NUMBERED_TABLE holds the numbered rows (CSV, JSON
# reader) or lines (line by line) instead; the rest of the load then reads it in parallel.
NUMBERED_TABLE = "rd_numbered"


def _csv_reader(readable: Path, layout: Layout) -> str:
    # Every value is read as text, so a value never makes DuckDB reject its row; the
    # detected types are applied afterwards (_csv_sql).
    return f"read_csv({_csv_options(readable)}, header = {str(layout.header).lower()}, all_varchar = true)"


def _csv_sql(numbered_rows: str, layout: Layout, text: set[str]) -> str:
    """The CSV relation over `numbered_rows` (`__row` and the file's columns as text): the
    detected types applied, the text still at hand as __t_<name>."""
    select = []
    for c, typ in layout.columns:
        typed = c not in text and typ != "VARCHAR"
        select.append(f"{_csv_typed(c, typ, layout)} AS {ident(c)}" if typed else ident(c))
        if typed:
            select.append(f"{ident(c)} AS {ident('__t_' + c)}")
    return (
        f"SELECT __row, NULL::VARCHAR AS __bad, {_raw_struct(layout.columns)} AS __raw, "
        f"{', '.join(select)} FROM {numbered_rows}"
    )


def numbered_sql(
    con, source: SourceFile, readable: Path, layout: Layout, text: set[str], fast_types: dict[str, str] | None
) -> str:
    """Like reader_sql for a numbered read of a CSV or JSONL file (JSONL by the JSON reader
    with `fast_types`, else line by line), with the numbering done once into
    NUMBERED_TABLE."""
    path, columns = literal(str(readable)), layout.columns
    if source.format == "csv":
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {NUMBERED_TABLE} AS
                        SELECT row_number() OVER () AS __row, *
                        FROM {_csv_reader(readable, layout)}""")
        return _csv_sql(NUMBERED_TABLE, layout, text)
    if fast_types is not None:
        names = ", ".join(ident(c) for c, _ in columns)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {NUMBERED_TABLE} AS
                        SELECT row_number() OVER () AS __row, {names}
                        FROM {_json_reader(path, columns, text, fast_types)}""")
        return (
            f"SELECT __row, NULL::VARCHAR AS __bad, {_raw_struct(columns)} AS __raw, "
            f"{names} FROM {NUMBERED_TABLE}"
        )
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {NUMBERED_TABLE} AS
                    SELECT row_number() OVER () AS __row, line FROM {_lines(path, True)}""")
    return _jsonl_sql(NUMBERED_TABLE, columns, text)


def _json_reader(
    path: str, columns: list[tuple[str, str]], text: set[str], fast_types: dict[str, str]
) -> str:
    types = ", ".join(
        f"{literal(c)}: {literal(fast_types.get(c) or ('VARCHAR' if c in text else t))}" for c, t in columns
    )
    return (
        f"read_json({path}, format = 'newline_delimited', columns = {{{types}}}, "
        f"maximum_object_size = {JSON_READER_MAX_OBJECT})"
    )


def _csv_typed(name: str, typ: str, layout: Layout) -> str:
    col = ident(name)
    if typ.startswith("TIMESTAMP") and layout.timestamp_format:
        return f"try_strptime({col}, {literal(layout.timestamp_format)})"
    if typ == "DATE" and layout.date_format:
        return f"CAST(try_strptime({col}, {literal(layout.date_format)}) AS DATE)"
    return f"TRY_CAST({col} AS {typ})"


def _raw_struct(columns: list[tuple[str, str]]) -> str:
    if not columns:
        return "NULL::VARCHAR"
    pairs = ", ".join(f"{literal(c)}, {ident(c)}" for c, _ in columns)
    return f"CAST(json_object({pairs}) AS VARCHAR)"


def _jsonl_sql(numbered_lines: str, columns: list[tuple[str, str]], text: set[str]) -> str:
    """JSONL read as lines (`numbered_lines`: a relation of `__row, line`), so a broken line
    is quarantined with its number; each line is parsed once into a struct of the wanted
    columns."""
    structure: dict[str, str] = {}
    exprs: list[str] = []
    for name, typ in columns:
        if name in text:
            structure[name] = "VARCHAR"
            exprs.append(f"__s.{ident(name)} AS {ident(name)}")
        elif typ in _JSON_SCALARS or typ.endswith("[]") and typ[:-2] in _JSON_SCALARS:
            structure[name] = typ
            exprs.append(f"__s.{ident(name)} AS {ident(name)}")
        else:  # nested: read as JSON, then cast to the detected type
            structure[name] = "JSON"
            exprs.append(f"TRY_CAST(__s.{ident(name)} AS {typ}) AS {ident(name)}")
    shape = literal(json.dumps(structure or {"__none": "VARCHAR"}))
    extracted = (", " + ", ".join(exprs)) if exprs else ""
    return f"""
        SELECT __row,
               CASE WHEN __s IS NULL AND json_valid(__line) THEN 'not a JSON object'
                    WHEN __s IS NULL THEN 'broken JSON'
                    WHEN NOT starts_with(ltrim(__line), '{{') THEN 'not a JSON object' END
                 AS __bad,
               __line AS __raw {extracted}
        FROM (SELECT __row, line AS __line, TRY(json_transform(line, {shape})) AS __s
              FROM {numbered_lines}
              WHERE line IS NOT NULL AND trim(line, ' \t\r') <> '')"""


def _has_rejects_table(con) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reject_errors'").fetchone()[0]
    )


def last_scan_id(con) -> int:
    """The id of the last CSV scan that stored rejects in this connection (0: none yet)."""
    if not _has_rejects_table(con):
        return 0
    return int(con.execute("SELECT coalesce(max(scan_id), 0) FROM reject_errors").fetchone()[0])


def csv_rejects(con, after_scan: int, header_lines: int = 1) -> list[tuple[int, str, str]]:
    """(data row, reason, raw line) for the CSV rows (or JSONL lines, `header_lines=0`)
    DuckDB could not parse in the scans since `after_scan`."""
    if not _has_rejects_table(con):
        return []
    rows = con.execute(
        """SELECT line - ?, string_agg(DISTINCT error_type, '; '),
                  string_agg(DISTINCT error_message, '; '), any_value(csv_line)
           FROM reject_errors WHERE scan_id > ? GROUP BY line ORDER BY line""",
        [header_lines, after_scan],
    ).fetchall()
    return [(int(r[0]), _reject_reason(str(r[1]), str(r[2])), str(r[3])) for r in rows]


def _reject_reason(kind: str, message: str) -> str:
    # DuckDB's own message for a byte sequence that is not UTF-8 speaks of CSV options.
    if "INVALID UNICODE" in kind.upper() or "unicode" in message.lower():
        return "not UTF-8 text (re-encode the file as UTF-8)"
    return message


def lines_sql(readable: Path) -> str:
    """A JSONL file as a relation of its lines (column `line`), blank ones included."""
    return _lines(literal(str(readable)))


def blank_lines(readable: Path) -> list[int]:
    """Numbers of the blank lines (empty, or spaces, tabs and carriage returns only) of a
    JSONL file, as the line-by-line read numbers them. Found by searching the bytes: numbering
    every line in DuckDB takes one thread and seconds for millions of lines."""
    if readable.stat().st_size == 0:
        return []
    out: list[int] = []
    with open(readable, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if _BLANK_FIRST.match(data):
            out.append(1)
        line, counted = 1, 0
        for m in _BLANK_AFTER.finditer(data):
            if m.end() == len(data) and m.end() == m.start() + 1:
                break  # the file's final newline: no line follows it
            line += _newlines(data, counted, m.start() + 1)
            counted = m.start() + 1
            out.append(line)
    return out


def _newlines(data: mmap.mmap, start: int, end: int, chunk: int = 1 << 26) -> int:
    """How many newlines data[start:end] holds, read 64 MiB at a time."""
    return sum(data[i : min(i + chunk, end)].count(b"\n") for i in range(start, end, chunk))


# A blank line: at the start of the file, or after a newline; ending at a newline or at the
# end of the file (an empty last line after the final newline is no line).
_BLANK_FIRST = re.compile(rb"[ \t\r]*(?:\n|\Z)")
_BLANK_AFTER = re.compile(rb"\n[ \t\r]*(?=\n|\Z)")
