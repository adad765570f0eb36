"""The flag configuration: which backend and which flags each AI feature has.

It lives in `<data dir>/flags.yaml` and is validated on load; every error names the file and
the key and says what was expected. Tokens are never written in it: a backend names an
environment variable (`token_env`) or a key of `.streamlit/secrets.toml` (`token_secret`),
and the token is held in a `Secret` whose repr never shows it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.flags.base import ConfigError, FlagRole
from app.textfiles import FileProblem, load_yaml, read_text

CONFIG_FILE = "flags.yaml"
BACKEND_TYPES = ("flagd-file", "unleash", "launchdarkly")
SECRETS_FILES = (Path(".streamlit/secrets.toml"), Path.home() / ".streamlit/secrets.toml")


class Secret:
    """A token: usable through `.reveal()`, shown everywhere else as ***."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class BackendConfig:
    name: str
    type: str
    options: dict[str, Any]
    token: Secret | None = field(default=None, repr=False)
    timeout_s: float = 5.0


@dataclass(frozen=True)
class FlagRef:
    role: FlagRole
    key: str
    environment: str
    canary_variant: str | None = None  # rollout: the variant the percentage applies to
    versions: tuple[str, ...] = ()  # model/prompt: oldest -> newest, for "previous"


@dataclass(frozen=True)
class FeatureFlags:
    feature: str
    backend: str
    flags: dict[FlagRole, FlagRef]

    def flag(self, role: FlagRole) -> FlagRef:
        try:
            return self.flags[role]
        except KeyError:
            raise ConfigError(f"feature {self.feature} has no {role} flag configured") from None


@dataclass(frozen=True)
class FlagConfig:
    path: Path
    backends: dict[str, BackendConfig]
    features: dict[str, FeatureFlags]

    def feature(self, name: str) -> FeatureFlags:
        try:
            return self.features[name]
        except KeyError:
            known = ", ".join(sorted(self.features)) or "none"
            raise ConfigError(f"feature {name} is not in {self.path} (known: {known})") from None


def config_path(data_dir: Path) -> Path:
    return Path(data_dir) / CONFIG_FILE


def load_config(data_dir: Path, secrets_files: tuple[Path, ...] = SECRETS_FILES) -> FlagConfig:
    path = config_path(data_dir)
    if not path.exists():
        return FlagConfig(path=path, backends={}, features={})
    try:
        raw = load_yaml(path) or {}
    except FileProblem as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(raw, path, Path(data_dir), secrets_files)


def parse_config(
    raw: Any, path: Path, data_dir: Path, secrets_files: tuple[Path, ...] = SECRETS_FILES
) -> FlagConfig:
    where = _Where(path)
    mapping = where.mapping(raw, "")
    where.only(mapping, "", {"backends", "features"})
    backends = {
        name: _backend(where, name, spec, data_dir, secrets_files)
        for name, spec in where.mapping(mapping.get("backends", {}), "backends").items()
    }
    features = {
        name: _feature(where, name, spec, backends)
        for name, spec in where.mapping(mapping.get("features", {}), "features").items()
    }
    return FlagConfig(path=path, backends=backends, features=features)


def _backend(
    where: _Where, name: str, spec: Any, data_dir: Path, secrets_files: tuple[Path, ...]
) -> BackendConfig:
    at = f"backends.{name}"
    spec = where.mapping(spec, at)
    kind = spec.get("type")
    if kind not in BACKEND_TYPES:
        where.fail(f"{at}.type", f"one of {', '.join(BACKEND_TYPES)}, got {kind!r}")
    options = {k: v for k, v in spec.items() if k not in {"type", "token_env", "token_secret"}}
    if "token" in options:
        where.fail(f"{at}.token", "no token in this file: use token_env or token_secret")
    if kind == "flagd-file":
        options["path"] = str(data_dir / where.text(spec.get("path", "flags.json"), f"{at}.path"))
    else:
        url = where.text(spec.get("url"), f"{at}.url")
        if not url.startswith(("http://", "https://")):
            where.fail(f"{at}.url", "an http(s) URL")
        if "@" in (urlsplit(url).netloc or ""):
            where.fail(f"{at}.url", "a URL without user or password: put the token in "
                                    "token_env or token_secret")
    timeout = spec.get("timeout_s", 5.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        where.fail(f"{at}.timeout_s", "a number of seconds > 0")
    token = None
    if "token_env" in spec:
        var = where.text(spec["token_env"], f"{at}.token_env")
        token = Secret(os.environ.get(var, ""))
    elif "token_secret" in spec:
        token = Secret(_secret(where.text(spec["token_secret"], f"{at}.token_secret"), secrets_files))
    return BackendConfig(name=name, type=kind, options=options, token=token, timeout_s=timeout)


def _feature(
    where: _Where, name: str, spec: Any, backends: dict[str, BackendConfig]
) -> FeatureFlags:
    at = f"features.{name}"
    spec = where.mapping(spec, at)
    where.only(spec, at, {"backend", "environment", "flags"})
    backend = where.text(spec.get("backend"), f"{at}.backend")
    if backend not in backends:
        where.fail(f"{at}.backend", f"one of the backends ({', '.join(backends) or 'none'})")
    environment = where.text(spec.get("environment", "production"), f"{at}.environment")
    flags: dict[FlagRole, FlagRef] = {}
    for role_name, flag in where.mapping(spec.get("flags"), f"{at}.flags").items():
        fat = f"{at}.flags.{role_name}"
        if role_name not in set(FlagRole):
            where.fail(fat, f"a role among {', '.join(FlagRole)}")
        if isinstance(flag, str):
            flag = {"key": flag}
        flag = where.mapping(flag, fat)
        where.only(flag, fat, {"key", "environment", "canary_variant", "versions"})
        versions = flag.get("versions", [])
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            where.fail(f"{fat}.versions", "a list of variant names, oldest first")
        role = FlagRole(role_name)
        flags[role] = FlagRef(
            role=role,
            key=where.text(flag.get("key"), f"{fat}.key"),
            environment=where.text(flag.get("environment", environment), f"{fat}.environment"),
            canary_variant=flag.get("canary_variant"),
            versions=tuple(versions),
        )
    return FeatureFlags(feature=name, backend=backend, flags=flags)


def _secret(dotted: str, files: tuple[Path, ...]) -> str:
    for file in files:
        if not file.exists():
            continue
        try:
            node: Any = tomllib.loads(read_text(file))
        except FileProblem as exc:
            raise ConfigError(str(exc)) from None
        except tomllib.TOMLDecodeError as exc:
            # tomllib's message gives the position only, never the text.
            raise ConfigError(f"{file}: not valid TOML ({exc})") from None
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str):
            return node
    return ""


def redact_url(url: str) -> str:
    """The URL with any user and password replaced by ***, for every place a URL is shown
    or stored (messages, the audit trail, exports)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


class _Where:
    """Builds error messages naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, expected: str) -> Any:
        raise ConfigError(f"{self.path}: {key or '(top level)'}: expected {expected}")

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, "a mapping")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(key, "a non-empty string")
        return value

    def only(self, value: dict[str, Any], key: str, allowed: set[str]) -> None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.fail(f"{key}.{unknown[0]}" if key else unknown[0], f"one of {sorted(allowed)}")
