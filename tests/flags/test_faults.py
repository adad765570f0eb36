"""Backend faults never end in a traceback or a false "verified": an answer that is not the
API's (an HTML page from a proxy, JSON of another shape) is `unverified` and the read-back
decides; a flag definition flagd would not serve as written is an error naming the flag and
the field, for status and actions alike; every press is audited, refused ones included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fault_proxy import Fault, FaultProxy
from test_launchdarkly import TOKEN, write_config
from test_launchdarkly import ld as ld  # noqa: F401  (fixture)
from test_unleash import proxied as proxied  # noqa: F401  (fixture)
from test_unleash import unleash_dir as unleash_dir  # noqa: F401  (fixture)

from app.cli import main
from app.rollback import actions
from app.storage import trail

HTML = b"<html><body><h1>Gateway login</h1></body></html>"


@pytest.fixture
def ld_proxy(ld, tmp_path: Path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TEST_LD_TOKEN", TOKEN)
    proxy = FaultProxy(ld.url)
    write_config(tmp_path, proxy.url, timeout_s=1.0)
    yield tmp_path, ld, proxy
    proxy.close()


def test_a_write_answered_with_html_but_applied_is_verified_by_the_read_back(ld_proxy):
    data_dir, ld, proxy = ld_proxy
    proxy.fault = Fault(body=HTML, content_type="text/html", forward_after_delay=True)
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.verified and result.after["enabled"] is False
    assert "not JSON (text/html)" in result.message
    [entry] = trail.entries(data_dir)
    assert entry.outcome == "verified"


def test_a_write_answered_with_html_and_not_applied_is_unverified(ld_proxy):
    data_dir, ld, proxy = ld_proxy
    proxy.fault = Fault(body=HTML, content_type="text/html")
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.outcome == "unverified" and result.error_code == "bad_response"
    assert result.after["enabled"] is True and "check ai-summaries" in result.message
    assert trail.entries(data_dir)[0].outcome == "unverified"


@pytest.mark.parametrize("body", [b'{"unexpected": "shape"}', b"[1, 2]", b'"text"', HTML])
def test_a_read_of_another_shape_fails_the_press_and_is_audited(ld_proxy, body):
    data_dir, _, proxy = ld_proxy
    proxy.fault = Fault(body=body, all_methods=True)
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.outcome == "failed" and result.error_code == "bad_response"
    assert "LaunchDarkly at" in result.message and "ai-summaries" in result.message
    assert trail.entries(data_dir)[0].outcome == "failed"


def test_status_shows_an_unreadable_answer_per_flag(ld_proxy, capsys):
    data_dir, _, proxy = ld_proxy
    proxy.fault = Fault(body=b'{"environments": 7, "variations": "x"}', all_methods=True)
    assert main(["flags", "status", "--data-dir", str(data_dir), "--json"]) == 0
    flags = json.loads(capsys.readouterr().out)["features"][0]["flags"]
    assert all("unexpected shape" in f["error"] for f in flags)


@pytest.mark.integration
def test_unleash_answering_html_to_an_applied_write_is_verified_by_the_read_back(proxied):  # noqa: F811
    data_dir, _, _, proxy = proxied
    proxy.fault = Fault(body=HTML, content_type="text/html", forward_after_delay=True)
    result = actions.execute(data_dir, "ai-summaries", "kill")
    assert result.verified, result.message
    assert trail.entries(data_dir)[0].outcome == "verified"


@pytest.mark.integration
def test_unleash_answering_json_of_another_shape_to_a_rollout(proxied):  # noqa: F811
    data_dir, _, _, proxy = proxied
    proxy.fault = Fault(
        body=b'{"environments": [{"name": "production", "strategies": "x"}]}', all_methods=True
    )
    result = actions.execute(data_dir, "ai-summaries", "rollout", 0)
    assert result.outcome == "failed" and "unexpected shape" in result.message
    assert trail.entries(data_dir)[0].outcome == "failed"


# -- flagd file content ------------------------------------------------------------------
def edit_flag(flag_dir: Path, key: str, **fields) -> None:
    path = flag_dir / "flags.json"
    doc = json.loads(path.read_text())
    doc["flags"][key].update(fields)
    path.write_text(json.dumps(doc))


def test_a_state_maybe_is_not_read_as_off(flag_dir: Path):
    edit_flag(flag_dir, "support-reply-enabled", state="MAYBE")
    result = actions.execute(flag_dir, "support-reply", "kill", operator="ana")
    assert result.outcome == "failed"
    assert "flag support-reply-enabled: state must be ENABLED or DISABLED" in result.message
    assert str(flag_dir / "flags.json") in result.message
    [entry] = trail.entries(flag_dir)
    assert (entry.outcome, entry.operator, entry.flag) == ("failed", "ana", "support-reply-enabled")


@pytest.mark.parametrize("weight", [10.5, "10", -1, None])
def test_a_bad_fractional_weight_is_an_error_for_status_and_actions(flag_dir: Path, capsys, weight):
    edit_flag(
        flag_dir, "doc-summarizer-canary", targeting={"fractional": [["canary", weight], ["control", 90]]}
    )
    assert (
        main(["flags", "status", "--feature", "doc-summarizer", "--json", "--data-dir", str(flag_dir)]) == 0
    )
    rows = {f["role"]: f for f in json.loads(capsys.readouterr().out)["features"][0]["flags"]}
    assert "flag doc-summarizer-canary: fractional" in rows["rollout"]["error"]
    assert rows["kill_switch"]["enabled"] is True  # the other flags still read
    code = main(["flags", "rollout", "doc-summarizer", "5", "--yes", "--json", "--data-dir", str(flag_dir)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["outcome"] == "failed"
    assert "flag doc-summarizer-canary: fractional" in out["message"]
    assert [e.outcome for e in trail.entries(flag_dir)] == ["failed"]


def test_a_press_refused_by_the_configuration_is_audited(flag_dir: Path):
    result = actions.execute(flag_dir, "no-such-feature", "kill", operator="ana")
    assert result.outcome == "failed" and "no-such-feature is not in" in result.message
    [entry] = trail.entries(flag_dir)
    assert (entry.outcome, entry.feature, entry.operator) == ("failed", "no-such-feature", "ana")


def test_a_flags_yaml_that_is_not_utf8_is_a_one_line_error_naming_file_and_line(flag_dir, capsys):
    path = flag_dir / "flags.yaml"
    lines = path.read_bytes().split(b"\n")
    lines[2] += " # caf\u00e9".encode("latin-1")
    path.write_bytes(b"\n".join(lines))
    code = main(["flags", "status", "--data-dir", str(flag_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {path}: line 3: ") and "not UTF-8 text" in err
    assert err.count("\n") == 1


def test_a_flags_json_that_is_not_utf8_fails_the_press_naming_file_and_line(flag_dir, capsys):
    path = flag_dir / "flags.json"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"', b'"\xe9', 1)
    path.write_bytes(b"\n".join(lines))
    code = main(["flags", "kill", "support-reply", "--yes", "--json", "--data-dir", str(flag_dir)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["outcome"] == "failed"
    assert out["message"] == f"flag file {path} line 3: not UTF-8 text"
    assert trail.entries(flag_dir)[0].outcome == "failed"


def test_a_flags_yaml_error_never_quotes_the_file(flag_dir, capsys):
    (flag_dir / "flags.yaml").write_text("backends:\n  x: sk-live-secret-value: 1\n")
    main(["flags", "status", "--data-dir", str(flag_dir)])
    err = capsys.readouterr().err
    assert "flags.yaml" in err and "line" in err and "sk-live" not in err


# -- credentials in URLs -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["unleash", "launchdarkly"])
def test_credentials_in_a_backend_url_are_refused_and_never_shown(tmp_path, capsys, kind):
    (tmp_path / "flags.yaml").write_text(
        yaml.safe_dump(
            {
                "backends": {
                    "b": {
                        "type": kind,
                        "url": "http://admin:hunter2@127.0.0.1:9",
                        "token_env": "NO_SUCH_TOKEN",
                    }
                },
                "features": {"f": {"backend": "b", "flags": {"kill_switch": "f"}}},
            }
        )
    )
    assert main(["flags", "status", "--data-dir", str(tmp_path)]) == 2
    assert main(["flags", "kill", "f", "--yes", "--json", "--data-dir", str(tmp_path)]) == 1
    assert main(["flags", "audit", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "backends.b.url: expected a URL without user or password" in err
    assert "hunter2" not in out + err and "admin:" not in out + err


def test_a_url_with_userinfo_is_redacted_wherever_it_is_shown(tmp_path):
    from app.flags.config import Secret, redact_url
    from app.flags.unleash import UnleashBackend

    assert redact_url("https://u:p@flags.example:4242/api") == "https://***@flags.example:4242/api"
    assert redact_url("https://flags.example/api") == "https://flags.example/api"
    backend = UnleashBackend("http://admin:hunter2@127.0.0.1:9", Secret("t"), timeout_s=0.2)
    assert "hunter2" not in backend.describe()
    with pytest.raises(Exception) as caught:
        backend.read("f")
    assert "hunter2" not in str(caught.value) and "***@127.0.0.1:9" in str(caught.value)


# -- a writer killed mid-write ---------------------------------------------------------------
KILLED_KILL = """
import sys
from pathlib import Path
from app.rollback import actions
actions.execute(Path(sys.argv[1]), "support-reply", "kill", operator="ana")
"""


def test_a_writer_killed_after_the_replace_still_gets_its_history_line(flag_dir: Path):
    """The history file is a FIFO for the child: opening it to append blocks, which holds
    the child right after the replace of flags.json, where it is killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from flag_components import ROOT

    from app.flags.flagd_file import FlagdFileBackend

    history = flag_dir / "flags.history.jsonl"
    kept = history.read_bytes()
    history.unlink()
    os.mkfifo(history)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_KILL, str(flag_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            flags = json.loads((flag_dir / "flags.json").read_text())["flags"]
            if flags["support-reply-enabled"]["state"] == "DISABLED":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the child never replaced flags.json")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    history.unlink()
    history.write_bytes(kept)
    backend = FlagdFileBackend(flag_dir / "flags.json")
    changes = [(e.flag, e.change, e.after) for e in backend.history()]
    assert ("support-reply-enabled", "disabled", "DISABLED") in changes
    assert not (flag_dir / "flags.json.pending").exists()
    assert len(backend.history()) == len(changes)  # appended once


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_write(flag_dir: Path):
    stale = flag_dir / ".flags.json.k1ll3d.tmp"
    stale.write_text('{"flags": {}}')
    assert actions.execute(flag_dir, "support-reply", "kill").verified
    assert not stale.exists()
    assert not list(flag_dir.glob(".flags.json.*"))


@pytest.mark.parametrize("applied", [True, False])
def test_an_unforeseen_error_is_decided_by_the_read_back_and_on_record(
    flag_dir: Path, monkeypatch, applied: bool
):
    """A backend that fails in a way nobody foresaw (a RuntimeError, after or instead of the
    write): no traceback, no "no outcome recorded"; the read-back decides."""
    from app.flags import registry
    from app.flags.flagd_file import FlagdFileBackend

    class Crashes(FlagdFileBackend):
        def set_enabled(self, flag, environment, enabled, *, comment=""):
            if applied:
                super().set_enabled(flag, environment, enabled, comment=comment)
            raise RuntimeError("connection pool exploded")

    monkeypatch.setitem(registry._FACTORIES, "flagd-file", lambda cfg: Crashes(Path(cfg.options["path"])))
    monkeypatch.setattr(actions, "READBACK_S", 0.5)
    result = actions.execute(flag_dir, "support-reply", "kill", operator="ana")
    assert result.error_code == "RuntimeError" and "unexpected RuntimeError" in result.message
    if applied:
        assert result.verified and result.after["enabled"] is False
    else:
        assert result.outcome == "unverified" and result.after["enabled"] is True
        assert "check support-reply-enabled before retrying" in result.message
    [entry] = trail.entries(flag_dir)
    assert entry.outcome == str(result.outcome) and entry.operator == "ana"


@pytest.mark.parametrize(
    "content", [b'[unleash]\ntoken = "sk-\xff\xfe"\n', b"[unleash]\ntoken = sk-live-123\n"]
)
def test_a_broken_secrets_file_is_an_error_naming_it_never_quoting_it(tmp_path, content):
    import yaml

    from app.flags.base import ConfigError
    from app.flags.config import load_config

    secrets = tmp_path / "secrets.toml"
    secrets.write_bytes(content)
    raw = {
        "backends": {"u": {"type": "unleash", "url": "http://127.0.0.1:9", "token_secret": "unleash.token"}}
    }
    with pytest.raises(ConfigError) as caught:
        (tmp_path / "flags.yaml").write_text(yaml.safe_dump(raw))
        load_config(tmp_path, (secrets,))
    message = str(caught.value)
    assert message.startswith(str(secrets)) and "line 2" in message and "sk-" not in message
