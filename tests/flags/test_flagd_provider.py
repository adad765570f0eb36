"""Given a service reading flags.json through the real flagd provider (file mode, separate
process), when the console acts, then the service serves the new value. How soon is printed
(median); a wall-clock limit here would fail on a loaded machine without saying anything
about the product."""

from __future__ import annotations

import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from flag_components import assert_official_schema, need

from app.rollback import actions

PROBE = Path(__file__).with_name("provider_probe.py")


def _provider_installed() -> bool:
    try:
        import openfeature.contrib.provider.flagd  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def probe(flag_dir: Path):
    need(_provider_installed(), "openfeature-provider-flagd")
    proc = subprocess.Popen(
        [sys.executable, str(PROBE), str(flag_dir / "flags.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[dict] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = lines.get(timeout=60)  # a cold Python start on a loaded machine
        yield lines, first
    finally:
        proc.kill()
        proc.wait()


def _wait_for(lines: queue.Queue, key: str, expected, since: float, limit: float = 30.0) -> float:
    """Seconds from `since` until the provider serves `expected`; the limit only stops a
    provider that never picks the change up, it is not a speed requirement."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line["served"][key] == expected:
            return line["t"] - since
    raise AssertionError(f"provider never served {key}={expected!r}")


def test_provider_serves_each_verified_action(flag_dir: Path, probe) -> None:
    lines, first = probe
    assert first["served"]["support-reply-enabled"] is True
    assert "claude-sonnet-4-5-20250929" in first["served"]["doc-summarizer-canary"]

    steps = [
        ("support-reply", "kill", None, "support-reply-enabled", False),
        ("doc-summarizer", "rollout", 0, "doc-summarizer-canary", ["gpt-4.1-2025-04-14"]),
        ("search-answers", "pin-model", None, "search-answers-model", "gpt-4o-2024-08-06"),
        ("support-reply", "revert-prompt", None, "support-reply-prompt", "v7"),
    ]
    pickups = []
    for feature, action, value, key, expected in steps:
        started = time.time()
        result = actions.execute(flag_dir, feature, action, value, operator="ana", reason="drill")
        assert result.verified, result.message
        assert_official_schema(flag_dir / "flags.json")
        pickups.append(_wait_for(lines, key, expected, started))
    print(f"provider pickup median {statistics.median(pickups):.3f} s, max {max(pickups):.3f} s")
