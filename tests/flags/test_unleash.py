"""Every action against a real unleash-server 7.5.1 (PostgreSQL 15), and its failure modes:
server down, 401, 404, 500, slower than the timeout, invalid percentage, read-back mismatch,
and the guard against Unleash adding a 100% rollout by itself."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from fault_proxy import Fault, FaultProxy

from app.changes import recorded
from app.flags.config import Secret
from app.flags.unleash import UnleashBackend
from app.rollback import actions, history
from app.storage import trail

pytestmark = pytest.mark.integration
MODELS = ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20"]


class Admin:
    """Test set-up through the Admin API (what an Unleash user would have done by hand)."""

    def __init__(self, server) -> None:
        self.url, self.headers = server.url, {"Authorization": server.token}

    def call(self, method: str, path: str, body=None) -> dict:
        r = requests.request(
            method,
            f"{self.url}/api/admin/projects/default{path}",
            json=body,
            headers=self.headers,
            timeout=10,
        )
        r.raise_for_status()
        return r.json() if r.content else {}

    def flag(
        self, name: str, *, rollout: int | None = 100, variants=(), served=None, enabled: bool = True
    ) -> str:
        self.call("POST", "/features", {"name": name, "type": "release"})
        if rollout is not None:
            body = {
                "name": "flexibleRollout",
                "parameters": {"rollout": str(rollout), "stickiness": "default", "groupId": name},
                "variants": [
                    {
                        "name": v,
                        "stickiness": "default",
                        "weight": 1000 if v == served else 0,
                        "weightType": "fix" if v == served else "variable",
                        "payload": {"type": "string", "value": v},
                    }
                    for v in variants
                ],
            }
            self.call("POST", f"/features/{name}/environments/production/strategies", body)
        if enabled:
            self.call("POST", f"/features/{name}/environments/production/on")
        return name


@pytest.fixture
def unleash_dir(unleash, tmp_path: Path, monkeypatch) -> tuple[Path, Admin, str]:
    """A data dir whose feature `ai-summaries` lives in Unleash; flags named uniquely."""
    admin, tag = Admin(unleash), uuid.uuid4().hex[:6]
    monkeypatch.setenv("TEST_UNLEASH_TOKEN", unleash.token)
    flags = {
        "kill_switch": admin.flag(f"ai-summaries-{tag}"),
        "rollout": admin.flag(f"ai-summaries-canary-{tag}", rollout=10),
        "model": admin.flag(f"ai-summaries-model-{tag}", variants=MODELS, served="gpt-4o"),
        "prompt": admin.flag(f"ai-summaries-prompt-{tag}", variants=["v6", "v7", "v8"], served="v8"),
        "agent_pause": admin.flag(f"ai-summaries-dry-run-{tag}", enabled=False),
    }
    write_config(tmp_path, unleash.url, flags)
    return tmp_path, admin, tag


def write_config(data_dir: Path, url: str, flags: dict, timeout_s: float = 5.0) -> None:
    flags = dict(flags)
    flags["model"] = {"key": flags["model"], "versions": MODELS[1:]}
    (data_dir / "flags.yaml").write_text(
        yaml.safe_dump(
            {
                "backends": {
                    "unleash": {
                        "type": "unleash",
                        "url": url,
                        "project": "default",
                        "token_env": "TEST_UNLEASH_TOKEN",
                        "timeout_s": timeout_s,
                    }
                },
                "features": {
                    "ai-summaries": {"backend": "unleash", "environment": "production", "flags": flags}
                },
            }
        )
    )


@pytest.mark.parametrize(
    ("action", "value", "field", "expected"),
    [
        ("kill", None, "enabled", False),
        ("rollout", 0, "rollout_percentage", 0),
        ("pin-model", None, "variant", "gpt-4o-2024-08-06"),
        ("revert-prompt", None, "variant", "v7"),
        ("pause", None, "enabled", True),
    ],
)
def test_each_action_is_verified_against_unleash(unleash_dir, action, value, field, expected):
    data_dir, _, _ = unleash_dir
    result = actions.execute(
        data_dir, "ai-summaries", action, value, operator="ana", reason="drill", incident_id="INC-2"
    )
    assert result.verified, result.message
    assert result.backend == "unleash" and result.after[field] == expected
    assert trail.entries(data_dir)[0].outcome == "verified"


def test_resume_turns_the_feature_back_on(unleash_dir) -> None:
    data_dir, _, _ = unleash_dir
    assert actions.execute(data_dir, "ai-summaries", "kill").verified
    resumed = actions.execute(data_dir, "ai-summaries", "resume")
    assert resumed.verified and resumed.after["enabled"] is True


def test_status_reads_live_state(unleash_dir) -> None:
    data_dir, _, tag = unleash_dir
    [feature] = actions.status(data_dir)["features"]
    roles = {f["role"]: f for f in feature["flags"]}
    assert roles["rollout"]["rollout_percentage"] == 10
    assert roles["model"]["variant"] == "gpt-4o"
    assert roles["agent_pause"]["enabled"] is False


def test_an_environment_without_strategy_is_never_turned_on(unleash_dir, unleash) -> None:
    data_dir, admin, tag = unleash_dir
    bare = admin.flag(f"bare-{tag}", rollout=None, enabled=False)
    cfg = yaml.safe_load((data_dir / "flags.yaml").read_text())
    cfg["features"]["ai-summaries"]["flags"]["agent_pause"] = bare
    (data_dir / "flags.yaml").write_text(yaml.safe_dump(cfg))
    result = actions.execute(data_dir, "ai-summaries", "pause", operator="ana")
    assert result.outcome == "failed" and "would make Unleash add a 100% rollout" in result.message
    env = [e for e in admin.call("GET", f"/features/{bare}")["environments"] if e["name"] == "production"][0]
    assert env["enabled"] is False and env["strategies"] == []


def test_rollout_150_is_refused_before_unleash_sees_it(unleash_dir) -> None:
    data_dir, admin, tag = unleash_dir
    result = actions.execute(data_dir, "ai-summaries", "rollout", 150)
    assert result.outcome == "failed" and result.message == "rollout 150 is not a percentage"
    env = [
        e
        for e in admin.call("GET", f"/features/ai-summaries-canary-{tag}")["environments"]
        if e["name"] == "production"
    ][0]
    assert env["strategies"][0]["parameters"]["rollout"] == "10"


def test_server_down(unleash_dir, unleash) -> None:
    data_dir, _, tag = unleash_dir
    cfg = yaml.safe_load((data_dir / "flags.yaml").read_text())
    write_config(
        data_dir,
        "http://127.0.0.1:9",
        {**cfg["features"]["ai-summaries"]["flags"], "model": f"ai-summaries-model-{tag}"},
    )
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.outcome == "failed"
    assert result.message == "Unleash at http://127.0.0.1:9 unreachable"


def test_token_rejected(unleash_dir, monkeypatch) -> None:
    data_dir, _, _ = unleash_dir
    monkeypatch.setenv("TEST_UNLEASH_TOKEN", "*:*.wrong-secret")
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.outcome == "failed" and result.message.startswith("token rejected (401)")
    assert "wrong-secret" not in result.message


def test_flag_not_found(unleash_dir) -> None:
    data_dir, _, _ = unleash_dir
    cfg = yaml.safe_load((data_dir / "flags.yaml").read_text())
    cfg["features"]["ai-summaries"]["flags"]["kill_switch"] = "ai-summaries"
    (data_dir / "flags.yaml").write_text(yaml.safe_dump(cfg))
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.outcome == "failed"
    assert result.message == "flag ai-summaries not found in project default"


@pytest.fixture
def proxied(unleash_dir, unleash):
    data_dir, admin, tag = unleash_dir
    proxy = FaultProxy(unleash.url)
    cfg = yaml.safe_load((data_dir / "flags.yaml").read_text())
    flags = {**cfg["features"]["ai-summaries"]["flags"], "model": f"ai-summaries-model-{tag}"}
    write_config(data_dir, proxy.url, flags, timeout_s=1.0)
    yield data_dir, admin, tag, proxy
    proxy.close()


def test_server_error_on_the_write(proxied) -> None:
    data_dir, _, _, proxy = proxied
    proxy.fault = Fault(status=500)
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.outcome == "failed" and "failed (500)" in result.message
    assert result.after["enabled"] is True  # read back: nothing changed


def test_a_server_slower_than_the_timeout(proxied) -> None:
    data_dir, _, _, proxy = proxied
    # Held ten times the 1 s timeout, then dropped: only the client's timeout can end the
    # call, however loaded the machine, and the console must not wait for the server.
    proxy.fault = Fault(delay_s=10.0)
    started = time.monotonic()
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.outcome == "unverified"
    assert "did not answer within 1 s" in result.message and "check" in result.message
    assert time.monotonic() - started < 10.0


def test_a_slow_write_that_lands_late_is_verified(proxied, monkeypatch) -> None:
    data_dir, _, _, proxy = proxied
    # The write lands 0.3 s after the client gave up; a read-back window far longer than the
    # 3 s default keeps a loaded machine (slow Unleash write) from turning this into a miss.
    monkeypatch.setattr(actions, "READBACK_S", 20.0)
    proxy.fault = Fault(delay_s=1.3, forward_after_delay=True)
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.verified and "did not answer within 1 s" in result.message


def test_a_read_back_that_does_not_match(unleash_dir, unleash) -> None:
    """Someone (or a sync job) turns the flag back on right after the console's write."""
    data_dir, admin, tag = unleash_dir
    flag, stop = f"ai-summaries-{tag}", threading.Event()

    def revert() -> None:
        while not stop.is_set():
            envs = admin.call("GET", f"/features/{flag}")["environments"]
            if not [e for e in envs if e["name"] == "production"][0]["enabled"]:
                admin.call("POST", f"/features/{flag}/environments/production/on")
            time.sleep(0.02)

    bot = threading.Thread(target=revert)
    bot.start()
    try:
        result = actions.execute(data_dir, "ai-summaries", "kill")
    finally:
        stop.set()
        bot.join()
    assert result.outcome == "unverified" and result.error_code == "readback_mismatch"


def test_history_comes_from_the_event_log(unleash_dir) -> None:
    data_dir, _, tag = unleash_dir
    actions.execute(data_dir, "ai-summaries", "rollout", 0, operator="ana")
    backend = UnleashBackend(unleash_dir[1].url, Secret(unleash_dir[1].headers["Authorization"]))
    changes = [h for h in backend.history() if h.flag == f"ai-summaries-canary-{tag}"]
    assert ("rollout", "10%", "0%") in [(h.change, h.before, h.after) for h in changes]
    assert history.sync_history(data_dir)["unleash"].startswith("synced")
    events = recorded.change_events(data_dir, feature="ai-summaries")
    # Unleash's events keep no comment to recognise the console's own change by, so its
    # record is shown too (never hidden by a time window), saying which action it may be.
    [own] = [e for e in events if e.key == f"ai-summaries-canary-{tag}" and e.source == "rollback-desk"]
    [record] = [
        e
        for e in events
        if e.key == f"ai-summaries-canary-{tag}" and e.source == "flag-audit" and e.to_value == "0%"
    ]
    [entry] = trail.entries(data_dir, feature="ai-summaries", limit=1)
    assert entry.action_id in record.description and "keeps no action id" in record.description
    assert own.to_value == "0%"


def test_the_token_never_reaches_output_or_audit(unleash_dir, unleash, capsys) -> None:
    from app.cli import main

    data_dir, _, _ = unleash_dir
    secret = unleash.token.split(".", 1)[1]
    for argv in (
        ["flags", "status", "--json"],
        ["flags", "kill", "ai-summaries", "--yes", "--json"],
        ["flags", "audit"],
    ):
        main([*argv, "--data-dir", str(data_dir)])
    history.sync_history(data_dir, force=True)
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
