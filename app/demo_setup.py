"""Set up a data directory with the demo: logs, declared changes and flag configuration."""

from __future__ import annotations

from pathlib import Path

from app import changes
from app.demo import write_demo_files
from app.flags.demo import write_demo_flags
from app.ingest import IngestResult, Progress, ingest_paths
from app.store import Store


def load_demo(data_dir: Path, scale: float = 1.0, progress: Progress | None = None) -> IngestResult:
    folder = data_dir / "demo"
    paths = write_demo_files(folder, scale=scale)
    store = Store(data_dir)
    result = ingest_paths(store, [str(p) for p in paths], progress=progress)
    events, _ = changes.load_declared(folder / "changes.yaml")
    changes.save_events(store, events)
    write_demo_flags(data_dir)
    return result
