"""Change events: declared (YAML/CSV), inferred from logs (first appearance), flag histories
and the console's own actions. Every event has a stable id and a source."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from app.schema import CHANGE_KINDS
from app.store import Store


@dataclass(frozen=True)
class ChangeEvent:
    timestamp: datetime  # UTC, naive
    feature: str
    kind: str  # model | prompt | flag | config
    key: str | None
    from_value: str | None
    to_value: str | None
    author: str | None
    description: str | None
    source: str  # declared | inferred | flag-audit | rollback-desk
    silent_update: bool = False
    change_id: str = ""

    def __post_init__(self) -> None:
        if not self.change_id:
            object.__setattr__(self, "change_id", stable_change_id(self))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["timestamp"] = self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        d["from"] = d.pop("from_value")
        d["to"] = d.pop("to_value")
        return d


def stable_change_id(event: ChangeEvent) -> str:
    """Same change, same id: derived from what the change is, never from when it was loaded."""
    parts = [
        event.source,
        event.feature,
        event.kind,
        event.key or "",
        event.timestamp.isoformat(),
        event.from_value or "",
        event.to_value or "",
    ]
    digest = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]
    return f"{event.source[:3]}-{digest}"


# Declared changes ---------------------------------------------------------------------

DECLARED_COLUMNS = ("timestamp", "feature", "kind", "key", "from", "to", "author", "description")


class ChangeFileError(ValueError):
    """A declared-changes file that cannot be read at all."""


def parse_time(value: object) -> datetime | None:
    """ISO 8601 with Z or an offset (converted to UTC), naive (taken as UTC), or epoch s/ms."""
    if isinstance(value, datetime):
        dt = value
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
        text = path.read_text()
    except OSError as exc:
        raise ChangeFileError(f"{path}: cannot read ({exc.strerror})") from exc
    entries: list[tuple[str, dict]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in ("timestamp", "feature", "kind") if c not in (reader.fieldnames or [])]
        if missing:
            raise ChangeFileError(f"{path}: CSV header lacks column(s) {', '.join(missing)}; "
                                  f"expected {', '.join(DECLARED_COLUMNS)}")
        for row in reader:
            entries.append((f"{path} line {reader.line_num}", row))
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ChangeFileError(f"{path}:{where} not valid YAML") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("changes"), list):
            raise ChangeFileError(f"{path}: expected a top-level 'changes:' list")
        for i, item in enumerate(doc["changes"]):
            entries.append((f"{path} changes[{i}]", item if isinstance(item, dict) else {}))
    events: list[ChangeEvent] = []
    errors: list[str] = []
    for where, row in entries:
        event, problem = _declared_event(row)
        if problem:
            errors.append(f"{where}: {problem}")
        else:
            events.append(event)
    return events, errors


def _declared_event(row: dict) -> tuple[ChangeEvent | None, str | None]:
    def text(key: str) -> str | None:
        v = row.get(key)
        return None if v is None or str(v).strip() == "" else str(v).strip()

    if not row:
        return None, "expected a mapping with timestamp, feature, kind"
    ts = parse_time(row.get("timestamp"))
    if ts is None:
        return None, f"timestamp {row.get('timestamp')!r} is not a time (ISO 8601 or epoch)"
    feature = text("feature")
    if not feature:
        return None, "feature is missing"
    kind = (text("kind") or "").lower()
    if kind not in CHANGE_KINDS:
        return None, f"kind {row.get('kind')!r} is not one of {', '.join(CHANGE_KINDS)}"
    return ChangeEvent(timestamp=ts, feature=feature, kind=kind, key=text("key"),
                       from_value=text("from"), to_value=text("to"), author=text("author"),
                       description=text("description"), source="declared"), None


def save_events(store: Store, events: list[ChangeEvent]) -> int:
    """Insert events; an event already stored (same id) is left as it is. Returns new count."""
    if not events:
        return 0
    with store.connect() as con:
        before = con.execute("SELECT count(*) FROM changes").fetchone()[0]
        con.executemany(
            "INSERT OR IGNORE INTO changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[e.change_id, e.timestamp, e.feature, e.kind, e.key, e.from_value, e.to_value,
              e.author, e.description, e.source, e.silent_update] for e in events],
        )
        return con.execute("SELECT count(*) FROM changes").fetchone()[0] - before


# Inferred changes ----------------------------------------------------------------------

INFERRED_DIMENSIONS = ("model", "response_model", "prompt_version")
MIN_REQUESTS_FOR_CHANGE = 3
INITIAL_WINDOW = timedelta(hours=1)


def first_appearances(store: Store, features: list[str]) -> dict[str, dict]:
    """Per feature: its first timestamp, and each model / response_model / prompt_version
    value with the time it first appeared (values seen at least MIN_REQUESTS_FOR_CHANGE
    times). Read from the rollups, which keep each combination's first timestamp and count
    per five minutes."""
    rows = store.rows(
        """SELECT feature, model, response_model, prompt_version,
                  GROUPING(model, response_model, prompt_version) AS g,
                  min(first_ts), sum(requests)
           FROM rollup_5m WHERE list_contains(?, feature)
           GROUP BY GROUPING SETS ((feature), (feature, model), (feature, response_model),
                                   (feature, prompt_version))""",
        [features],
    )
    out: dict[str, dict] = {f: {"t0": None, **{d: [] for d in INFERRED_DIMENSIONS}}
                            for f in features}
    # GROUPING() sets a bit for every column left out: 0b011 = only model kept, and so on.
    kept = {0b011: ("model", 1), 0b101: ("response_model", 2), 0b110: ("prompt_version", 3)}
    for r in rows:
        entry = out[r[0]]
        if r[4] == 0b111:
            entry["t0"] = r[5]
        elif r[4] in kept:
            dim, col = kept[r[4]]
            if r[col] is not None and r[6] >= MIN_REQUESTS_FOR_CHANGE:
                entry[dim].append((r[col], r[5]))
    for entry in out.values():
        for dim in INFERRED_DIMENSIONS:
            entry[dim].sort(key=lambda v: v[1])
    return out


def infer_changes(store: Store, feature: str, firsts: dict | None = None) -> list[ChangeEvent]:
    """First appearance of a new model, response_model or prompt_version value.

    Values present within the first hour of a feature's data are its initial state. A new
    response_model under a model alias that was already in use is a silent provider update.
    """
    firsts = firsts or first_appearances(store, [feature])[feature]
    t0 = firsts["t0"]
    if t0 is None:
        return []
    model_first = dict(firsts["model"])
    events: list[ChangeEvent | None] = []
    with store.connect() as con:
        for dim in INFERRED_DIMENSIONS:
            for value, seen in firsts[dim]:
                if seen <= t0 + INITIAL_WINDOW:
                    continue
                events.append(_inferred_event(con, feature, dim, value, seen, model_first))
    return [e for e in events if e is not None]


def _inferred_event(con, feature: str, dim: str, value: str, seen: datetime,
                    model_first: dict[str, datetime]) -> ChangeEvent | None:
    # Both lookups read the five-minute rollups, which count requests per model,
    # response_model and prompt_version.
    def previous(where_sql: str, params: list) -> str | None:
        """The value most requests had in the last day of traffic before `seen` (the day
        before it, or before a gap in the logs)."""
        before = f"""FROM rollup_5m WHERE feature = ? AND {dim} IS NOT NULL AND {dim} <> ?
                     AND first_ts < ? {where_sql}"""
        args = [feature, value, seen, *params]
        row = con.execute(
            f"""SELECT {dim} {before}
                AND last_ts >= (SELECT max(last_ts) - INTERVAL 1 DAY {before})
                GROUP BY 1 ORDER BY sum(requests) DESC, 1 LIMIT 1""",
            args + args,
        ).fetchone()
        return row[0] if row else None

    if dim != "response_model":
        kind = "model" if dim == "model" else "prompt"
        return ChangeEvent(timestamp=seen, feature=feature, kind=kind, key=dim,
                           from_value=previous("", []), to_value=value, author=None,
                           description=f"first request with {dim} = {value}", source="inferred")
    row = con.execute(
        """SELECT model FROM rollup_5m WHERE feature = ? AND response_model = ?
           AND model IS NOT NULL GROUP BY 1 ORDER BY sum(requests) DESC, 1 LIMIT 1""",
        [feature, value],
    ).fetchone()
    alias = row[0] if row else None
    if alias is not None and alias in model_first and model_first[alias] >= seen - INITIAL_WINDOW:
        return None  # the app switched models; the model event tells that story
    if alias is None:
        return ChangeEvent(timestamp=seen, feature=feature, kind="model", key="response_model",
                           from_value=previous("", []), to_value=value, author=None,
                           description=f"first response from {value}", source="inferred")
    before = previous("AND model = ?", [alias])
    return ChangeEvent(
        timestamp=seen, feature=feature, kind="model", key=alias, from_value=before,
        to_value=value, author=None, source="inferred", silent_update=True,
        description=(f"silent provider model update: requests for {alias} now answered by "
                     f"{value}" + (f" (was {before})" if before else "")),
    )


def refresh_inferred(store: Store, features: list[str]) -> None:
    """Recompute inferred events for features whose requests changed."""
    with store.session():
        firsts = first_appearances(store, features)
        events = [e for f in features for e in infer_changes(store, f, firsts[f])]
        with store.connect() as con:  # the session's connection: one transaction
            con.execute("BEGIN TRANSACTION")
            con.execute("DELETE FROM changes WHERE source = 'inferred' AND list_contains(?, feature)",
                        [features])
            save_events(store, events)
            con.execute("COMMIT")


def list_changes(store: Store, feature: str | None = None, since: datetime | None = None,
                 until: datetime | None = None) -> list[ChangeEvent]:
    """Stored change events (declared and inferred), oldest first."""
    rows = store.rows(
        """SELECT change_id, timestamp, feature, kind, key, from_value, to_value, author,
                  description, source, silent_update
           FROM changes
           WHERE (? IS NULL OR feature = ?) AND (? IS NULL OR timestamp >= ?)
             AND (? IS NULL OR timestamp <= ?)
           ORDER BY timestamp, change_id""",
        [feature, feature, since, since, until, until],
    )
    events = [ChangeEvent(change_id=r[0], timestamp=r[1], feature=r[2], kind=r[3], key=r[4],
                          from_value=r[5], to_value=r[6], author=r[7], description=r[8],
                          source=r[9], silent_update=bool(r[10])) for r in rows]
    return _without_confirmed(events)


CONFIRM_WINDOW = timedelta(hours=1)


def _without_confirmed(events: list[ChangeEvent]) -> list[ChangeEvent]:
    """Drop an inferred event that a declared one already tells (same feature, kind and new
    value within an hour): one change, one marker."""
    declared = [e for e in events if e.source == "declared"]

    def confirmed(e: ChangeEvent) -> bool:
        return any(d.feature == e.feature and d.kind == e.kind and d.to_value == e.to_value
                   and abs(d.timestamp - e.timestamp) <= CONFIRM_WINDOW for d in declared)

    return [e for e in events if e.source != "inferred" or not confirmed(e)]


def timeline_changes(store: Store, feature: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> list[ChangeEvent]:
    """Every change event for the timeline: declared, inferred, and the flag systems' and the
    console's own (from the audit trail and cached backend histories)."""
    from app import audit  # audit reads the ledger; imported here to keep changes.py light

    events = list_changes(store, feature, since, until)
    events += audit.change_events(store.data_dir, feature=feature, since=since, until=until)
    return sorted(events, key=lambda e: (e.timestamp, e.change_id))
