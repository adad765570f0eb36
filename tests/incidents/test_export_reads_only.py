"""Exporting a post-mortem (and briefing an incident) reads what is stored: no flag backend
is called over the network and the ledger is left exactly as it was. Fetching the backends'
histories is an explicit refresh."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.incidents import postmortem
from app.incidents.briefing import brief
from app.incidents.log import IncidentLog
from app.rollback import history
from app.rollback.actions import execute
from app.storage.datadir import DataDir


class FlagServer:
    """A real HTTP server on loopback answering Unleash's event search; it counts calls."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook
                seen.append(self.path)
                body = json.dumps({"events": [], "total": 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flag_server() -> Iterator[FlagServer]:
    server = FlagServer()
    yield server
    server.stop()


def ledger_dump(data_dir: Path) -> list[str]:
    con = sqlite3.connect(data_dir / "ledger.sqlite")
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_exporting_a_post_mortem_calls_no_backend_and_leaves_the_ledger_as_it_was(
    flag_demo_dir: Path, canary_incident, flag_server: FlagServer, monkeypatch: pytest.MonkeyPatch
):
    assert execute(
        flag_demo_dir, "doc-summarizer", "rollout", 0, operator="ana", incident_id=canary_incident.id
    ).verified
    monkeypatch.setenv("ROLLBACK_DESK_TEST_TOKEN", "*:*.secret")
    config = flag_demo_dir / "flags.yaml"
    config.write_text(
        config.read_text().replace(
            "backends:\n",
            f"backends:\n  remote:\n    type: unleash\n    url: {flag_server.url}\n"
            "    token_env: ROLLBACK_DESK_TEST_TOKEN\n",
            1,
        )
    )
    before = ledger_dump(flag_demo_dir)

    text = postmortem.export(flag_demo_dir, canary_incident.id)
    dd = DataDir(flag_demo_dir)
    b = brief(dd, IncidentLog(dd).get(canary_incident.id))

    assert "## Timeline" in text and "rollout" in text  # the action is on record
    assert b.actions and b.mitigated_at is not None
    assert flag_server.paths == []
    assert ledger_dump(flag_demo_dir) == before

    # The explicit refresh is what reaches the backend and caches its history.
    status = history.sync_history(flag_demo_dir, force=True)
    assert status["remote"] == "synced 0 entries"
    assert [p.split("?")[0] for p in flag_server.paths] == ["/api/admin/search/events"]
    assert ledger_dump(flag_demo_dir) != before


def test_a_data_directory_without_logs_or_actions_is_exported_without_creating_anything(
    empty_dir: Path,
):
    incident = IncidentLog(empty_dir).open("Provider down", ["search-answers"], "SEV1")
    before = ledger_dump(empty_dir)
    text = postmortem.export(DataDir(empty_dir), incident.id)
    assert "No numbers" in text and "No flag actions were recorded." in text
    assert not DataDir(empty_dir).has_database
    assert ledger_dump(empty_dir) == before  # no audit tables created by reading
