"""A time range cut into whole buckets of a table and the partial buckets at its ends.

A consumer reads the whole buckets from an aggregate table and only the partial ones from
the requests, so its answer is exact for any range while the requests it reads are at most
one bucket at each end (none when the range falls on bucket boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Spans:
    inner: tuple[datetime, datetime] | None  # whole buckets: [lo, hi), both on boundaries
    edges: tuple[tuple[datetime, datetime], ...]  # the rest of the range, read from requests


def floor_to(t: datetime, step: timedelta) -> datetime:
    return datetime.min + ((t - datetime.min) // step) * step


def ceil_to(t: datetime, step: timedelta) -> datetime:
    return datetime.min - ((datetime.min - t) // step) * step


def cut(since: datetime, until: datetime, step: timedelta) -> Spans:
    """[since, until) as whole `step` buckets and the partial buckets around them."""
    if until <= since:
        return Spans(None, ())
    lo, hi = ceil_to(since, step), floor_to(until, step)
    if lo >= hi:
        return Spans(None, ((since, until),))
    edges = []
    if since < lo:
        edges.append((since, lo))
    if hi < until:
        edges.append((hi, until))
    return Spans((lo, hi), tuple(edges))


def edges_sql(spans: list[Spans], column: str = "timestamp") -> tuple[str, list]:
    """A SQL condition for the timestamps in any edge of the spans, and its parameters;
    `false` when there is none."""
    parts, params = [], []
    for s in spans:
        for lo, hi in s.edges:
            parts.append(f"({column} >= ? AND {column} < ?)")
            params += [lo, hi]
    return ("(" + " OR ".join(parts) + ")" if parts else "false"), params
