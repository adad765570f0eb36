"""Loading data from the console: uploads saved to `<data dir>/uploads`, and loads by path.

Both need the admin role: a load reads files on this machine (a path typed on the Data page,
a mapping expression) and puts what it reads on the pages, so it is refused to a viewer or a
responder here, in the logic layer, whatever the page shows.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from app.access.identity import Identity
from app.access.roles import Permission, require
from app.ingest.mapping import Mapping
from app.ingest.pipeline import IngestResult, Progress, ingest_paths
from app.storage.store import Store

INBOX = "uploads"


def save_upload(data_dir: Path, identity: Identity, name: str, data: bytes) -> Path:
    """Save an uploaded file under its base name in the inbox; AccessDenied unless admin."""
    require(identity, Permission.UPLOAD)
    inbox = Path(data_dir) / INBOX
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / Path(name).name
    if target.name in ("", ".", ".."):
        raise ValueError(f"upload name {name!r} is not a file name")
    target.write_bytes(data)
    return target


def load_files(
    store: Store,
    identity: Identity,
    paths: list[str],
    mapping: Mapping | None = None,
    progress: Progress | None = None,
    whole: Collection[str] = (),
) -> IngestResult:
    """`ingest_paths` for a person of the console; AccessDenied unless admin."""
    require(identity, Permission.UPLOAD)
    return ingest_paths(store, paths, mapping=mapping, progress=progress, whole=whole)
