"""The demo in lake mode: the same logs, declared changes, flags, objectives and incident, with
the requests written to a local Parquet lake beside the data directory and the aggregates
built from it."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.changes import declared
from app.demo.flags import finish_demo_flags, start_demo_flags
from app.demo.incident import replay_prompt_incident
from app.demo.scenario import write_demo_files
from app.demo.slos import write_demo_slos
from app.ingest.pipeline import IngestResult, Progress
from app.lake.ingest import ingest_to_lake
from app.storage.lake import LAKE_FILE
from app.storage.store import Store


def load_lake_demo(data_dir: Path, scale: float = 1.0, progress: Progress | None = None) -> IngestResult:
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lake_file = data_dir / LAKE_FILE
    if not lake_file.exists():
        lake_file.write_text(yaml.safe_dump({"requests": "lake/requests", "aggregates": "lake/aggregates"}))
    folder = data_dir / "demo"
    paths = write_demo_files(folder, scale=scale)
    store = Store(data_dir)
    result, _ = ingest_to_lake(store, [str(p) for p in paths], progress=progress)
    events, _ = declared.load_declared(folder / "changes.yaml")
    declared.save_events(store, events)
    start_demo_flags(data_dir)
    replay_prompt_incident(data_dir, events)
    finish_demo_flags(data_dir)
    write_demo_slos(data_dir)
    return result
