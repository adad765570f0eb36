"""The two ways the console writes a time: one for people, one for machines.

Every time in the console is UTC, held as a naive `datetime`.

- For people (pages, CLI text, post-mortems, messages): `2026-11-20 14:05 UTC`, with seconds
  (`2026-11-20 14:05:09 UTC`) where two events can fall in one minute (audit trail, incident
  timeline). Same order, same separators, and the zone always written out.
- For machines (every `--json` document, exported JSON): RFC 3339 at second precision,
  `2026-11-20T14:05:09Z`.

`parse` reads either, and the other ISO 8601 forms older files and ledgers hold. The text the
ledger stores for its own ordering (microseconds in the audit trail) is storage, not output,
and keeps its format.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

DISPLAY = "%Y-%m-%d %H:%M UTC"
DISPLAY_SECONDS = "%Y-%m-%d %H:%M:%S UTC"
MACHINE = "%Y-%m-%dT%H:%M:%SZ"


def display(t: datetime | None, *, seconds: bool = False, missing: str = "n/a") -> str:
    """A time for people: `2026-11-20 14:05 UTC` (or with seconds); `missing` for None."""
    if t is None:
        return missing
    return _utc(t).strftime(DISPLAY_SECONDS if seconds else DISPLAY)


def machine(t: datetime | None) -> str | None:
    """A time for machines: `2026-11-20T14:05:09Z`; None stays None."""
    return None if t is None else _utc(t).strftime(MACHINE)


def parse(text: str | None) -> datetime | None:
    """A naive UTC time from ISO 8601 text (`Z`, an offset, a fraction or none of them, `T`
    or a space) or from `display`'s form; None for empty text. Raises ValueError otherwise."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")]
    return _utc(datetime.fromisoformat(text))


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


# A replayed stretch of time: (the time it starts at, time.monotonic() when it began).
_REPLAY: ContextVar[tuple[datetime, float] | None] = ContextVar("replay_clock", default=None)


def utcnow() -> datetime:
    """The time the audit trail, the flag file's history and the incident log record: now
    (naive UTC), or inside `replaying(start)` the replayed time, `start` plus the real time
    elapsed since the replay began."""
    replay = _REPLAY.get()
    if replay is None:
        return datetime.now(UTC).replace(tzinfo=None)
    start, began = replay
    return start + timedelta(seconds=time.monotonic() - began)


@contextmanager
def replaying(start: datetime) -> Iterator[None]:
    """Record what runs inside at the replayed time `start` (for this thread or task only).
    The demo uses it to replay its shipped incident at the times of its story; nothing
    else does (tests/demo checks it)."""
    token = _REPLAY.set((_utc(start), time.monotonic()))
    try:
        yield
    finally:
        _REPLAY.reset(token)
