"""Log files -> validated requests + quarantine, idempotent by file and by request_id.

One file is one transaction: a load killed half-way leaves the database as it was before
that file. A file loaded again unchanged adds nothing; a file that changed since (grew, or
was rewritten) is reloaded cleanly: its previous rows are replaced in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app import changes
from app.mapping import Mapping, MappingError
from app.schema import FIELD_NAMES, FIELDS
from app.sources import (
    SourceFile,
    Staging,
    UnreadableFile,
    csv_rejects,
    detect,
    expand,
    ident,
    reader_sql,
)
from app.store import Store

Progress = Callable[[int, int, str], None]

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")

_MACROS = (
    """CREATE OR REPLACE TEMP MACRO rd_epoch(x) AS CASE
         WHEN abs(x) >= 1e11 THEN make_timestamp(CAST(x * 1000 AS BIGINT))
         ELSE make_timestamp(CAST(x * 1000000 AS BIGINT)) END""",
    """CREATE OR REPLACE TEMP MACRO rd_parse_ts(s) AS CASE
         WHEN regexp_full_match(trim(s), '-?[0-9]+(\\.[0-9]+)?') THEN rd_epoch(CAST(trim(s) AS DOUBLE))
         ELSE TRY_CAST(TRY_CAST(trim(s) AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) END""",
)


@dataclass
class FileResult:
    path: str
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    error: str | None = None
    skipped: bool = False  # unchanged since the last load


@dataclass
class IngestResult:
    files: list[FileResult] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def ok(self) -> bool:
        return all(f.error is None for f in self.files)

    def as_dict(self) -> dict:
        return {
            "files": [
                {k: v for k, v in asdict(f).items() if k != "skipped"} for f in self.files
            ],
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
        }


def ingest_paths(
    store: Store,
    paths: list[str],
    mapping: Mapping | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Load every file named by paths (files, directories, globs); one bad file never stops
    the others."""
    files, missing = expand(paths)
    result = IngestResult()
    for spec in missing:
        result.files.append(FileResult(path=spec, error=f"{spec}: no such file or directory"))
    touched: set[str] = set()
    for i, path in enumerate(files):
        if progress:
            progress(i, len(files), str(path))
        fr, features = ingest_file(store, path, mapping)
        result.files.append(fr)
        touched |= features
    if progress:
        progress(len(files), len(files), "")
    if touched:
        changes.refresh_inferred(store, sorted(touched))
    return result


def fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 16))
    return h.hexdigest()


def ingest_file(store: Store, path: Path, mapping: Mapping | None = None) -> tuple[FileResult, set[str]]:
    fr = FileResult(path=str(path))
    try:
        source = detect(path)
        stat = path.stat()
        with open(path, "rb") as fh:
            fh.read(1)
    except UnreadableFile as exc:
        fr.error = str(exc)
        return fr, set()
    except OSError as exc:
        fr.error = f"{path}: cannot read ({exc.strerror})"
        return fr, set()
    fp = fingerprint(path)
    mapping_key = json.dumps(mapping.fields, sort_keys=True) if mapping else ""
    with store.connect() as con:
        prev = con.execute(
            "SELECT file_id, size, mtime, fingerprint, mapping FROM files WHERE path = ?",
            [str(path)],
        ).fetchone()
        if prev and prev[1] == stat.st_size and prev[3] == fp and prev[4] == mapping_key:
            fr.skipped = True
            return fr, set()
        try:
            with Staging(source) as readable:
                features = _load(con, source, readable, mapping, fr, prev, stat, fp, mapping_key)
        except (MappingError, UnreadableFile) as exc:
            _rollback(con)
            fr.loaded = fr.quarantined = fr.duplicates = 0
            fr.error = str(exc)
            return fr, set()
        except Exception as exc:  # DuckDB cannot read it at all
            _rollback(con)
            fr.loaded = fr.quarantined = fr.duplicates = 0
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fr.error = f"{path}: cannot read as {source.format} ({reason})"
            return fr, set()
    return fr, features


def _rollback(con) -> None:
    try:
        con.execute("ROLLBACK")
    except Exception:
        pass


def _load(con, source: SourceFile, readable: Path, mapping: Mapping | None, fr: FileResult,
          prev, stat, fp: str, mapping_key: str) -> set[str]:
    for macro in _MACROS:
        con.execute(macro)
    src_sql, columns = reader_sql(con, source, readable)
    con.execute(f"CREATE OR REPLACE TEMP VIEW rd_src AS {src_sql}")
    projections = _projections(con, columns, mapping, source)
    used = {c for c in projections.values() if c in dict(columns)}
    extras = [c for c, _ in columns if c not in FIELD_NAMES and c not in used]
    checked = _checked_sql(con, projections, extras)
    con.execute(f"CREATE OR REPLACE TEMP VIEW rd_checked AS {checked}")

    con.execute("BEGIN TRANSACTION")
    if prev:
        file_id = prev[0]
        con.execute("DELETE FROM requests WHERE file_id = ?", [file_id])
        con.execute("DELETE FROM quarantine WHERE file_id = ?", [file_id])
    else:
        file_id = con.execute("SELECT coalesce(max(file_id), 0) + 1 FROM files").fetchone()[0]
    now = datetime.now(UTC).replace(tzinfo=None)
    cols = ", ".join(FIELD_NAMES)
    loaded = con.execute(
        f"""INSERT INTO requests ({cols}, extra, file_id, source_row)
            SELECT {cols}, extra, ?, __row FROM rd_checked c
            WHERE __reason IS NULL
              AND (c.request_id IS NULL OR NOT EXISTS
                   (SELECT 1 FROM requests r WHERE r.request_id = c.request_id))
            QUALIFY c.request_id IS NULL
                 OR row_number() OVER (PARTITION BY c.request_id ORDER BY __row) = 1""",
        [file_id],
    ).fetchone()[0]
    unit = "line" if source.format == "jsonl" else "row"
    quarantined = con.execute(
        """INSERT INTO quarantine
           SELECT ?, ?, __row, ? || ' ' || __row || ': ' || __reason, __raw, ?
           FROM rd_checked WHERE __reason IS NOT NULL""",
        [file_id, str(fr.path), unit, now],
    ).fetchone()[0]
    if source.format == "csv":
        for line, reason, raw in csv_rejects(con):
            con.execute(
                "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)",
                [file_id, str(fr.path), line, f"line {line}: {reason}", raw, now],
            )
            quarantined += 1
    good = con.execute("SELECT count(*) FROM rd_checked WHERE __reason IS NULL").fetchone()[0]
    fr.loaded, fr.quarantined, fr.duplicates = int(loaded), int(quarantined), int(good - loaded)
    con.execute("DELETE FROM files WHERE file_id = ?", [file_id])
    con.execute(
        "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [file_id, str(fr.path), source.format, stat.st_size, stat.st_mtime, fp, mapping_key,
         fr.loaded, fr.quarantined, fr.duplicates, now],
    )
    features = {r[0] for r in con.execute(
        "SELECT DISTINCT feature FROM requests WHERE file_id = ?", [file_id]).fetchall()}
    con.execute("COMMIT")
    return features


def _projections(con, columns: list[tuple[str, str]], mapping: Mapping | None,
                 source: SourceFile) -> dict[str, str]:
    """Canonical field -> SQL expression (or plain column name) over rd_src."""
    names = {c for c, _ in columns}
    out: dict[str, str] = {}
    for name in FIELD_NAMES:
        if mapping and name in mapping.fields:
            out[name] = mapping.fields[name]
        elif name in names:
            out[name] = name
    for name, expr in out.items():
        sql = ident(expr) if expr in names else f"({expr})"
        try:
            con.execute(f"DESCRIBE SELECT {sql} FROM rd_src")
        except Exception as exc:
            where = mapping.label() if mapping and name in mapping.fields else str(source.path)
            detail = str(exc).splitlines()[0]
            raise MappingError(f"{where}: field {name}: {expr!r} does not work on "
                               f"{source.path.name} ({detail})") from exc
    missing = [f for f in ("timestamp", "feature") if f not in out]
    if missing:
        hint = f" in {mapping.label()}" if mapping else "; add a mapping file (--mapping)"
        raise MappingError(f"{source.path}: no column for required field "
                           f"{' and '.join(missing)}{hint}")
    return out


def _checked_sql(con, projections: dict[str, str], extras: list[str]) -> str:
    names = {r[0] for r in con.execute("DESCRIBE SELECT * FROM rd_src").fetchall()}
    raw_exprs: list[str] = []
    typed: list[str] = []
    reasons: list[str] = ["__bad"]
    for f in FIELDS:
        if f.name not in projections:
            typed.append(f"NULL::{f.sql_type} AS {f.name}")
            continue
        expr = projections[f.name]
        sql = ident(expr) if expr in names else f"({expr})"
        rtype = con.execute(f"DESCRIBE SELECT {sql} AS v FROM rd_src").fetchall()[0][1]
        raw = f"r_{f.name}"
        raw_exprs.append(f"{sql} AS {raw}")
        value, check = _typed(f.name, f.kind, f.sql_type, raw, rtype)
        typed.append(f"{value} AS {f.name}")
        reasons.extend(check)
    extra = (
        "json_object(" + ", ".join(f"'{e.replace(chr(39), chr(39) * 2)}', {ident(e)}"
                                   for e in extras) + ")"
        if extras else "NULL::JSON"
    )
    reason = "nullif(concat_ws('; ', " + ", ".join(reasons) + "), '')"
    level1 = (f"SELECT src.__row, src.__bad, {', '.join(raw_exprs)}, {extra} AS extra, "
              "CAST(to_json(src) AS VARCHAR) AS __raw FROM rd_src src")
    return f"""
        SELECT __row, {', '.join(typed)}, extra, __raw, {reason} AS __reason
        FROM ({level1})"""


def _typed(name: str, kind: str, sql_type: str, raw: str, rtype: str) -> tuple[str, list[str]]:
    """The typed value of one canonical field, and the checks that quarantine a row."""
    shown = f"CAST({raw} AS VARCHAR)"
    checks: list[str] = []
    if kind == "timestamp":
        if rtype.startswith("TIMESTAMP WITH TIME ZONE"):
            value = f"({raw} AT TIME ZONE 'UTC')"
        elif rtype.startswith("TIMESTAMP") or rtype == "DATE":
            value = f"CAST({raw} AS TIMESTAMP)"
        elif rtype in _NUMERIC or rtype.startswith("DECIMAL"):
            value = f"rd_epoch(CAST({raw} AS DOUBLE))"
        else:
            value = f"rd_parse_ts(CAST({raw} AS VARCHAR))"
        checks.append(f"CASE WHEN {raw} IS NULL THEN 'missing timestamp' "
                      f"WHEN {value} IS NULL THEN 'timestamp ' || {shown} || ' is not a time' END")
        return value, checks
    if kind == "text":
        value = f"nullif(trim(CAST({raw} AS VARCHAR)), '')"
        if name == "feature":
            checks.append(f"CASE WHEN {value} IS NULL THEN 'missing feature' END")
        return value, checks
    value = f"TRY_CAST({raw} AS {sql_type})"
    what = "a number" if kind == "double" else "an integer"
    blank = f"trim(CAST({raw} AS VARCHAR)) = ''"
    value = f"CASE WHEN {blank} THEN NULL ELSE {value} END"
    checks.append(f"CASE WHEN {raw} IS NOT NULL AND NOT {blank} AND {value} IS NULL "
                  f"THEN '{name} ' || {shown} || ' is not {what}' END")
    if name == "quality_score":
        checks.append(f"CASE WHEN {value} NOT BETWEEN 0 AND 1 "
                      f"THEN 'quality_score ' || {value} || ' outside [0, 1]' END")
    elif name == "feedback":
        checks.append(f"CASE WHEN {value} NOT IN (-1, 0, 1) "
                      f"THEN 'feedback ' || {value} || ' is not -1, 0 or 1' END")
    else:
        checks.append(f"CASE WHEN {value} < 0 THEN 'negative {name} ' || {value} END")
    return value, checks
