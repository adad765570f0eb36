"""The embedded default backend: a flagd flag-definition file that OpenFeature's flagd
provider (file mode) follows, plus an append-only history file beside it.

Every write validates the whole new document (`flagd_format`), holds an exclusive lock so
two processes never interleave a read-modify-write, and replaces the file atomically with an
mtime strictly newer than the old one (the provider reloads only on a newer mtime).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from app.flags import flagd_format
from app.flags.base import (
    ConfigError,
    EnvironmentState,
    FlagNotFound,
    FlagState,
    HistoryEntry,
    InvalidValue,
    validate_percentage,
)
from app.timestamps import utcnow

Document = dict[str, Any]


class FlagdFileBackend:
    name = "flagd-file"

    def __init__(self, path: Path, environment: str = "production") -> None:
        self.path = Path(path)
        self.environment = environment
        self.history_path = self.path.with_name(self.path.stem + ".history.jsonl")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        # The history line of a write in progress, written before the file is replaced: a
        # process killed after the replace leaves it, and the next one appends it.
        self.pending_path = self.path.with_name(self.path.name + ".pending")

    def describe(self) -> str:
        return str(self.path)

    # -- reading -------------------------------------------------------------------------
    def load(self) -> Document:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"flag file {self.path} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"flag file {self.path}: cannot read ({exc.strerror})") from None
        try:
            doc = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError(f"flag file {self.path} line {line}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            # The position only: the parser's message can quote the file's text.
            raise ConfigError(
                f"flag file {self.path} line {exc.lineno}: not valid JSON ({exc.msg})"
            ) from None
        return doc

    def read(self, flag: str) -> FlagState:
        return self.state_of(flag, self._flag(self.load(), flag))

    def state_of(self, key: str, flag: dict[str, Any]) -> FlagState:
        """The flag's state; ConfigError naming the flag and the field when its definition is
        not one flagd serves as written (a state MAYBE is not "off")."""
        try:
            flagd_format.validate_flag(key, flag)
            flagd_format.check_state(key, flag)
        except InvalidValue as exc:
            raise ConfigError(f"{self.path}: {exc.message}") from None
        split = flagd_format.fractional_split(flag)
        has_targeting = bool(flag.get("targeting"))
        percentage = None
        if split is not None:
            canary = next(iter(split))
            percentage = flagd_format.served_percentage(flag, canary)
        env = EnvironmentState(
            name=self.environment,
            enabled=flag.get("state") == "ENABLED",
            rollout_percentage=percentage,
            variant=None if has_targeting else flag.get("defaultVariant"),
            split=None
            if split is None
            else {name: flagd_format.served_percentage(flag, name) or 0 for name in split},
        )
        return FlagState(
            key=key,
            variants=dict(flag.get("variants", {})),
            environments={self.environment: env},
            value_type=flagd_format.flag_type(flag),
        )

    def _flag(self, doc: Document, key: str) -> dict[str, Any]:
        try:
            return doc["flags"][key]
        except (KeyError, TypeError):
            raise FlagNotFound(f"flag {key} not found in {self.path}") from None

    def _check_env(self, environment: str) -> None:
        if environment != self.environment:
            raise FlagNotFound(f"environment {environment} not in {self.path} ({self.environment})")

    # -- writing -------------------------------------------------------------------------
    def set_enabled(self, flag: str, environment: str, enabled: bool, *, comment: str = "") -> None:
        self._check_env(environment)
        state = "ENABLED" if enabled else "DISABLED"

        def change(f: dict[str, Any]) -> tuple[str, str | None, str | None]:
            before = f.get("state")
            f["state"] = state
            return ("enabled" if enabled else "disabled", before, state)

        self._update(flag, change, comment)

    def set_rollout(
        self, flag: str, environment: str, percentage: float, variant: str, *, comment: str = ""
    ) -> None:
        self._check_env(environment)
        percentage = validate_percentage(percentage)

        def change(f: dict[str, Any]) -> tuple[str, str | None, str | None]:
            if variant not in f["variants"]:
                raise InvalidValue(f"flag {flag} has no variant {variant}")
            split = flagd_format.fractional_split(f) or {}
            others = [v for v in split if v != variant] or [
                v for v in [f.get("defaultVariant"), *f["variants"]] if v and v != variant
            ]
            if not others:
                raise InvalidValue(f"flag {flag} has no other variant to serve the rest")
            before = flagd_format.served_percentage(f, variant)
            f["targeting"] = flagd_format.rollout_targeting(variant, percentage, others[0])
            return ("rollout", _text(before), _text(percentage))

        self._update(flag, change, comment)

    def set_variant(self, flag: str, environment: str, variant: str, *, comment: str = "") -> None:
        self._check_env(environment)

        def change(f: dict[str, Any]) -> tuple[str, str | None, str | None]:
            if variant not in f["variants"]:
                known = ", ".join(f["variants"])
                raise InvalidValue(f"flag {flag} has no variant {variant} (known: {known})")
            before = None if f.get("targeting") else f.get("defaultVariant")
            f["defaultVariant"] = variant
            f.pop("targeting", None)  # serve it to everyone
            return ("variant", before, variant)

        self._update(flag, change, comment)

    def write_document(self, doc: Document, *, comment: str = "initial flag file") -> None:
        """Replace the whole file (used to create it); validated like every other write."""
        with self._locked():
            previous = self.load() if self.path.exists() else None
            flagd_format.validate_document(doc, previous)
            self._write(doc, self._history_line("*", "replaced", None, None, comment))

    def _update(
        self,
        key: str,
        change: Callable[[dict[str, Any]], tuple[str, str | None, str | None]],
        comment: str,
    ) -> None:
        with self._locked():
            previous = self.load()
            doc = json.loads(json.dumps(previous))
            kind, before, after = change(self._flag(doc, key))
            if before == after and doc == previous:
                return  # already so: no write, no history line
            flagd_format.validate_document(doc, previous)
            self._write(doc, self._history_line(key, kind, before, after, comment))

    def _write(self, doc: Document, line: dict[str, Any]) -> None:
        """Replace the file and append its history line, so that a kill at any point leaves
        either the old file and no line, or the new file and (now or at the next start)
        its line: the line is noted as pending before the replace."""
        data = (json.dumps(doc, indent=2) + "\n").encode()
        pending = {"sha256": hashlib.sha256(data).hexdigest(), "line": line}
        _write_synced(self.pending_path, json.dumps(pending).encode())
        self._replace(data)
        self._write_history_line(line)
        self.pending_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._recover()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _recover(self) -> None:
        """Finish what a killed writer left (called under the lock, so no writer is at work):
        remove its temporary files, and append the history line of a replace it made."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        if not self.pending_path.exists():
            return
        try:
            pending = json.loads(self.pending_path.read_text())
            sha, line = pending["sha256"], pending["line"]
        except (ValueError, KeyError, TypeError):
            sha = line = None  # torn: killed while noting it, before the replace
        if line is not None and self.path.exists():
            replaced = hashlib.sha256(self.path.read_bytes()).hexdigest() == sha
            if replaced and line["id"] not in {e.entry_id for e in self._entries()}:
                self._write_history_line(line)
        self.pending_path.unlink(missing_ok=True)

    def _replace(self, data: bytes) -> None:
        folder = self.path.parent
        old_mtime = self.path.stat().st_mtime_ns if self.path.exists() else 0
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            # The provider compares float seconds: stay at least 1 ms ahead of the old mtime.
            mtime = max(time.time_ns(), old_mtime + 1_000_000)
            os.utime(tmp, ns=(mtime, mtime))
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _history_line(
        self,
        key: str,
        kind: str,
        before: str | None,
        after: str | None,
        comment: str,
        when: datetime | None = None,
    ) -> dict[str, Any]:
        when = when or utcnow()
        return {
            "id": uuid.uuid4().hex,
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "flag": key,
            "environment": self.environment,
            "change": kind,
            "before": before,
            "after": after,
            "comment": comment,
        }

    def _write_history_line(self, line: dict[str, Any]) -> None:
        with open(self.history_path, "a") as out:
            out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def record_past_change(self, entry: HistoryEntry) -> None:
        """Append a change made before this file was managed here (demo and imports)."""
        with self._locked():
            self._write_history_line(
                self._history_line(
                    entry.flag,
                    entry.change,
                    entry.before,
                    entry.after,
                    entry.description or "",
                    entry.timestamp,
                )
            )

    # -- history -------------------------------------------------------------------------
    def history(self, since: datetime | None = None) -> list[HistoryEntry]:
        if self.pending_path.exists():  # a write was interrupted: finish it first
            with self._locked():
                pass
        return [e for e in self._entries() if since is None or e.timestamp >= since]

    def _entries(self) -> list[HistoryEntry]:
        if not self.history_path.exists():
            return []
        entries = []
        for raw in self.history_path.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
                when = datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line after a crash
            entries.append(
                HistoryEntry(
                    timestamp=when,
                    flag=line["flag"],
                    environment=line.get("environment"),
                    change=line["change"],
                    before=line.get("before"),
                    after=line.get("after"),
                    author=None,
                    description=line.get("comment") or None,
                    entry_id=line["id"],
                )
            )
        return entries


def _text(value: float | None) -> str | None:
    return None if value is None else f"{value:g}%"


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
