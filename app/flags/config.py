"""The flag configuration: which backend and which flags each AI feature has.

It lives in `<data dir>/flags.yaml` and is validated on load against schemas/flags.json;
every error names the file, the line and the key and says what was expected. Tokens are
never written in it: a backend names an environment variable (`token_env`) or a key of
`.streamlit/secrets.toml` (`token_secret`),
and the token is held in a `Secret` whose repr never shows it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.config import setting
from app.configuration import ConfigFileError, Document, load_yaml
from app.configuration.textfiles import FileProblem, read_text
from app.flags.base import ConfigError, FlagRole

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
    timeout_s: float = field(default_factory=lambda: float(setting("flag_timeout_s")))


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
    """The flag configuration of a data directory; no file means no features. The shape is
    checked by schemas/flags.json; a feature naming a backend that is not defined is checked
    here. Raises ConfigError naming the file, the line and the key."""
    path = config_path(data_dir)
    if not path.exists():
        return FlagConfig(path=path, backends={}, features={})
    try:
        doc = load_yaml(
            path, "flags", empty={}, vocabularies={"backend_type": BACKEND_TYPES, "role": tuple(FlagRole)}
        )
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(doc, Path(data_dir), secrets_files)


def parse_config(
    doc: Document, data_dir: Path, secrets_files: tuple[Path, ...] = SECRETS_FILES
) -> FlagConfig:
    """The configuration from a document that passed the schema."""
    backends = {
        name: _backend(name, spec, data_dir, secrets_files, doc)
        for name, spec in (doc.data.get("backends") or {}).items()
    }
    features = {}
    for name, spec in (doc.data.get("features") or {}).items():
        if spec["backend"] not in backends:
            known = ", ".join(backends) or "none is defined under backends"
            raise ConfigError(
                str(
                    doc.problem(
                        ("features", name, "backend"),
                        f"expected one of the backends ({known}), got {spec['backend']!r}",
                    )
                )
            )
        features[name] = _feature(name, spec)
    return FlagConfig(path=doc.path, backends=backends, features=features)


def _backend(
    name: str,
    spec: dict[str, Any],
    data_dir: Path,
    secrets_files: tuple[Path, ...],
    doc: Document | None = None,
) -> BackendConfig:
    kind = spec["type"]
    options = {k: v for k, v in spec.items() if k not in {"type", "token_env", "token_secret", "timeout_s"}}
    if kind == "flagd-file":
        options["path"] = str(data_dir / spec.get("path", "flags.json"))
    elif doc is not None and "@" in (urlsplit(str(spec.get("url", ""))).netloc or ""):
        raise ConfigError(
            str(
                doc.problem(
                    ("backends", name, "url"),
                    "expected a URL without user or password: put the token in token_env or token_secret",
                )
            )
        )
    token = None
    if "token_env" in spec:
        token = Secret(os.environ.get(spec["token_env"], ""))
    elif "token_secret" in spec:
        token = Secret(_secret(spec["token_secret"], secrets_files))
    return BackendConfig(
        name=name,
        type=kind,
        options=options,
        token=token,
        timeout_s=float(spec.get("timeout_s", setting("flag_timeout_s"))),
    )


def _feature(name: str, spec: dict[str, Any]) -> FeatureFlags:
    environment = spec.get("environment", "production")
    flags: dict[FlagRole, FlagRef] = {}
    for role_name, flag in spec["flags"].items():
        if isinstance(flag, str):
            flag = {"key": flag}
        role = FlagRole(role_name)
        flags[role] = FlagRef(
            role=role,
            key=flag["key"],
            environment=flag.get("environment", environment),
            canary_variant=flag.get("canary_variant"),
            versions=tuple(flag.get("versions", ())),
        )
    return FeatureFlags(feature=name, backend=spec["backend"], flags=flags)


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
