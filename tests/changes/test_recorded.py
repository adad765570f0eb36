"""The ledger's records as change events: the console's own actions, and the flag systems'
histories without the entries those actions left, matched on what the backend recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.changes import recorded
from app.demo.flags import write_demo_flags
from app.flags.flagd_file import FlagdFileBackend
from app.rollback import actions, history

FLAG = "support-reply-enabled"


@pytest.fixture
def flag_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    write_demo_flags(data_dir)
    return data_dir


def test_an_outside_change_right_after_the_consoles_own_is_shown_not_hidden(flag_dir: Path):
    own = actions.execute(flag_dir, "support-reply", "kill", operator="ana", reason="errors")
    assert own.verified
    # Seconds later, someone turns the feature back on outside the console.
    FlagdFileBackend(flag_dir / "flags.json", "production").set_enabled(
        FLAG, "production", True, comment="turned back on by raj"
    )
    history.sync_history(flag_dir, force=True)

    events = [e for e in recorded.change_events(flag_dir, feature="support-reply") if e.key == FLAG]
    # The console's kill once (its backend entry is matched by the action id in its
    # comment), and raj's change, although it came within the same seconds.
    assert sorted((e.source, e.to_value, e.description) for e in events) == [
        ("flag-audit", "ENABLED", "turned back on by raj"),
        ("rollback-desk", "off", "kill (verified): errors"),
    ]
    assert all(own.action_id not in (e.description or "") for e in events if e.source == "flag-audit")


def test_a_comment_naming_no_action_of_the_trail_is_an_outside_change(flag_dir: Path):
    FlagdFileBackend(flag_dir / "flags.json", "production").set_enabled(
        FLAG, "production", False, comment="rollback-desk action 0123456789abcdef (copied)"
    )
    history.sync_history(flag_dir, force=True)
    events = [e for e in recorded.change_events(flag_dir, feature="support-reply") if e.key == FLAG]
    assert [e.source for e in events] == ["flag-audit"]


def test_is_own_matches_the_action_id_not_a_phrase():
    ids = {"a1b2c3d4e5f60718"}
    assert recorded.is_own("rollback-desk action a1b2c3d4e5f60718: canary errors", ids)
    assert not recorded.is_own("rollback-desk action ffffffffffffffff: canary errors", ids)
    assert not recorded.is_own("reverted the rollback-desk action", ids)
    assert not recorded.is_own(None, ids)
