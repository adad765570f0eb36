"""Saved views and queries on an incident: the evidence of its investigation.

Saving appends an `evidence` event to the incident (app/incidents/log.py) holding:
    title   what was looked at ("Compare prompt_version=v7 with prompt_version=v8")
    link    the view's link (explore?..., compare?..., sql?...), which opens it again
    query   the SQL, for a console query (else None)
    note    what the responder concluded
    columns, rows   a small result table (at most MAX_ROWS rows, cells as text)
The incident timeline shows it, and the post-mortem lists it under "Investigation".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.incidents.log import Incident, IncidentLog

MAX_ROWS = 20
MAX_CELL = 80


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def save_evidence(
    data_dir: Path,
    incident_id: str,
    *,
    title: str,
    link: str,
    note: str = "",
    query: str | None = None,
    rows: list[dict[str, Any]] | None = None,
    actor: str | None = None,
) -> Incident:
    """Attach a view or query, with its first MAX_ROWS result rows, to an incident."""
    if not title.strip():
        raise ValueError("evidence needs a title")
    rows = rows or []
    columns = list(rows[0]) if rows else []
    table = [[_cell(r.get(c)) for c in columns] for r in rows[:MAX_ROWS]]
    data = {
        "title": title.strip(),
        "link": link,
        "query": query,
        "note": note.strip(),
        "columns": columns,
        "rows": table,
        "rows_total": len(rows),
    }
    return IncidentLog(Path(data_dir)).append(incident_id, "evidence", data, actor=actor)


def evidence_of(incident: Incident) -> list[dict[str, Any]]:
    """The incident's saved evidence, oldest first, each with its time and who saved it."""
    return [{**e.data, "at": e.at, "actor": e.actor} for e in incident.events if e.kind == "evidence"]
