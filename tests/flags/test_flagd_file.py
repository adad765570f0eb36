"""The flag file is written atomically, validated, followed by a history, and safe under
two writers at once."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from flag_components import ROOT, assert_official_schema

from app.flags.base import InvalidValue
from app.flags.flagd_file import FlagdFileBackend


def test_a_write_replaces_the_file_with_a_newer_mtime_and_mode_0644(flag_dir: Path) -> None:
    path = flag_dir / "flags.json"
    future = path.stat().st_mtime_ns + 3_600 * 10**9  # an old file "from the future"
    os.utime(path, ns=(future, future))
    inode = path.stat().st_ino
    FlagdFileBackend(path).set_enabled("support-reply-enabled", "production", False)
    after = path.stat()
    assert after.st_mtime_ns > future
    assert stat.S_IMODE(after.st_mode) == 0o644
    assert after.st_ino != inode  # replaced, not rewritten in place
    assert not [p for p in flag_dir.iterdir() if p.name.endswith(".tmp")]
    assert_official_schema(path)


def test_every_change_appends_to_the_history_file(flag_dir: Path) -> None:
    backend = FlagdFileBackend(flag_dir / "flags.json")
    before = backend.history_path.read_text()
    backend.set_variant("support-reply-prompt", "production", "v7", comment="revert")
    backend.set_variant("support-reply-prompt", "production", "v7")  # already so: no line
    text = backend.history_path.read_text()
    assert text.startswith(before)
    new = [json.loads(line) for line in text[len(before) :].splitlines()]
    assert [(n["flag"], n["before"], n["after"]) for n in new] == [("support-reply-prompt", "v8", "v7")]
    assert backend.history()[-1].description == "revert"


def test_an_invalid_change_leaves_the_file_untouched(flag_dir: Path) -> None:
    path = flag_dir / "flags.json"
    original = path.read_bytes()
    backend = FlagdFileBackend(path)
    with pytest.raises(InvalidValue, match="rollout 150 is not a percentage"):
        backend.set_rollout("doc-summarizer-canary", "production", 150, "canary")
    with pytest.raises(InvalidValue, match="no variant gpt-5"):
        backend.set_variant("search-answers-model", "production", "gpt-5")
    assert path.read_bytes() == original


WRITER = """
import sys
from pathlib import Path
from app.flags.flagd_file import FlagdFileBackend
backend = FlagdFileBackend(Path(sys.argv[1]))
flag, variants = sys.argv[2], sys.argv[3].split(",")
for i in range(40):
    backend.set_variant(flag, "production", variants[i % len(variants)])
"""


def test_two_processes_writing_different_flags_lose_nothing(flag_dir: Path) -> None:
    path = flag_dir / "flags.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), flag, variants], cwd=ROOT)
        for flag, variants in [
            ("support-reply-prompt", "v6,v7"),
            ("code-assistant-prompt", "v3,v4"),
        ]
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    flags = json.loads(path.read_text())["flags"]
    assert flags["support-reply-prompt"]["defaultVariant"] == "v7"
    assert flags["code-assistant-prompt"]["defaultVariant"] == "v4"
    history = FlagdFileBackend(path).history()
    assert sum(h.flag == "support-reply-prompt" for h in history) == 40 + 1  # + demo entry
    assert sum(h.flag == "code-assistant-prompt" for h in history) == 40 + 1
    assert_official_schema(path)
