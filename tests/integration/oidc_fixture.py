"""The pinned npm `oidc-provider`, started on loopback for the sign-in tests.

Plain functions and classes (no pytest) so the same code serves the fixtures and a manual
session, like the Unleash fixture. The provider's development login page is the sign-in
form: a login name from `accounts` and any password.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

OIDC_DIR = Path(__file__).resolve().parent / "oidc_provider"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_components() -> list[str]:
    """What is absent for the sign-in tests, in words (empty when all is there)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        missing.append(f"oidc-provider (run `npm ci` in {OIDC_DIR})")
    return missing


@dataclass
class OidcProvider:
    redirect_uri: str
    accounts: dict[str, dict]
    client_id: str = "rollback-desk"
    client_secret: str = "rollback-desk-test-client-secret"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self, timeout_s: float = 30) -> OidcProvider:
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_CLIENT": json.dumps(
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "redirect_uri": self.redirect_uri,
                }
            ),
            "OIDC_ACCOUNTS": json.dumps(self.accounts),
        }
        self.process = subprocess.Popen(
            ["node", "start.mjs"], cwd=OIDC_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"oidc-provider stopped:\n{out}")
            try:
                if requests.get(self.metadata_url, timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("oidc-provider did not answer its discovery document")

    def secrets_toml(self, cookie_secret: str = "rollback-desk-test-cookie-secret") -> str:
        """The [auth] section Streamlit needs to sign in through this provider."""
        return (
            f'[auth]\nredirect_uri = "{self.redirect_uri}"\ncookie_secret = "{cookie_secret}"\n'
            f'client_id = "{self.client_id}"\nclient_secret = "{self.client_secret}"\n'
            f'server_metadata_url = "{self.metadata_url}"\n'
            # Streamlit asks for prompt=select_account, which this provider does not
            # know; prompt=login asks for the login page every time.
            'client_kwargs = { prompt = "login", scope = "openid profile email groups" }\n'
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
