"""Fetching the flag systems' own change histories into the ledger's cache, at most once per
`min_interval_s`, so rendering a page never hammers a flag server. This is the only place
that reads histories over the network; everything else reads the cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.flags.base import FlagError
from app.flags.config import load_config
from app.storage import trail


def sync_history(
    data_dir: Path,
    *,
    min_interval_s: float = 60.0,
    force: bool = False,
    lookback: timedelta = timedelta(days=30),
) -> dict[str, str]:
    """Fetch each configured backend's history into the cache, unless fetched within
    `min_interval_s`. Returns a status line per backend; errors are recorded, not raised."""
    from app.flags.registry import build_backend

    config = load_config(data_dir)
    status: dict[str, str] = {}
    led = trail.ledger(data_dir)
    now = datetime.now(UTC).replace(tzinfo=None)
    for name, cfg in config.backends.items():
        row = trail.sync_state(data_dir, name)
        if (
            row
            and not force
            and (now - trail.parse_time(row["attempted_at"])).total_seconds() < min_interval_s
        ):
            status[name] = "cached"
            continue
        since = (
            trail.parse_time(row["synced_at"]) - timedelta(minutes=5) if row and row["synced_at"] else None
        )
        try:
            fetched = build_backend(cfg).history(since or now - lookback)
        except FlagError as exc:
            trail.record_sync(led, name, now, None, exc.message)
            status[name] = f"failed: {exc.message}"
            continue
        trail.store_history(led, name, fetched)
        trail.record_sync(led, name, now, now, None)
        status[name] = f"synced {len(fetched)} entries"
    return status
