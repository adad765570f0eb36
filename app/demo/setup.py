"""Set up a data directory with the demo: logs, declared changes, flag configuration, the
objectives and the incident the history ships."""

from __future__ import annotations

from pathlib import Path

from app.changes import declared
from app.demo.flags import finish_demo_flags, start_demo_flags
from app.demo.incident import replay_prompt_incident
from app.demo.scenario import write_demo_files
from app.demo.slos import write_demo_slos
from app.ingest.pipeline import IngestResult, Progress, ingest_paths
from app.storage import rollups
from app.storage.store import Store


def load_demo(data_dir: Path, scale: float = 1.0, progress: Progress | None = None) -> IngestResult:
    folder = data_dir / "demo"
    paths = write_demo_files(folder, scale=scale)
    store = Store(data_dir)
    result = ingest_paths(store, [str(p) for p in paths], progress=progress)
    # Every page reads the demo at once: build the rollups a load defers to its first reader
    # (docs/aggregates.md) while the demo is being set up, not on the first page shown.
    with store.connect() as con:
        rollups.ensure_deferred(con)
    events, _ = declared.load_declared(folder / "changes.yaml")
    declared.save_events(store, events)
    # The flags as the history begins, the history's incident replayed on them at the
    # times of its story, then the flags as the demo week ends.
    start_demo_flags(data_dir)
    replay_prompt_incident(data_dir, events)
    finish_demo_flags(data_dir)
    write_demo_slos(data_dir)
    return result
