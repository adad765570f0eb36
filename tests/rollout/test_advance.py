"""`rollout advance` against the flag system: the ladder moves only when the flag system
confirms the new percentage; a broken flags.yaml or an unreachable backend refuses the step,
exits non-zero, says why and leaves the ladder where it was."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from detection.stories import START, load, spec

from app.cli import main
from app.demo.synth import Effect, Scenario, Switch
from app.detection.thresholds import DEFAULTS
from app.rollout import ladder as rollout

FLAG = "guarded-canary"


@pytest.fixture(scope="module")
def healthy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A canary at 10% for 40 hours whose guardrails hold: ready for the next step."""
    end = START + timedelta(days=3)
    begin = end - timedelta(hours=40)
    scenario = Scenario(
        start=START,
        days=3,
        features=[spec("guarded", rate=300)],
        switches=[Switch(begin, "guarded", {"variant": "canary"}, share=0.1)],
        effects=[Effect("guarded", begin, {"variant": "canary"})],
        seed=3,
    )
    folder = tmp_path_factory.mktemp("healthy") / "data"
    load(folder, scenario, [])
    return folder


@pytest.fixture
def healthy(healthy_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(healthy_template, target)
    return target


def write_flagd(data_dir: Path, canary_percent: int = 10) -> None:
    doc = {
        "flags": {
            FLAG: {
                "state": "ENABLED",
                "variants": {"canary": "canary", "control": "control"},
                "defaultVariant": "control",
                "targeting": {"fractional": [["canary", canary_percent], ["control", 100 - canary_percent]]},
            }
        }
    }
    (data_dir / "flags.json").write_text(json.dumps(doc))
    (data_dir / "flags.yaml").write_text(
        "backends:\n  local: {type: flagd-file, path: flags.json}\n"
        "features:\n  guarded:\n    backend: local\n"
        f"    flags:\n      rollout: {{key: {FLAG}, canary_variant: canary}}\n"
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_unreachable_unleash(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBACK_DESK_TEST_UNLEASH_TOKEN", "*:*.not-used")
    (data_dir / "flags.yaml").write_text(
        "backends:\n  unleash:\n    type: unleash\n"
        f"    url: http://127.0.0.1:{closed_port()}\n"
        "    token_env: ROLLBACK_DESK_TEST_UNLEASH_TOKEN\n    timeout_s: 2\n"
        "features:\n  guarded:\n    backend: unleash\n"
        f"    flags:\n      rollout: {{key: {FLAG}, canary_variant: canary}}\n"
    )


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def ladder_rows(data_dir: Path) -> list[tuple]:
    with rollout.ledger(data_dir).connect() as con:
        return [tuple(r) for r in con.execute("SELECT * FROM rollout_steps")]


def advance_by_cli(data_dir: Path) -> tuple[int, dict]:
    code, out = run_cli("rollout", "advance", "guarded", "--data-dir", str(data_dir), "--json")
    return code, json.loads(out)


def test_advance_sets_the_flag_and_moves_the_ladder_once_the_flag_system_confirms(healthy: Path):
    write_flagd(healthy, canary_percent=10)
    from app.storage.store import Store

    before = rollout.ladder_status(Store(healthy), "guarded", DEFAULTS)
    assert (before.verdict, before.serving_percent, before.next_percent) == ("pass", 10.0, 20.0)
    code, doc = advance_by_cli(healthy)
    assert code == 0 and doc["advanced"], doc["message"]
    assert doc["flag_result"]["outcome"] == "verified"
    assert rollout.rollout_flag(healthy, "guarded").percent == 20.0
    after = rollout.ladder_status(Store(healthy), "guarded", DEFAULTS)
    assert after.step == before.step + 1 and after.step_percent == 20.0


def test_advance_refuses_when_the_flag_backend_is_unreachable(healthy: Path, monkeypatch: pytest.MonkeyPatch):
    write_unreachable_unleash(healthy, monkeypatch)
    code, doc = advance_by_cli(healthy)
    assert code != 0 and doc["advanced"] is False
    assert "cannot read the rollout flag" in doc["message"] and "unreachable" in doc["message"]
    assert "no rollout flag configured" not in doc["message"]
    assert ladder_rows(healthy) == []  # the ladder is where it was
    last = rollout.actions_log(healthy, "guarded")[0]
    assert (last["kind"], last["applied"]) == ("advance-refused", 0)
    assert "unreachable" in last["detail"]["reason"]


@pytest.mark.parametrize(
    "broken",
    [
        "backends: [not, a, mapping",  # not YAML
        "backends:\n  local: {type: no-such-backend}\nfeatures: {}\n",  # YAML, but invalid
    ],
)
def test_advance_refuses_when_flags_yaml_is_broken(healthy: Path, broken: str):
    (healthy / "flags.yaml").write_text(broken)
    code, doc = advance_by_cli(healthy)
    assert code != 0 and doc["advanced"] is False
    assert "cannot read the rollout flag" in doc["message"]
    assert "flags.yaml" in doc["message"]  # names the file to fix
    assert ladder_rows(healthy) == []


def test_advance_after_a_refusal_starts_from_the_same_step(healthy: Path, monkeypatch: pytest.MonkeyPatch):
    write_flagd(healthy, canary_percent=10)
    (healthy / "flags.json").unlink()  # the flag file is gone: the backend cannot be read
    code, doc = advance_by_cli(healthy)
    assert code != 0 and "cannot read the rollout flag" in doc["message"]
    write_flagd(healthy, canary_percent=10)  # repaired
    code, doc = advance_by_cli(healthy)
    assert code == 0 and doc["advanced"], doc["message"]
    assert doc["status"]["step_percent"] == 5.0 and "20%" in doc["message"]


def test_status_shows_an_unreadable_flag_instead_of_hiding_it(healthy: Path, monkeypatch: pytest.MonkeyPatch):
    write_unreachable_unleash(healthy, monkeypatch)
    code, out = run_cli("rollout", "status", "guarded", "--data-dir", str(healthy))
    assert code == 0
    assert "rollout flag unreadable" in out and "unreachable" in out


def test_a_feature_without_a_rollout_flag_moves_the_ladder_state_only(healthy: Path):
    code, doc = advance_by_cli(healthy)  # no flags.yaml at all
    assert code == 0 and doc["advanced"]
    assert "no rollout flag configured" in doc["message"]
    assert len(ladder_rows(healthy)) == 1


def test_page_caches_see_ladder_steps_flag_actions_and_fetched_histories(
    healthy: Path, monkeypatch: pytest.MonkeyPatch
):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from app.rollback import actions, history
    from app.storage.store import Store
    from app.ui import common

    write_flagd(healthy, canary_percent=10)
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(healthy))
    st.cache_data.clear()
    router = str(Path(__file__).resolve().parents[2] / "app" / "ui" / "streamlit_app.py")
    at = AppTest.from_file(router, default_timeout=60)
    at.run()
    at.switch_page("views/rollout.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("step 2 of 5 (5%" in m.value for m in at.markdown)

    seen = {common.data_version()}
    assert rollout.advance(Store(healthy), "guarded", DEFAULTS).advanced  # a ladder step
    seen.add(common.data_version())
    at.run()  # the next rerun of the same session
    assert any("step 3 of 5 (20%" in m.value for m in at.markdown)

    assert actions.execute(healthy, "guarded", "rollout", 25, operator="ana").verified
    seen.add(common.data_version())
    history.sync_history(healthy, force=True)  # the flag file's history, fetched
    seen.add(common.data_version())
    assert len(seen) == 4  # every one of them is a new cache key
    st.cache_data.clear()


def test_each_watch_look_fetches_the_flag_histories_and_reports_a_failed_fetch(
    healthy: Path, monkeypatch: pytest.MonkeyPatch
):
    from app.rollout import watch
    from app.storage import trail

    write_flagd(healthy, canary_percent=10)
    look = watch.look_once(healthy, healthy / "incoming", apply=False, t=DEFAULTS)
    assert not [e for e in look.errors if "flag history" in e]
    assert trail.sync_state(healthy, "local") is not None  # fetched into the ledger

    write_unreachable_unleash(healthy, monkeypatch)
    look = watch.look_once(healthy, healthy / "incoming", apply=False, t=DEFAULTS)
    assert any(e.startswith("flag history of unleash: failed") and "unreachable" in e for e in look.errors), (
        look.errors
    )
