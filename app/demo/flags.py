"""Flag configuration and flagd file for the demo data directory.

Every demo feature gets a kill switch and the flags its story needs, on the flagd-file
backend, so each console action works out of the box. Kill switches and the agent pause
flag follow the rule "a disabled or missing flag gives the code default": callers evaluate
`<feature>-enabled` with default False and `<agent>-dry-run` with default False.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from app.demo.scenario import HISTORY_START
from app.flags.base import HistoryEntry
from app.flags.config import CONFIG_FILE
from app.flags.flagd_file import FlagdFileBackend
from app.timestamps import replaying

FLAG_FILE = "flags.json"


def _switch(enabled: bool = True) -> dict[str, Any]:
    return {
        "state": "ENABLED" if enabled else "DISABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
    }


def _versions(names: list[str], default: str) -> dict[str, Any]:
    return {"state": "ENABLED", "variants": {n: n for n in names}, "defaultVariant": default}


def demo_flag_document() -> dict[str, Any]:
    canary = {
        "state": "ENABLED",
        "variants": {"canary": "claude-sonnet-4-5-20250929", "control": "gpt-4.1-2025-04-14"},
        "defaultVariant": "control",
        "targeting": {"fractional": [["canary", 10], ["control", 90]]},
    }
    agent_rollout = {**_switch(), "targeting": {"fractional": [["on", 50], ["off", 50]]}}
    flags = {
        "support-reply-enabled": _switch(),
        "support-reply-prompt": _versions(["v6", "v7", "v8"], "v8"),
        "support-reply-model": _versions(
            ["gpt-3.5-turbo-0125", "gpt-4o-mini-2024-07-18"], "gpt-4o-mini-2024-07-18"
        ),
        "doc-summarizer-enabled": _switch(),
        "doc-summarizer-canary": canary,
        "doc-summarizer-model": _versions(["gpt-4o-2024-08-06", "gpt-4.1-2025-04-14"], "gpt-4.1-2025-04-14"),
        "search-answers-enabled": _switch(),
        "search-answers-model": _versions(["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20"], "gpt-4o"),
        "code-assistant-enabled": _switch(),
        "code-assistant-model": _versions(
            ["claude-3-5-sonnet-20241022", "claude-sonnet-4-20250514"], "claude-sonnet-4-20250514"
        ),
        "code-assistant-prompt": _versions(["v3", "v4"], "v4"),
        "ticket-triage-agent-enabled": _switch(),
        "ticket-triage-agent-dry-run": _switch(enabled=False),
        "ticket-triage-agent-rollout": agent_rollout,
    }
    return {"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": flags}


def demo_flag_config() -> dict[str, Any]:
    def feature(**flags: Any) -> dict[str, Any]:
        return {"backend": "local", "environment": "production", "flags": flags}

    return {
        "backends": {
            "local": {"type": "flagd-file", "path": FLAG_FILE, "environment": "production"},
        },
        "features": {
            "support-reply": feature(
                kill_switch="support-reply-enabled",
                prompt={"key": "support-reply-prompt", "versions": ["v6", "v7", "v8"]},
                model="support-reply-model",
            ),
            "doc-summarizer": feature(
                kill_switch="doc-summarizer-enabled",
                rollout={"key": "doc-summarizer-canary", "canary_variant": "canary"},
                model="doc-summarizer-model",
            ),
            "search-answers": feature(
                kill_switch="search-answers-enabled",
                model={"key": "search-answers-model", "versions": ["gpt-4o-2024-08-06", "gpt-4o-2024-11-20"]},
            ),
            "code-assistant": feature(
                kill_switch="code-assistant-enabled",
                model="code-assistant-model",
                prompt="code-assistant-prompt",
            ),
            "ticket-triage-agent": feature(
                kill_switch="ticket-triage-agent-enabled",
                agent_pause="ticket-triage-agent-dry-run",
                rollout={"key": "ticket-triage-agent-rollout", "canary_variant": "on"},
            ),
        },
    }


# The flag changes of the demo week, as the flag file's own history records them.
DEMO_HISTORY = (
    (
        "2026-11-18T10:00:00",
        "code-assistant-prompt",
        "variant",
        "v3",
        "v4",
        "tone tweak in the system prompt",
    ),
    ("2026-11-20T14:00:00", "support-reply-prompt", "variant", "v7", "v8", "support-reply prompt v8"),
    (
        "2026-11-21T09:00:00",
        "doc-summarizer-canary",
        "rollout",
        "0%",
        "10%",
        "canary claude-sonnet-4-5-20250929 at 10%",
    ),
)


def flag_document_at_history_start() -> dict[str, Any]:
    """The flag file as it stood when the demo's history begins (2026-10-19): support-reply
    on prompt v7 (v7.1 ready to ship), code-assistant on prompt v3, the doc-summarizer
    canary at 0%."""
    doc = demo_flag_document()
    flags = doc["flags"]
    flags["support-reply-prompt"] = _versions(["v6", "v7", "v7.1"], "v7")
    flags["code-assistant-prompt"] = _versions(["v3", "v4"], "v3")
    flags["doc-summarizer-canary"]["targeting"] = {"fractional": [["canary", 0], ["control", 100]]}
    return doc


def demo_flag_backend(data_dir: Path) -> FlagdFileBackend:
    return FlagdFileBackend(Path(data_dir) / FLAG_FILE, environment="production")


def start_demo_flags(data_dir: Path) -> None:
    """Write `<data_dir>/flags.yaml` and the flag file as it stood when the history begins,
    replacing any earlier demo flags (its history file too). What happens to the flags in
    the four quieter weeks is replayed next (app/demo/incident.py); `finish_demo_flags`
    brings the file to the demo week."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / CONFIG_FILE).write_text(
        "# Flag configuration of the demo data directory (see docs/flags.md).\n"
        + yaml.safe_dump(demo_flag_config(), sort_keys=False)
    )
    backend = demo_flag_backend(data_dir)
    for stale in (backend.path, backend.history_path):
        stale.unlink(missing_ok=True)
    with replaying(HISTORY_START):
        backend.write_document(flag_document_at_history_start(), comment="demo flag file")


def finish_demo_flags(data_dir: Path) -> None:
    """Record the demo week's flag changes in the flag file's history and write the flag
    file the demo week ends with."""
    backend = demo_flag_backend(data_dir)
    for when, flag, change, before, after, note in DEMO_HISTORY:
        backend.record_past_change(
            HistoryEntry(
                timestamp=datetime.fromisoformat(when),
                flag=flag,
                environment="production",
                change=change,
                before=before,
                after=after,
                author=None,
                description=note,
                entry_id="",
            )
        )
    backend.write_document(demo_flag_document(), comment="demo flag file")


def write_demo_flags(data_dir: Path) -> None:
    """Write `<data_dir>/flags.yaml` and `<data_dir>/flags.json` (with its history file) as
    the demo week ends, replacing any earlier demo flags, without replaying the history's
    incident (the lake demo, and tests that only need the flags)."""
    start_demo_flags(data_dir)
    finish_demo_flags(data_dir)
