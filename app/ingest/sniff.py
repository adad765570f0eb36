"""Which telemetry a file holds, told by its first line: OTLP JSON traces or a Langfuse export.

Only JSON Lines and CSV are looked into (a Parquet Langfuse export is named with
`--format langfuse`); a file that is neither keeps its plain format.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

KINDS = ("otlp", "langfuse")
# A Langfuse scores export: joined to observations through a mapping file, not loaded alone.
SCORES = "langfuse-scores"

# The fields every Langfuse observation export row has, and one of those only a Langfuse
# observation has (core, model or usage field groups).
_LANGFUSE_CORE = {"id", "trace_id", "type", "start_time"}
_LANGFUSE_ANY = {"provided_model_name", "usage_details", "parent_observation_id", "trace_name"}
_SCORES_CORE = {"id", "trace_id", "observation_id", "name", "value", "data_type"}
_HEAD_BYTES = 1 << 20


def sniff(path: Path, fmt: str, gzipped: bool) -> str:
    """'otlp', 'langfuse', 'langfuse-scores', or '' for a file that is plain request logs (or unreadable: the
    load then says why)."""
    if fmt not in ("jsonl", "csv"):
        return ""
    try:
        head = _head(path, gzipped)
    except (OSError, EOFError, gzip.BadGzipFile):
        return ""
    first = next((ln for ln in head.splitlines() if ln.strip()), "")
    if fmt == "jsonl":
        try:
            doc = json.loads(first)
        except ValueError:
            # A first line longer than the head: an OTLP batch is often one long line.
            return "otlp" if first.lstrip().startswith('{"resourceSpans"') else ""
        if isinstance(doc, dict) and isinstance(doc.get("resourceSpans"), list):
            return "otlp"
        return _langfuse_kind(set(doc)) if isinstance(doc, dict) else ""
    try:
        header = next(csv.reader(io.StringIO(first)))
    except (csv.Error, StopIteration):
        return ""
    return _langfuse_kind({h.strip() for h in header})


def _langfuse_kind(keys: set[str]) -> str:
    if _LANGFUSE_CORE <= keys and bool(_LANGFUSE_ANY & keys):
        return "langfuse"
    return SCORES if _SCORES_CORE <= keys else ""


def _head(path: Path, gzipped: bool) -> str:
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as fh:
        return fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
