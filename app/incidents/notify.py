"""Incident messages: templates filled with live facts, sent to Slack-compatible webhooks.

Webhooks are configured in `<data dir>/notify.yaml`:

    webhooks:
      incidents:                       # the channel name shown in the app and on the timeline
        url_env: INCIDENTS_WEBHOOK_URL # or `url: https://hooks.slack.com/services/...`
        timeout_s: 5                   # per attempt (default 5)
        retries: 2                     # extra attempts after a timeout, 429 or 5xx (default 2)
    allow_private: false               # true: loopback/link-local hosts allowed (tests only)

A webhook URL is a secret (whoever has it can post to the channel): it is held in a `Secret`,
and no message, error, log line, timeline entry or export ever contains it. Each send and its
outcome is an incident event; a failed send stays visible and can be sent again.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from app.access.identity import Identity
from app.access.roles import AccessDenied, Permission, require
from app.config import setting
from app.configuration import ConfigFileError, load_yaml
from app.configuration.textfiles import FileProblem, read_text
from app.flags.config import Secret
from app.incidents.log import Incident, IncidentError, IncidentLog
from app.incidents.playbooks import PLAYBOOKS_DIR, fill

CONFIG_FILE = "notify.yaml"
TEMPLATES_DIR = PLAYBOOKS_DIR / "templates"
TEMPLATE_TITLES = {
    "internal-update": "Internal update",
    "customer-update": "Customer-facing update",
    "resolution-notice": "Resolution notice",
}
RETRY_BACKOFF_S = 0.5


class NotifyConfigError(ConfigFileError):
    """notify.yaml is not valid; the message names the file, the line and the key."""


@dataclass(frozen=True)
class Webhook:
    name: str
    url: Secret = field(repr=False)
    timeout_s: float = 5.0
    retries: int = 2
    allow_private: bool = False  # loopback and link-local targets allowed (tests)


@dataclass(frozen=True)
class Template:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class SendResult:
    outcome: str  # sent | failed
    attempts: int
    detail: str  # HTTP status or what went wrong; never the URL

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


def load_webhooks(data_dir: Path) -> dict[str, Webhook]:
    """The configured webhooks by name; none when notify.yaml does not exist. The shape is
    checked by schemas/notify.json; a url_env naming an unset variable is checked here."""
    path = Path(data_dir) / CONFIG_FILE
    if not path.exists():
        return {}
    doc = load_yaml(path, "notify", error=NotifyConfigError, empty={})
    allow_private = bool(doc.data.get("allow_private", False))
    hooks = {}
    for name, spec in (doc.data.get("webhooks") or {}).items():
        if "url_env" in spec:
            url = os.environ.get(spec["url_env"], "")
            if not url.startswith(("http://", "https://")):
                state = "is not set" if not url else "does not hold an http(s) URL"
                raise NotifyConfigError(
                    [
                        doc.problem(
                            ("webhooks", name, "url_env"), f"environment variable {spec['url_env']} {state}"
                        )
                    ]
                )
        else:
            url = spec["url"]
        if "@" in (urlsplit(url).netloc or ""):
            raise NotifyConfigError(
                [doc.problem(("webhooks", name, "url"), "expected no user or password in the URL")]
            )
        hooks[str(name)] = Webhook(
            str(name),
            Secret(url),
            float(spec.get("timeout_s", setting("webhook_timeout_s"))),
            int(spec.get("retries", 2)),
            allow_private,
        )
    return hooks


def refused_target(hook: Webhook) -> str | None:
    """Why the webhook's host may not be called, or None. Loopback, link-local (the cloud
    metadata service at 169.254.169.254), unspecified and multicast addresses are refused
    unless notify.yaml says `allow_private: true`: a webhook must not become a way to reach
    services on this machine."""
    if hook.allow_private:
        return None
    host = urlsplit(hook.url.reveal()).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return None  # the send itself reports "could not connect"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
            return (
                "the webhook's host is a loopback or link-local address: refused "
                f"(set allow_private: true in {CONFIG_FILE} to allow it)"
            )
    return None


def load_templates(folder: Path = TEMPLATES_DIR) -> dict[str, Template]:
    """The message templates that can be read (see `template_problems` for the others)."""
    return read_templates(folder)[0]


def template_problems(folder: Path = TEMPLATES_DIR) -> list[str]:
    """One line per template file that cannot be read (file and line, never its text)."""
    return read_templates(folder)[1]


def read_templates(folder: Path = TEMPLATES_DIR) -> tuple[dict[str, Template], list[str]]:
    templates: dict[str, Template] = {}
    problems: list[str] = []
    for p in sorted(Path(folder).glob("*.md")):
        try:
            text = read_text(p).strip()
        except FileProblem as exc:
            problems.append(str(exc))
            continue
        title = TEMPLATE_TITLES.get(p.stem, p.stem.replace("-", " ").capitalize())
        templates[p.stem] = Template(p.stem, title, text)
    return templates, problems


def render(template: Template, facts: dict[str, Any]) -> str:
    return fill(template.text, facts)


def post(hook: Webhook, text: str, backoff_s: float = RETRY_BACKOFF_S) -> SendResult:
    """POST `{"text": ...}` with a timeout; retry timeouts, refused connections, 429 and 5xx."""
    refused = refused_target(hook)
    if refused:
        return SendResult("failed", 0, refused)
    detail = ""
    attempts = 0
    for attempt in range(hook.retries + 1):
        attempts = attempt + 1
        try:
            response = requests.post(hook.url.reveal(), json={"text": text}, timeout=hook.timeout_s)
        except requests.Timeout:
            detail = f"no answer within {hook.timeout_s:g} s"
        except requests.ConnectionError:
            detail = "could not connect to the webhook"
        except requests.RequestException as exc:  # never str(exc): it carries the URL
            detail = f"request failed ({type(exc).__name__})"
        else:
            if 200 <= response.status_code < 300:
                return SendResult("sent", attempts, f"HTTP {response.status_code}")
            detail = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                break
        if attempt < hook.retries:
            time.sleep(backoff_s * 2**attempt)
    return SendResult("failed", attempts, detail)


def send(
    data_dir: Path,
    incident: Incident,
    channel: str,
    template: Template,
    text: str,
    actor: str | None = None,
    retry_of: int | None = None,
    backoff_s: float = RETRY_BACKOFF_S,
    identity: Identity | None = None,
) -> SendResult:
    """Send a message to one configured webhook and put the send and its outcome on the
    incident's timeline. A missing channel or a broken config is a failed send, recorded.
    With an `identity`, a role that may not send is refused (IncidentError) before anything
    is sent."""
    log = IncidentLog(data_dir, identity)
    if identity is not None:
        try:
            require(identity, Permission.MESSAGE_SEND)
        except AccessDenied as exc:
            raise IncidentError(str(exc)) from None
    try:
        hook = load_webhooks(data_dir).get(channel)
        result = (
            post(hook, text, backoff_s)
            if hook is not None
            else SendResult("failed", 0, f"no webhook named {channel} in {CONFIG_FILE}")
        )
    except NotifyConfigError as exc:
        result = SendResult("failed", 0, str(exc))
    log.append(
        incident.id,
        "message",
        {
            "channel": channel,
            "template": template.id,
            "template_title": template.title,
            "text": text,
            "outcome": result.outcome,
            "attempts": result.attempts,
            "detail": result.detail,
            "retry_of": retry_of,
        },
        actor,
    )
    return result


def failed_messages(incident: Incident) -> list[dict[str, Any]]:
    """Failed sends not yet retried, with their event seq (a retry names it in `retry_of`;
    a retry that fails in turn is the one listed then)."""
    retried = {e.data.get("retry_of") for e in incident.events if e.kind == "message"}
    return [
        {"seq": e.seq, **e.data}
        for e in incident.events
        if e.kind == "message" and e.data.get("outcome") == "failed" and e.seq not in retried
    ]
