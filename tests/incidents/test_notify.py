"""Messages to Slack-compatible webhooks, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.incidents import notify, postmortem
from app.incidents.briefing import brief, facts
from app.incidents.log import Incident, IncidentLog
from app.incidents.timeline import assemble

SECRET_PATH = "/services/T000/B000/s3cr3t-token-do-not-leak"


STALL_LIMIT_S = 30.0  # how long a stalled answer waits for the test to end


class Hook:
    """A webhook receiver: answers each POST with the next planned status, or stalls until
    the test ends (`release`), so that only the client's own timeout can end the call."""

    def __init__(self) -> None:
        self.plan: list[int | str] = []
        self.received: list[dict] = []
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                step = hook.plan.pop(0) if hook.plan else 200
                if step == "stall":
                    hook.release.wait(STALL_LIMIT_S)
                    step = 200
                try:
                    self.send_response(int(step))
                    self.end_headers()
                    self.wfile.write(b"ok" if step == 200 else b"error")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.release.set()
    h.server.shutdown()
    h.server.server_close()


def configure(data_dir: Path, url: str, timeout_s: float = 0.3, retries: int = 2) -> None:
    (data_dir / "notify.yaml").write_text(
        f"allow_private: true\nwebhooks:\n  incidents:\n    url: {url}\n    timeout_s: {timeout_s}\n"
        f"    retries: {retries}\n"
    )


def internal_update(data_dir: Path, incident: Incident) -> tuple[notify.Template, str]:
    template = notify.load_templates()["internal-update"]
    return template, notify.render(template, facts(brief(data_dir, incident)))


def test_a_message_is_filled_with_live_facts_sent_and_put_on_the_timeline(
    flag_demo_dir, canary_incident, hook
):
    configure(flag_demo_dir, hook.url)
    template, text = internal_update(flag_demo_dir, canary_incident)
    assert "1,041 requests" in text and "partial: variant = canary" in text and "(unknown)" not in text
    result = notify.send(flag_demo_dir, canary_incident, "incidents", template, text, actor="raj")
    assert (result.outcome, result.attempts, result.detail) == ("sent", 1, "HTTP 200")
    assert hook.received == [{"text": text}]
    incident = IncidentLog(flag_demo_dir).get(canary_incident.id)
    [entry] = [e for e in assemble(flag_demo_dir, None, incident, incident.opened_at) if e.source == "notify"]
    assert entry.text == "Internal update to incidents: sent (HTTP 200), 1 attempt(s)"
    assert entry.outcome == "sent"


def test_a_500_is_retried_then_shown_as_failed_and_can_be_sent_again(flag_demo_dir, canary_incident, hook):
    configure(flag_demo_dir, hook.url, retries=2)
    hook.plan = [500, 502, 503]
    template, text = internal_update(flag_demo_dir, canary_incident)
    result = notify.send(flag_demo_dir, canary_incident, "incidents", template, text, backoff_s=0.01)
    assert (result.outcome, result.attempts, result.detail) == ("failed", 3, "HTTP 503")
    assert len(hook.received) == 3
    incident = IncidentLog(flag_demo_dir).get(canary_incident.id)
    [failed] = notify.failed_messages(incident)
    assert failed["detail"] == "HTTP 503" and failed["text"] == text

    retry = notify.send(
        flag_demo_dir,
        incident,
        failed["channel"],
        template,
        failed["text"],
        retry_of=failed["seq"],
        backoff_s=0.01,
    )
    assert retry.ok
    incident = IncidentLog(flag_demo_dir).get(canary_incident.id)
    assert notify.failed_messages(incident) == []
    outcomes = [
        e.outcome for e in assemble(flag_demo_dir, None, incident, incident.opened_at) if e.source == "notify"
    ]
    assert outcomes == ["failed", "sent"]


def test_a_client_error_is_not_retried(flag_demo_dir, canary_incident, hook):
    configure(flag_demo_dir, hook.url, retries=3)
    hook.plan = [404]
    template, text = internal_update(flag_demo_dir, canary_incident)
    result = notify.send(flag_demo_dir, canary_incident, "incidents", template, text, backoff_s=0.01)
    assert (result.outcome, result.attempts, result.detail) == ("failed", 1, "HTTP 404")


def test_a_webhook_slower_than_the_timeout_fails_after_its_retries(flag_demo_dir, canary_incident, hook):
    configure(flag_demo_dir, hook.url, timeout_s=0.2, retries=1)
    hook.plan = ["stall", "stall"]
    template, text = internal_update(flag_demo_dir, canary_incident)
    started = time.monotonic()
    result = notify.send(flag_demo_dir, canary_incident, "incidents", template, text, backoff_s=0.01)
    assert (result.outcome, result.attempts, result.detail) == ("failed", 2, "no answer within 0.2 s")
    # The receiver never answers while the test runs: only the 0.2 s timeout can have ended
    # both attempts, however slow the machine (about 0.4 s expected, the stall is 30 s).
    assert time.monotonic() - started < STALL_LIMIT_S


def test_an_unreachable_webhook_fails_with_a_message(flag_demo_dir, canary_incident, hook):
    port = hook.server.server_address[1]
    hook.server.shutdown()
    hook.server.server_close()
    configure(flag_demo_dir, f"http://127.0.0.1:{port}{SECRET_PATH}", retries=0)
    template, text = internal_update(flag_demo_dir, canary_incident)
    result = notify.send(flag_demo_dir, canary_incident, "incidents", template, text)
    assert (result.outcome, result.detail) == ("failed", "could not connect to the webhook")


def test_the_webhook_url_never_reaches_the_timeline_the_store_or_the_post_mortem(
    flag_demo_dir, canary_incident, hook, capsys
):
    configure(flag_demo_dir, hook.url, retries=0)
    template, text = internal_update(flag_demo_dir, canary_incident)
    notify.send(flag_demo_dir, canary_incident, "incidents", template, text)
    hook.plan = [500]
    notify.send(flag_demo_dir, canary_incident, "incidents", template, text)
    hook.server.shutdown()
    hook.server.server_close()
    notify.send(flag_demo_dir, canary_incident, "incidents", template, text)
    secret = "s3cr3t-token-do-not-leak"
    assert secret not in (flag_demo_dir / "ledger.sqlite").read_bytes().decode("latin-1")
    assert secret not in postmortem.export(flag_demo_dir, canary_incident.id)
    assert secret not in repr(notify.load_webhooks(flag_demo_dir))
    out, err = capsys.readouterr()
    assert secret not in out + err


def test_a_url_from_the_environment_is_used(flag_demo_dir, canary_incident, hook, monkeypatch):
    monkeypatch.setenv("INCIDENTS_HOOK", hook.url)
    (flag_demo_dir / "notify.yaml").write_text(
        "allow_private: true\nwebhooks:\n  incidents:\n    url_env: INCIDENTS_HOOK\n"
    )
    template, text = internal_update(flag_demo_dir, canary_incident)
    assert notify.send(flag_demo_dir, canary_incident, "incidents", template, text).ok


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254"])
def test_a_loopback_or_link_local_target_is_refused_unless_allowed(
    flag_demo_dir, canary_incident, hook, host
):
    port = hook.server.server_address[1]
    (flag_demo_dir / "notify.yaml").write_text(
        f"webhooks:\n  incidents:\n    url: http://{host}:{port}\n    retries: 0\n"
    )
    template, text = internal_update(flag_demo_dir, canary_incident)
    result = notify.send(flag_demo_dir, canary_incident, "incidents", template, text)
    assert result.outcome == "failed" and result.attempts == 0
    assert "loopback or link-local" in result.detail and "allow_private: true" in result.detail
    assert hook.received == []


def test_credentials_in_a_webhook_url_are_refused(tmp_path):
    (tmp_path / "notify.yaml").write_text("webhooks:\n  x:\n    url: https://u:p@hooks.example\n")
    with pytest.raises(notify.NotifyConfigError, match="webhooks.x.url: expected no user"):
        notify.load_webhooks(tmp_path)


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        (
            "webhooks:\n  x:\n    url: ftp://nope\n",
            "line 3: webhooks.x.url: expected an http(s) URL (or url_env naming a variable)",
        ),
        (
            "webhooks:\n  x:\n    url_env: UNSET_HOOK_VAR\n",
            "line 3: webhooks.x.url_env: environment variable UNSET_HOOK_VAR is not set",
        ),
        (
            "webhooks:\n  x:\n    url: http://h\n    timeout_s: 0\n",
            "line 4: webhooks.x.timeout_s: expected a number of seconds > 0, got 0",
        ),
        (
            "webhooks:\n  x:\n    url: http://h\n    retries: many\n",
            "line 4: webhooks.x.retries: expected a whole number from 0 to 10, got 'many'",
        ),
        (
            "webhooks:\n  x:\n    url: http://h\n    token: t\n",
            "line 4: webhooks.x.token: unknown key; expected one of retries, timeout_s, url, url_env",
        ),
        (
            "webhooks:\n  x:\n    timeout_s: 3\n",
            "line 2: webhooks.x: expected a mapping with either url or url_env",
        ),
        ("webhooks: [\n", "line 2: not valid YAML"),
    ],
)
def test_a_broken_notify_config_names_the_file_line_and_key(tmp_path, yaml_text, message):
    (tmp_path / "notify.yaml").write_text(yaml_text)
    with pytest.raises(notify.NotifyConfigError) as caught:
        notify.load_webhooks(tmp_path)
    assert f"{tmp_path / 'notify.yaml'}: {message}" in str(caught.value)


def test_a_webhook_url_never_appears_in_a_config_error(tmp_path):
    secret = "https://hooks.example.invalid/services/T000/B000/very-secret"
    (tmp_path / "notify.yaml").write_text(
        f"webhooks:\n  x:\n    url: {secret}\n    url_env: ALSO\n  y:\n    url: 'ftp://secret-too'\n"
    )
    with pytest.raises(notify.NotifyConfigError) as caught:
        notify.load_webhooks(tmp_path)
    assert "webhooks.x" in str(caught.value) and "webhooks.y.url" in str(caught.value)
    assert "very-secret" not in str(caught.value) and "secret-too" not in str(caught.value)


def test_sending_to_an_unconfigured_channel_is_a_recorded_failure(flag_demo_dir, canary_incident):
    template, text = internal_update(flag_demo_dir, canary_incident)
    result = notify.send(flag_demo_dir, canary_incident, "nowhere", template, text)
    assert result.outcome == "failed" and "no webhook named nowhere" in result.detail
    assert notify.failed_messages(IncidentLog(flag_demo_dir).get(canary_incident.id))
