"""The partitions of a hive-laid request lake (`date=YYYY-MM-DD/feature=NAME/*.parquet`) and
their fingerprints, on a local path or on S3 (through pyarrow's S3 filesystem).

A partition's fingerprint is a hash of its files' names, sizes and modification times (on S3:
names, sizes and ETags), so a file added, replaced or removed changes it and nothing else
does. The manifest beside the aggregates remembers the fingerprint each partition had when
its aggregates were built; a run rebuilds only the partitions whose fingerprint moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from app.storage.aggregates import VERSION

_DATE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_FEATURE = re.compile(r"^feature=([A-Za-z0-9._-]+)$")
MANIFEST = "_manifest.json"


class LakeError(ValueError):
    """A lake path or layout that cannot be used, with what to do about it."""


@dataclass(frozen=True)
class Partition:
    date: str
    feature: str
    files: tuple[str, ...]  # full paths (local) or bucket/key (S3)
    fingerprint: str

    @property
    def key(self) -> str:
        return f"date={self.date}/feature={self.feature}"


@dataclass
class Plan:
    """What a run must do: partitions to (re)build and partitions whose source is gone."""

    build: list[Partition] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    unchanged: int = 0


def list_partitions(root: str, filesystem=None) -> list[Partition]:
    """Every `date=/feature=` partition under `root` that holds at least one Parquet file.
    A folder that does not follow the layout is an error that names it."""
    fs, base = _fs(root, filesystem)
    from pyarrow.fs import FileSelector, FileType

    try:
        infos = fs.get_file_info(FileSelector(base, recursive=True))
    except FileNotFoundError as exc:
        raise LakeError(f"{root}: no such folder") from exc
    by_part: dict[tuple[str, str], list] = {}
    for info in infos:
        if info.type != FileType.File or not info.path.endswith(".parquet"):
            continue
        rel = info.path[len(base) :].lstrip("/").split("/")
        if any(p.startswith(("_", ".")) for p in rel):
            continue  # _SUCCESS, _manifest.json, .staging and the like
        if len(rel) != 3 or not _DATE.match(rel[0]) or not _FEATURE.match(rel[1]):
            raise LakeError(
                f"{root}: {'/'.join(rel)} is not laid out as date=YYYY-MM-DD/feature=NAME/FILE.parquet "
                "(feature names may hold letters, digits, '.', '_' and '-')"
            )
        by_part.setdefault((_DATE.match(rel[0]).group(1), _FEATURE.match(rel[1]).group(1)), []).append(info)
    parts = []
    for (date, feature), infos in sorted(by_part.items()):
        infos.sort(key=lambda i: i.path)
        digest = hashlib.sha256()
        for i in infos:
            digest.update(f"{i.path}\x1f{i.size}\x1f{i.mtime_ns}\n".encode())
        parts.append(Partition(date, feature, tuple(i.path for i in infos), digest.hexdigest()[:20]))
    return parts


def read_manifest(output: str) -> dict:
    path = Path(output) / MANIFEST
    if not path.exists():
        return {"version": VERSION, "partitions": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LakeError(
            f"{path}: not a readable manifest ({exc.__class__.__name__}); "
            "delete it to rebuild every partition"
        ) from exc
    return manifest


def write_manifest(output: str, manifest: dict) -> None:
    """Replace the manifest in one step: a run stopped before this leaves the old one, and the
    next run rebuilds what this one had done."""
    path = Path(output) / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, path)


def plan(parts: list[Partition], manifest: dict, full: bool = False) -> Plan:
    known = manifest.get("partitions", {}) if manifest.get("version") == VERSION and not full else {}
    result = Plan()
    for p in parts:
        if known.get(p.key) == p.fingerprint:
            result.unchanged += 1
        else:
            result.build.append(p)
    present = {p.key for p in parts}
    result.remove = sorted(k for k in manifest.get("partitions", {}) if k not in present)
    return result


def _fs(root: str, filesystem=None):
    """(pyarrow filesystem, base path within it) for a local path or an s3:// URI."""
    if filesystem is not None:
        return filesystem, root.removeprefix("s3://").rstrip("/")
    if root.startswith("s3://"):
        from app.storage.objectstore import s3_filesystem

        return s3_filesystem(), root.removeprefix("s3://").rstrip("/")
    from pyarrow.fs import LocalFileSystem

    return LocalFileSystem(), str(Path(root).resolve())
