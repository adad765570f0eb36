"""A throwaway PostgreSQL 15 cluster and the pinned unleash-server, started for tests.

Plain functions and classes (no pytest) so the same code serves the fixtures and a manual
session. Postgres refuses to run as root, so when the tests run as root the cluster is
created and started as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

PG_BIN = Path(os.environ.get("ROLLBACK_DESK_PG_BIN", "/usr/lib/postgresql/15/bin"))
UNLEASH_DIR = Path(__file__).resolve().parent / "unleash_server"
ADMIN_TOKEN = "*:*.rollback-desk-test-admin-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def missing_components() -> list[str]:
    """What is absent for the Unleash tests, in words (empty when all is there)."""
    missing = []
    if not (PG_BIN / "initdb").exists():
        missing.append(f"PostgreSQL 15 binaries ({PG_BIN}/initdb)")
    if shutil.which("node") is None:
        missing.append("node")
    if not (UNLEASH_DIR / "node_modules" / "unleash-server").exists():
        missing.append(f"unleash-server (run `npm ci` in {UNLEASH_DIR})")
    return missing


@dataclass
class PostgresCluster:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        return self.root / "pgdata"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # mkdtemp makes it 0700; the postgres user must enter it
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        self.process = subprocess.Popen(
            _as_postgres(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.root}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            if self.process.poll() is not None:
                raise RuntimeError("PostgreSQL exited during start")
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not become ready in 30 s")

    def create_database(self, name: str) -> str:
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
        )
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        # Signal the postmaster itself (runuser does not pass signals on); SIGINT is
        # Postgres's fast shutdown.
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        if self.process and self.process.poll() is None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class UnleashServer:
    database_url: str
    port: int = field(default_factory=free_port)
    token: str = ADMIN_TOKEN
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log: Path) -> None:
        self.log = log
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "DATABASE_SSL": "false",
            "HTTP_PORT": str(self.port),
            "INIT_ADMIN_API_TOKENS": self.token,
            "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false",
            "UNLEASH_TELEMETRY_DISABLED": "true",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "1",
        }
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                ["node", str(UNLEASH_DIR / "start.mjs")],
                cwd=UNLEASH_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"unleash-server exited; see {log}:\n{log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"unleash-server not healthy in 60 s; see {log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # the database is thrown away: no need to wait long
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_stack(root: Path | None = None) -> tuple[PostgresCluster, UnleashServer]:
    """Postgres, then Unleash on it. Caller stops both (Unleash first)."""
    root = root or Path(tempfile.mkdtemp(prefix="rollback-desk-unleash-"))
    # Its own folder straight under the temp dir: pytest's folders are closed to other users.
    pg = PostgresCluster(Path(tempfile.mkdtemp(prefix="rollback-desk-pg-")))
    pg.start()
    try:
        url = pg.create_database("unleash")
        server = UnleashServer(url)
        server.start(root / "unleash.log")
    except BaseException:
        pg.stop()
        raise
    return pg, server
