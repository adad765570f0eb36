"""Log files -> validated requests + quarantine, idempotent by file and by request_id.

One file is one transaction: a load killed half-way leaves the database as it was before
that file. A file loaded again unchanged adds nothing; a file that changed since (grew, or
was rewritten) is reloaded cleanly: its previous rows are replaced in the same transaction.
A request_id already stored (from this file or another) is stored once: the first
occurrence wins, later ones count as duplicates.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from app.changes import inferred
from app.ingest import langfuse, otlp, sniff
from app.ingest.appends import (
    TailCopy,
    appended_from,
    complete_end,
    fingerprint,
    lines_before,
    unfinished_end,
)
from app.ingest.mapping import Mapping, MappingError
from app.ingest.scores import ScoresFileError
from app.ingest.sources import (
    NUMBERED_TABLE,
    Layout,
    SourceFile,
    Staging,
    UnreadableFile,
    blank_lines,
    csv_rejects,
    detect_format,
    expand_with_links,
    inspect,
    last_scan_id,
    lines_sql,
    literal,
    numbered_sql,
    reader_sql,
)
from app.ingest.validation import FieldPlan, checked_sql, define_macros, plan_fields
from app.storage import dedupe, rollups
from app.storage.schema import FIELD_NAMES, FIELDS
from app.storage.store import Store, drop_parked

log = logging.getLogger(__name__)

# Telemetry readers: each turns a file into rows of canonical fields (app/ingest/otlp.py).
CONVERTERS = {"otlp": otlp.convert, "langfuse": langfuse.convert}


@dataclass(frozen=True)
class LoadProgress:
    """Where a load is: files done of the total, the file being read, and how far DuckDB
    has read it (0 to 1)."""

    files_done: int
    files_total: int
    path: str = ""
    within_file: float = 0.0

    @property
    def fraction(self) -> float:
        if not self.files_total:
            return 1.0
        return min((self.files_done + self.within_file) / self.files_total, 1.0)


Progress = Callable[[LoadProgress], None]


@dataclass
class FileResult:
    path: str
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    error: str | None = None
    skipped: bool = False  # unchanged since the last load
    appended: bool = False  # only the lines added since the last load were read
    waiting: bool = False  # the last line, still being written, waits for the next load
    other_spans: int = 0  # telemetry that is not an LLM call (spans, observations): counted
    warnings: list[str] = field(default_factory=list)
    note: str | None = None  # why a file was passed over, when not because it is unchanged

    def summary(self) -> str:
        """One line for a person: what the load did with this file."""
        if self.error:
            return self.error
        if self.note:
            return f"{self.path}: {self.note}"
        if self.skipped:
            return f"{self.path}: unchanged since the last load"
        dup = "duplicate" if self.duplicates == 1 else "duplicates"
        new = " from the lines added since the last load" if self.appended else ""
        wait = "; the last line, still being written, waits for the next load" if self.waiting else ""
        other = f"; {self.other_spans:,} other spans skipped (not LLM calls)" if self.other_spans else ""
        return (
            f"{self.path}: {self.loaded:,} loaded, {self.quarantined:,} quarantined, "
            f"{self.duplicates:,} {dup}{other}{new}{wait}"
        )


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
                {
                    k: v
                    for k, v in asdict(f).items()
                    if k not in ("skipped", "appended", "waiting")
                    and (k not in ("other_spans", "warnings", "note") or v)
                }
                for f in self.files
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
    whole: Collection[str] = (),
    kind: str | None = None,
) -> IngestResult:
    """Load every file named by paths (files, directories, globs); one bad file never stops
    the others. Inferred changes are refreshed for every feature whose requests changed.
    Files in `whole` are known to be complete (uploads): a last line without a newline is
    read like any other, not left for a writer to finish. `kind` names the telemetry every
    file holds (`otlp`, `langfuse`; '' for request logs) instead of telling it by content."""
    complete = {Path(w).resolve() for w in whole}
    files, missing, links = expand_with_links(paths)
    result = IngestResult()
    for spec in missing:
        result.files.append(FileResult(path=spec, error=f"{spec}: no such file or directory"))
    for link, reason in links:
        result.files.append(FileResult(path=str(link), error=f"{link}: {reason}"))
    touched: set[str] = set()
    for i, path in enumerate(files):
        on_read = None
        if progress:
            progress(LoadProgress(i, len(files), str(path)))

            def on_read(share: float, i: int = i, path: Path = path) -> None:
                progress(LoadProgress(i, len(files), str(path), share))

        fr, features = ingest_file(
            store, path, mapping, on_read=on_read, whole=path.resolve() in complete, kind=kind
        )
        result.files.append(fr)
        touched |= features
    if progress:
        progress(LoadProgress(len(files), len(files)))
    if touched:
        inferred.refresh_inferred(store, sorted(touched))
    return result


def ingest_file(
    store: Store,
    path: Path,
    mapping: Mapping | None = None,
    on_read: Callable[[float], None] | None = None,
    whole: bool = False,
    kind: str | None = None,
) -> tuple[FileResult, set[str]]:
    """Load one file; returns its result and the features whose requests changed.
    `on_read` hears, from another thread, how far the file has been read (0 to 1); `whole`
    says no writer is still adding to the file."""
    fr = FileResult(path=str(path))
    try:
        source = detect_format(path, kind)
        fp = fingerprint(path)
    except UnreadableFile as exc:
        fr.error = str(exc)
        return fr, set()
    except OSError as exc:
        fr.error = f"{path}: cannot read ({exc.strerror or exc})"
        return fr, set()
    if source.kind == sniff.SCORES:
        fr.skipped = True
        fr.note = (
            "a Langfuse scores file: its scores join the observations through "
            "langfuse.scores_file in a mapping file (docs/formats.md)"
        )
        return fr, set()
    mapping_key = mapping.key(source.kind) if mapping else ""
    with store.connect() as con:
        prev = con.execute(
            "SELECT file_id, fingerprint, mapping FROM files WHERE path = ?", [str(path)]
        ).fetchone()
        if prev is None:
            prev = _renamed_from(con, path, source)
        if prev and prev[1] == fp and prev[2] == mapping_key:
            fr.skipped = True
            return fr, set()
        try:
            # A telemetry file is read whole: a trace's root span may sit in an earlier line.
            start = (
                appended_from(path, source, prev[1])
                if prev and prev[2] == mapping_key and not source.kind
                else None
            )
            if start is not None:
                return fr, _load_appended(con, path, source, mapping, fr, prev, start, mapping_key, on_read)
            end = None if whole else unfinished_end(path, source)
            if end is not None:
                return fr, _load_complete_lines(
                    con, path, source, mapping, fr, prev, end, mapping_key, on_read
                )
            with Staging(source) as readable:
                job = _Job(source, readable, mapping, fr, prev, fp, mapping_key, on_read)
                return fr, _load(con, job)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
            _rollback(con)
            fr.loaded = fr.quarantined = fr.duplicates = 0
            fr.error = _file_error(path, source, exc)
            if not isinstance(exc, (MappingError, UnreadableFile, OSError)):
                # A reason of the reader's own: reported with the file, and logged in full.
                log.warning("ingest of %s failed: %s", path, fr.error, exc_info=exc)
            return fr, set()


def _renamed_from(con, path: Path, source: SourceFile) -> tuple | None:
    """The record of a loaded file that `path` is now, when a writer renamed it (a
    Collector rotating its export file): a file no longer at its recorded path, or holding
    other bytes there now (not merely more), whose recorded bytes `path` starts with. The
    record moves to `path`, so that its rows are neither loaded twice nor lost when the old
    name fills anew. Only records whose file changed (by size and time) are read."""
    size = path.stat().st_size
    for file_id, old, fp, mapping in con.execute(
        "SELECT file_id, path, fingerprint, mapping FROM files WHERE format = ?",
        [source.kind or source.format],
    ).fetchall():
        old_path = Path(old)
        old_size, old_mtime = (int(x) for x in fp.split(":")[:2])
        if old_path == path or old_size > size:
            continue
        try:
            st = old_path.stat()
            if (st.st_size, st.st_mtime_ns) == (old_size, old_mtime):
                continue  # still there, unchanged: `path` is a copy, not the file moved
            if appended_from(old_path, source, fp) is not None:
                continue  # still there and grew
        except OSError:
            pass  # gone
        if fingerprint(path) == fp or appended_from(path, source, fp) is not None:
            con.execute("UPDATE files SET path = ? WHERE file_id = ?", [str(path), file_id])
            con.execute("UPDATE quarantine SET path = ? WHERE file_id = ?", [str(path), file_id])
            return (file_id, fp, mapping)
    return None


def _file_error(path: Path, source: SourceFile, exc: Exception) -> str:
    """One line naming the file and the reason."""
    if isinstance(exc, (MappingError, UnreadableFile, ScoresFileError)):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{path}: cannot read ({exc.strerror or exc})"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = lines[0] if lines else type(exc).__name__
    if reason.endswith(":") and len(lines) > 1:
        reason += " " + lines[1]
    what = ("gzip-compressed " if source.gzipped else "") + source.format.upper()
    if source.kind:
        what = f"{source.kind.upper()} ({what})"
    return f"{path}: cannot read as {what} ({reason})"


def _rollback(con) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass  # no transaction was open


class _Reread(Exception):
    """The file must be read again in another way (`read`), in a new transaction."""

    def __init__(self, read: str, repeats: int = 0) -> None:
        super().__init__(read)
        self.read = read
        self.repeats = repeats  # rows repeating an earlier row's request_id, when known


class Read:
    """How a file is read. Reading out of file order lets DuckDB insert in parallel and
    pack full row groups; the order only matters to keep the first of a repeated
    request_id, so a file with repeats is read again in order.

    PLAIN: CSV, gzipped JSONL, or Parquet in order; numbered by the reader.
    PARQUET: Parquet out of order (its rows carry their numbers).
    CSV: CSV out of order and unnumbered (rows DuckDB cannot parse come with their line).
    UNORDERED / ORDERED / NUMBERED: JSONL by DuckDB's JSON reader, unnumbered out of order,
    unnumbered in order, or numbered (in order).
    LINES: JSONL line by line, for files the JSON reader refuses."""

    PLAIN = "plain"
    PARQUET = "parquet"  # numbered by the reader, not in file order
    CSV = "csv"
    UNORDERED = "json"
    ORDERED = "json-ordered"
    NUMBERED = "json-numbered"
    LINES = "lines"

    @staticmethod
    def numbered(read: str) -> bool:
        return read not in (Read.UNORDERED, Read.ORDERED, Read.CSV)

    @staticmethod
    def ordered(read: str) -> bool:
        return read not in (Read.UNORDERED, Read.PARQUET, Read.CSV)

    @staticmethod
    def in_order(read: str) -> str:
        """The same read, keeping the file's order."""
        return {Read.UNORDERED: Read.ORDERED, Read.PARQUET: Read.PLAIN, Read.CSV: Read.PLAIN}.get(read, read)

    @staticmethod
    def with_numbers(read: str) -> str:
        """The same read, numbering the rows (and so in order)."""
        return Read.PLAIN if read == Read.CSV else Read.NUMBERED


@dataclass
class _Job:
    """One file's load: the file, how to map it, what is known of its previous load, and
    where its result and progress go."""

    source: SourceFile
    readable: Path  # the file itself, or its decompressed copy
    mapping: Mapping | None
    result: FileResult
    prev: tuple | None  # (file_id, fingerprint, mapping) of the previous load
    fingerprint: str
    mapping_key: str
    on_read: Callable[[float], None] | None
    append: _Append | None = None


@dataclass(frozen=True)
class _Append:
    """A load of the lines a file gained: they join the file's rows (`file_id`); `start` is
    where they begin in the file at `path`."""

    file_id: int
    start: int
    path: Path


def _load_appended(
    con,
    path: Path,
    source: SourceFile,
    mapping: Mapping | None,
    fr: FileResult,
    prev: tuple,
    start: int,
    mapping_key: str,
    on_read: Callable[[float], None] | None,
) -> set[str]:
    """Read only the complete lines after `start` (a last line still being written waits
    for the next load)."""
    fr.appended = True
    end = complete_end(path)
    if end <= start:
        return set()
    with TailCopy(path, start, end) as tail:
        job = _Job(
            source,
            tail,
            mapping,
            fr,
            prev,
            fingerprint(path, end),
            mapping_key,
            on_read,
            _Append(prev[0], start, path),
        )
        return _load(con, job)


def _load_complete_lines(
    con,
    path: Path,
    source: SourceFile,
    mapping: Mapping | None,
    fr: FileResult,
    prev: tuple | None,
    end: int,
    mapping_key: str,
    on_read: Callable[[float], None] | None,
) -> set[str]:
    """Load a JSONL file up to `end`, where its last line, still being written, starts.
    The file is recorded as loaded up to there, so that the next load reads only what
    follows."""
    fr.waiting = True
    if end == 0:
        return set()
    with TailCopy(path, 0, end) as head:
        job = _Job(source, head, mapping, fr, prev, fingerprint(path, end), mapping_key, on_read)
        return _load(con, job)


class _ReadProgress:
    """Tells `report` how far DuckDB has read the file (0 to 1), from a thread that asks
    the connection every POLL_S seconds while a statement runs on it."""

    POLL_S = 0.2

    def __init__(self, con, report: Callable[[float], None] | None) -> None:
        self.con, self.report = con, report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _ReadProgress:
        if self.report:
            self._thread = threading.Thread(target=self._run, name="rd-read-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.wait(self.POLL_S):
            share = min(self.con.query_progress(), 100.0) / 100  # < 0: no estimate yet
            if share > last and not self._stop.is_set():
                last = share
                self.report(share)


def _load(con, job: _Job) -> set[str]:
    # DuckDB tracks a statement's progress only with its progress bar on (the store's
    # connections never draw it). Tracking costs about 1% of a load: it is on only while
    # someone follows the load.
    con.execute(f"SET enable_progress_bar = {str(job.on_read is not None).lower()}")
    con.execute("SET progress_bar_time = 0")
    # A load allocates and frees memory by the gigabyte: DuckDB's allocator then returns it
    # to the system from background threads instead of the workers (2% of a 10M-row load).
    con.execute("SET allocator_background_threads = true")
    source = job.source
    _preload_polars(con, source, job.readable)
    if source.kind:
        # Telemetry is converted unnumbered first (in parallel); again, numbered and in file
        # order, when a row is to be quarantined or a request_id repeats.
        layout = _convert(con, job, numbered=False)
    else:
        layout = inspect(con, source, job.readable)
    plan = plan_fields(layout.columns, job.mapping, source)
    define_macros(con)
    # JSONL is first read by DuckDB's JSON reader in parallel, neither numbered nor in file
    # order, CSV likewise, and Parquet out of order. Numbers are only needed for rows to
    # quarantine, and the order only to keep the first of a repeated request_id: a file that
    # has either is read again (numbered, or in order). A file with a line the JSON reader
    # refuses (broken JSON, not an object, a value of another type) is read line by line,
    # which quarantines such lines with their numbers.
    fast = source.format == "jsonl" and not source.gzipped and bool(layout.columns)
    read = (
        Read.UNORDERED
        if source.kind
        else Read.UNORDERED
        if fast
        else Read.PARQUET
        if source.format == "parquet"
        else Read.CSV
        if source.format == "csv" and layout.columns
        else Read.PLAIN
    )
    repeats = 0
    while True:
        try:
            features = _load_with(con, job, layout, plan, read, repeats)
            if job.result.quarantined:
                drop_parked(con)
            return features
        except _Reread as again:
            _rollback(con)
            read, repeats = again.read, repeats or again.repeats
            if source.kind:
                read = Read.NUMBERED
                layout = _convert(con, job, numbered=True)
                plan = plan_fields(layout.columns, job.mapping, source)
        except duckdb.Error:
            if source.kind or read in (Read.PLAIN, Read.PARQUET, Read.CSV, Read.LINES):
                raise
            _rollback(con)
            read = Read.LINES


def _convert(con, job: _Job, numbered: bool) -> Layout:
    """Turn a telemetry file into rows of canonical fields (app/ingest/otlp.py)."""
    with _ReadProgress(con, job.on_read):
        converted = CONVERTERS[job.source.kind](con, job.source, job.readable, job.mapping, numbered=numbered)
    job.result.other_spans = converted.other_spans
    job.result.warnings = converted.warnings
    return converted.layout


def _load_with(con, job: _Job, layout: Layout, plan: FieldPlan, read: str, repeats: int = 0) -> set[str]:
    """One read of the file in one transaction; `repeats`: how many rows an earlier read of
    the same file found repeating an earlier row's request_id (the same rows do again)."""
    source, readable, fr, prev, fp = job.source, job.readable, job.result, job.prev, job.fingerprint
    # The JSON reader takes canonical numbers as numbers: a value that is not one makes it
    # fail, and the line-by-line read then quarantines that line.
    json_reader = read in (Read.UNORDERED, Read.ORDERED, Read.NUMBERED)
    fast_types = plan.json_types if json_reader else None
    # Rows DuckDB's CSV reader rejects (and JSONL lines that are not UTF-8 text) are noted
    # in scans after this one.
    scan_before = last_scan_id(con) if source.format in ("csv", "jsonl") and not source.kind else 0
    if source.kind:  # converted into a table already
        src = otlp.reader_sql(layout, ordered=Read.numbered(read))
    elif source.format in ("csv", "jsonl") and Read.numbered(read):
        with _ReadProgress(con, job.on_read):  # the numbering reads the file
            src = numbered_sql(con, source, readable, layout, plan.text_columns, fast_types)
    else:
        src = reader_sql(
            source, readable, layout, plan.text_columns, fast_types, numbered=Read.numbered(read)
        )
    # In file order, the first occurrence of a request_id in a file is the one with the
    # lowest rowid.
    con.execute(f"SET preserve_insertion_order = {str(Read.ordered(read)).lower()}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW rd_src AS {src}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW rd_checked AS {checked_sql(con, plan, source)}")

    con.execute("BEGIN TRANSACTION")
    features: set[str] = set()
    if job.append:  # the new lines load under an id of their own, then join the file's
        file_id = con.execute("SELECT coalesce(max(file_id), 0) + 1 FROM files").fetchone()[0]
    elif prev:
        file_id = prev[0]
        features = _features(con, file_id)
        con.execute("DELETE FROM requests WHERE file_id = ?", [file_id])
        con.execute("DELETE FROM quarantine WHERE file_id = ?", [file_id])
        rollups.drop_file(con, file_id)
    else:
        file_id = con.execute("SELECT coalesce(max(file_id), 0) + 1 FROM files").fetchone()[0]
    now = datetime.now(UTC).replace(tzinfo=None)
    # The JSON reader rebuilds a row from its values; the quarantine keeps the line as written.
    raw_from = "row" if read == Read.LINES or source.kind else "later" if json_reader else "source"
    quarantined = _insert_parked(
        con,
        file_id,
        str(fr.path),
        now,
        None if Read.numbered(read) else Read.with_numbers(read),
        job.on_read,
        raw=raw_from,
    )
    rejects = (
        []
        if source.kind
        else csv_rejects(con, scan_before)
        if source.format == "csv"
        else csv_rejects(con, scan_before, header_lines=0)
        if read in (Read.LINES, Read.PLAIN) and source.format == "jsonl"
        else []
    )
    skipped = [r[0] for r in rejects]
    if read == Read.NUMBERED and quarantined and not source.kind:  # objects, not lines
        skipped = blank_lines(readable)
    if skipped:
        _shift_rows(con, file_id, skipped)
    if quarantined and raw_from == "later":
        _raw_lines(con, file_id, readable)
    con.execute(f"DROP TABLE IF EXISTS {NUMBERED_TABLE}")  # read: free its memory
    if rejects:
        con.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)",
            [[file_id, str(fr.path), row, reason, text, now] for row, reason, text in rejects],
        )
        quarantined += len(rejects)
    if quarantined and job.append:  # positions count from the start of the whole file
        con.execute(
            "UPDATE quarantine SET source_row = source_row + ? WHERE file_id = ?",
            [lines_before(job.append.path, job.append.start), file_id],
        )
    if quarantined:
        con.execute(
            "UPDATE quarantine SET reason = ? || ' ' || source_row || ': ' || reason WHERE file_id = ?",
            [source.unit, file_id],
        )
    good = int(con.execute("SELECT count(*) FROM requests WHERE file_id = ?", [file_id]).fetchone()[0])
    # Most files have no duplicates: one count settles that for the file itself, and the
    # other files are only searched when there are any. Rows inserted out of file order
    # cannot tell which occurrence came first: the file is then read again in order.
    repeated = repeats or _repeated_rows(con, file_id, good)
    if repeated and not Read.ordered(read):
        raise _Reread(Read.in_order(read), repeats=repeated)
    if job.append:  # a few new lines: deleting them in this transaction costs little
        duplicates = dedupe.delete(con, file_id, good, repeated)
    else:  # deleted after the commit (app/dedupe.py)
        duplicates = dedupe.count(con, file_id, good, repeated)
    fr.loaded, fr.quarantined, fr.duplicates = good - duplicates, int(quarantined), duplicates
    if job.append:
        return _join_file(con, job, file_id, now)
    con.execute("DELETE FROM files WHERE file_id = ?", [file_id])
    con.execute(
        "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            file_id,
            str(fr.path),
            source.kind or source.format,
            int(fp.split(":")[0]),
            int(fp.split(":")[1]) / 1e9,
            fp,
            job.mapping_key,
            fr.loaded,
            fr.quarantined,
            fr.duplicates,
            now,
        ],
    )
    if duplicates:
        dedupe.note(con, file_id, bool(repeated))
        con.execute("COMMIT")
        con.execute("BEGIN TRANSACTION")
        dedupe.finish(con, file_id)
    else:
        rollups.add_file(con, file_id)
    features |= _features(con, file_id)
    con.execute("COMMIT")
    return features


def _join_file(con, job: _Job, new_id: int, now: datetime) -> set[str]:
    """Give the rows, quarantined rows and rollups of a file's new lines to the file, and
    add their counts to its record; commits."""
    fr, file_id, fp = job.result, job.append.file_id, job.fingerprint
    rollups.add_file(con, new_id)
    features = _features(con, new_id)
    for table in ("requests", "quarantine", *rollups.TABLES):
        con.execute(f"UPDATE {table} SET file_id = ? WHERE file_id = ?", [file_id, new_id])
    con.execute(
        """UPDATE files SET size = ?, mtime = ?, fingerprint = ?, loaded = loaded + ?,
                  quarantined = quarantined + ?, duplicates = duplicates + ?, loaded_at = ?
           WHERE file_id = ?""",
        [
            int(fp.split(":")[0]),
            int(fp.split(":")[1]) / 1e9,
            fp,
            fr.loaded,
            fr.quarantined,
            fr.duplicates,
            now,
            file_id,
        ],
    )
    con.execute("COMMIT")
    return features


# Fields stored in a narrower type than they are checked in: a bad row's value (feedback
# 300) would not fit, so it is parked as NULL.
_NARROWED = frozenset(f.name for f in FIELDS if f.sql_type in ("TINYINT", "SMALLINT", "INTEGER"))


def _insert_parked(
    con,
    file_id: int,
    path: str,
    now: datetime,
    renumber: str | None,
    on_read: Callable[[float], None] | None = None,
    raw: str = "source",
) -> int:
    """Read the file once: good rows into requests; bad rows parked there too (under the
    negative file_id, their reason and position in `extra`), then moved to the quarantine
    with their raw text. `raw` says where that text comes from: "row" where it is at hand
    anyway (the line, when reading line by line) and is parked with the row; "source" to
    build it afterwards from the reader for the bad rows only (it is dear on every row);
    "later" when the caller fills it in. Nobody sees the parked rows: they are moved
    inside the file's transaction and deleted right after its commit. Returns how many rows
    were quarantined; when some are bad and the rows were read without numbers, asks for
    the read `renumber` instead."""
    good = "__reason IS NULL"
    values = []
    for f in FIELDS:
        if f.name == "timestamp":
            values.append(f"CASE WHEN {good} THEN timestamp ELSE TIMESTAMP '1970-01-01' END")
        elif f.name == "feature":
            values.append(f"CASE WHEN {good} THEN feature ELSE '' END")
        elif f.name in _NARROWED:
            values.append(f"CASE WHEN {good} THEN {f.name} END")
        else:  # a parked row's value fits the column, whatever it is, and goes with the row
            values.append(f.name)
    cols = ", ".join(FIELD_NAMES)
    raw_sql = ", 'raw', __raw" if raw == "row" else ""
    with _ReadProgress(con, on_read):
        con.execute(
            f"""INSERT INTO requests ({cols}, extra, file_id)
                SELECT {", ".join(values)},
                       CASE WHEN {good} THEN extra
                            ELSE json_object('reason', __reason, 'row', __row{raw_sql}) END,
                       CASE WHEN {good} THEN $1 ELSE -$1 END
                FROM rd_checked""",
            [file_id],
        )
    parked = con.execute("SELECT count(*) FROM requests WHERE file_id = ?", [-file_id]).fetchone()[0]
    if not parked:
        return 0
    if renumber:  # the rows were read without numbers: read them again with
        raise _Reread(renumber)
    con.execute(
        """INSERT INTO quarantine
           SELECT ?, ?, CAST(extra->>'row' AS BIGINT), extra->>'reason', extra->>'raw', ?
           FROM requests WHERE file_id = ?""",
        [file_id, path, now, -file_id],
    )
    # The parked rows are deleted after the commit (store.drop_parked): deleting rows this
    # transaction inserted makes DuckDB rewrite every one of them at commit, single-threaded
    # (7.8 s for a 10M-row file with one bad row).
    if raw == "source":  # read the bad rows' raw text again, those rows only
        con.execute(
            """UPDATE quarantine SET raw = s.__raw
               FROM (SELECT __row, __raw FROM rd_src
                     WHERE __row IN (SELECT source_row FROM quarantine WHERE file_id = $1)) s
               WHERE quarantine.file_id = $1 AND quarantine.source_row = s.__row""",
            [file_id],
        )
    return int(parked)


def _features(con, file_id: int) -> set[str]:
    """The features of one file's stored rows (read from its rollups)."""
    return {
        r[0]
        for r in con.execute("SELECT DISTINCT feature FROM rollup_5m WHERE file_id = ?", [file_id]).fetchall()
    }


def _raw_lines(con, file_id: int, readable: Path) -> None:
    """Fill in the raw text of a JSONL file's quarantined rows from its lines."""
    con.execute(
        f"""UPDATE quarantine SET raw = l.line
            FROM (SELECT __row, line FROM (SELECT row_number() OVER () AS __row, line
                                           FROM {lines_sql(readable)})
                  WHERE __row IN (SELECT source_row FROM quarantine
                                  WHERE file_id = $1 AND raw IS NULL)) l
            WHERE quarantine.file_id = $1 AND quarantine.raw IS NULL
              AND quarantine.source_row = l.__row""",
        [file_id],
    )


def _shift_rows(con, file_id: int, rejected: list[int]) -> None:
    """Rows a reader skipped (CSV rows DuckDB could not parse, blank JSONL lines) are not
    numbered; renumber the quarantined ones so that every position is the row's place in
    the file."""
    rejected = sorted(set(rejected))
    # The k-th readable row (k from 1) sits after every rejected row q_i (i from 0) with
    # q_i - i <= k.
    steps = [(q - i, i + 1) for i, q in enumerate(rejected)]
    con.execute("CREATE OR REPLACE TEMP TABLE rd_shift (t BIGINT, n BIGINT)")
    con.executemany("INSERT INTO rd_shift VALUES (?, ?)", steps)
    con.execute(
        """UPDATE quarantine SET source_row = source_row + coalesce(
               (SELECT max(n) FROM rd_shift WHERE t <= quarantine.source_row), 0)
           WHERE file_id = ?""",
        [file_id],
    )


# Proving that a large file's request_ids are all different is the dearest step after the
# insert: DuckDB's hash aggregate over 10M ids takes a fifth of the whole load. Above
# FINGERPRINT_FROM_ROWS rows a 64-bit fingerprint of each id is counted by Polars instead,
# in about half the time, import included (docs/formats.md); below it the import costs
# more than it saves. Distinct fingerprints prove distinct ids; when any two coincide
# (a real repeat, or two ids sharing a fingerprint) the ids are counted in full.
# DuckDB's string hash alone lets about 1% of patterned ids such as
# `ticket-triage-1002-00015001` share one; hashing the id with a shifted copy of itself
# removes that on every id pattern measured.
FINGERPRINT_FROM_ROWS = 4_000_000
FINGERPRINT = "hash(request_id, '~' || request_id)"


def _preload_polars(con, source: SourceFile, readable: Path) -> None:
    """Import Polars in the background while DuckDB reads a file large enough to need it
    for the fingerprints (_repeated_rows): imported later, on the load's path, it cost
    0.09 s of a 10M-row load. Parquet says its row count; other files are taken as 256
    bytes a row."""
    if "polars" in sys.modules:
        return
    if source.format == "parquet":
        rows = con.execute(f"SELECT count(*) FROM read_parquet({literal(str(readable))})").fetchone()[0]
    else:
        rows = readable.stat().st_size // 256
    if rows >= FINGERPRINT_FROM_ROWS:
        threading.Thread(
            target=importlib.import_module, args=("polars",), name="rd-import-polars", daemon=True
        ).start()


def _repeated_rows(con, file_id: int, rows: int) -> int:
    """How many of one file's `rows` stored rows repeat an earlier row's request_id."""
    if rows >= FINGERPRINT_FROM_ROWS:
        import polars as pl  # imported on first use, like Store.query

        # The fingerprints pass to Polars through Arrow's C stream (no pyarrow, no copy). A
        # relation cannot start while a result of execute() is still open on the
        # connection: the count below closes it.
        total = con.execute("SELECT count(request_id) FROM requests WHERE file_id = ?", [file_id]).fetchall()[
            0
        ][0]
        fps = pl.DataFrame(
            con.sql(
                f"SELECT {FINGERPRINT} AS fp FROM requests "
                f"WHERE file_id = {int(file_id)} AND request_id IS NOT NULL"
            )
        )["fp"]
        if fps.n_unique() == total:
            return 0
    total, distinct = con.execute(
        "SELECT count(request_id), count(DISTINCT request_id) FROM requests WHERE file_id = ?", [file_id]
    ).fetchone()
    return int(total - distinct)
