"""Declared changes: the YAML or CSV files a team writes (or a deploy pipeline appends to)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

from app.changes.events import ChangeEvent
from app.configuration import ConfigFileError, check, decode_text, parse_yaml
from app.storage.schema import CHANGE_KINDS
from app.storage.store import Store

DECLARED_COLUMNS = ("timestamp", "feature", "kind", "key", "from", "to", "author", "description")


class ChangeFileError(ConfigFileError):
    """A declared-changes file that cannot be read at all; names the file and the line."""


def parse_time(value: object) -> datetime | None:
    """ISO 8601 with Z or an offset (converted to UTC), naive (taken as UTC), or epoch s/ms."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):  # an unquoted YAML date: midnight UTC
        return datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) >= 1e11 else value
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return parse_time(float(text))
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def load_declared(path: str | Path) -> tuple[list[ChangeEvent], list[str]]:
    """Declared changes from YAML (`changes:` list) or CSV; bad entries are reported, not fatal."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ChangeFileError(f"{path}: cannot read ({exc.strerror})") from exc
    text = decode_text(raw, path, ChangeFileError)
    entries: list[tuple[str, dict | str]] = []
    errors: list[str] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in ("timestamp", "feature", "kind") if c not in (reader.fieldnames or [])]
        if missing:
            raise ChangeFileError(
                f"{path}: CSV header lacks column(s) {', '.join(missing)}; "
                f"expected {', '.join(DECLARED_COLUMNS)}"
            )
        for row in reader:
            entries.append((f"{path} line {reader.line_num}", row))
    else:
        entries = _yaml_entries(text, path)
    events: list[ChangeEvent] = []
    for where, row in entries:
        if isinstance(row, str):  # the schema's problems with this entry
            errors.extend(row.splitlines())
            continue
        event, problem = _declared_event(row)
        if problem:
            errors.append(f"{where}: {problem}")
        else:
            events.append(event)
    return events, errors


def _yaml_entries(text: str, path: Path) -> list[tuple[str, dict | str]]:
    """The entries of a YAML file checked against schemas/changes.json, in file order: each
    is (where, the entry) or, for an entry the schema sets aside, (where, its problems). A
    problem with the file as a whole is fatal."""
    doc = parse_yaml(text, path, ChangeFileError)
    problems = check(doc, "changes")
    fatal = [p for p in problems if not p.key.startswith("changes[")]
    if fatal:
        raise ChangeFileError(fatal)
    by_entry: dict[int, list[str]] = {}
    for p in problems:
        by_entry.setdefault(int(p.key[len("changes[") : p.key.index("]")]), []).append(str(p))
    return [
        (
            f"{path}: line {doc.line(('changes', i))}: changes[{i}]",
            "\n".join(by_entry[i]) if i in by_entry else item,
        )
        for i, item in enumerate(doc.data["changes"])
    ]


def _declared_event(row: dict) -> tuple[ChangeEvent | None, str | None]:
    def text(key: str) -> str | None:
        v = row.get(key)
        return None if v is None or str(v).strip() == "" else str(v).strip()

    if not row:
        return None, "expected a mapping with timestamp, feature, kind"
    for key in DECLARED_COLUMNS:
        if isinstance(row.get(key), dict | list):
            kind = "a mapping" if isinstance(row[key], dict) else "a list"
            return None, f"{key}: expected a single value (quote it as text), got {kind}"
    ts = parse_time(row.get("timestamp"))
    if ts is None:
        return None, (f"timestamp {str(row.get('timestamp'))[:40]!r} is not a time (ISO 8601 or epoch)")
    feature = text("feature")
    if not feature:
        return None, "feature is missing"
    kind = (text("kind") or "").lower()
    if kind not in CHANGE_KINDS:
        return None, f"kind {row.get('kind')!r} is not one of {', '.join(CHANGE_KINDS)}"
    return ChangeEvent(
        timestamp=ts,
        feature=feature,
        kind=kind,
        key=text("key"),
        from_value=text("from"),
        to_value=text("to"),
        author=text("author"),
        description=text("description"),
        source="declared",
    ), None


def save_events(store: Store, events: list[ChangeEvent]) -> int:
    """Insert events; an event already stored (same id) is left as it is. Returns new count."""
    if not events:
        return 0
    with store.connect() as con:
        before = con.execute("SELECT count(*) FROM changes").fetchone()[0]
        con.executemany(
            "INSERT OR IGNORE INTO changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    e.change_id,
                    e.timestamp,
                    e.feature,
                    e.kind,
                    e.key,
                    e.from_value,
                    e.to_value,
                    e.author,
                    e.description,
                    e.source,
                    e.silent_update,
                ]
                for e in events
            ],
        )
        return con.execute("SELECT count(*) FROM changes").fetchone()[0] - before
