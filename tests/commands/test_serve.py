"""`rollback-desk serve` and `make run`: this machine only by default; a network address
needs sign-in or an explicit --allow-unauthenticated, which every page shows in red."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.access.signin import is_loopback, sign_in_configured
from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
ROUTER = str(ROOT / "app" / "ui" / "streamlit_app.py")
AUTH = """[auth]
redirect_uri = "http://127.0.0.1:8501/oauth2callback"
cookie_secret = "a-long-random-secret"
client_id = "rollback-desk"
client_secret = "client-secret"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.10"])
def test_a_network_address_without_sign_in_is_refused(tmp_path, capsys, monkeypatch, address):
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(["serve", "--address", address, "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2 and "sign-in is not configured" in err and "--allow-unauthenticated" in err


def test_sign_in_configuration_is_read_from_the_secrets_file(tmp_path):
    secrets = tmp_path / "secrets.toml"
    assert not sign_in_configured((secrets,))
    secrets.write_text(AUTH)
    assert sign_in_configured((secrets,))
    secrets.write_text(AUTH.replace('client_id = "rollback-desk"\n', ""))
    assert not sign_in_configured((secrets,))
    secrets.write_text(AUTH.replace('client_id = "rollback-desk"', '[auth.okta]\nclient_id = "rd"'))
    assert sign_in_configured((secrets,))  # a named provider: [auth.okta]


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.0.2.1")


def _start(args: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _healthy(url: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if requests.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail("the console never became healthy")


def test_serve_listens_on_127_0_0_1_only_by_default(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    server = _start(["serve", "--port", str(port), "--data-dir", str(tmp_path / "d")], tmp_path, env)
    try:
        _healthy(f"http://127.0.0.1:{port}", server)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        first = server.stdout.readline()
        assert "local mode: anyone on this machine can act" in first
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def test_make_run_serves_on_127_0_0_1():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "-m app serve --address 127.0.0.1" in recipe and "streamlit run" not in recipe


@pytest.fixture
def fresh():
    st.cache_data.clear()
    st.cache_resource.clear()


def test_without_sign_in_every_page_says_local_mode(tmp_path, monkeypatch, fresh):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(tmp_path / "d"))
    monkeypatch.delenv("ROLLBACK_DESK_UNAUTHENTICATED", raising=False)
    at = AppTest.from_file(ROUTER, default_timeout=30)
    at.run()
    assert any("Local mode: anyone on this machine can act" in w.value for w in at.sidebar.warning)
    assert not at.error


def test_allow_unauthenticated_shows_a_red_banner(tmp_path, monkeypatch, fresh):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("ROLLBACK_DESK_UNAUTHENTICATED", "1")
    at = AppTest.from_file(ROUTER, default_timeout=30)
    at.run()
    assert any("No sign-in on a network address" in e.value for e in at.error)


def test_allow_unauthenticated_starts_on_a_network_address_with_the_banner_flag(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    server = _start(
        [
            "serve",
            "--address",
            "0.0.0.0",
            "--port",
            str(port),
            "--allow-unauthenticated",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        tmp_path,
        env,
    )
    try:
        _healthy(f"http://127.0.0.1:{port}", server)
        assert "NO SIGN-IN" in server.stdout.readline()
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        assert b"ROLLBACK_DESK_UNAUTHENTICATED=1" in environ
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def auth_secrets() -> dict:
    return {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "s" * 32,
        "client_id": "rd",
        "client_secret": "cs",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }


def test_with_sign_in_configured_a_visitor_gets_only_the_sign_in_page(tmp_path, monkeypatch, fresh):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(tmp_path / "d"))
    at = AppTest.from_file(ROUTER, default_timeout=30)
    at.secrets["auth"] = auth_secrets()
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.sidebar.warning  # no local mode


def test_an_incomplete_auth_section_stops_the_app_with_the_reason(tmp_path, monkeypatch, fresh):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(tmp_path / "d"))
    at = AppTest.from_file(ROUTER, default_timeout=30)
    at.secrets["auth"] = {k: v for k, v in auth_secrets().items() if k != "client_secret"}
    at.run()
    assert any("Sign-in is configured incompletely" in e.value for e in at.error)
    assert not at.button and not at.sidebar.warning
