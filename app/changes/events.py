"""A change event: what changed, where, when and who said so. Depends on nothing of ours but
the time formats, so every room can speak of changes without importing the rooms that find
them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime

from app.timestamps import machine


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
        d["timestamp"] = machine(self.timestamp)
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
