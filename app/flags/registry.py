"""Backends chosen by configuration: a backend type name maps to a factory.

Pages and commands ask `backend_for_feature`; no caller ever branches on a vendor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.flags.base import ConfigError, FlagBackend
from app.flags.config import BackendConfig, FeatureFlags, FlagConfig, load_config

Factory = Callable[[BackendConfig], FlagBackend]
_FACTORIES: dict[str, Factory] = {}


def register(kind: str) -> Callable[[Factory], Factory]:
    def wrap(factory: Factory) -> Factory:
        _FACTORIES[kind] = factory
        return factory

    return wrap


@register("flagd-file")
def _flagd(cfg: BackendConfig) -> FlagBackend:
    from app.flags.flagd_file import FlagdFileBackend

    return FlagdFileBackend(Path(cfg.options["path"]), str(cfg.options.get("environment", "production")))


@register("unleash")
def _unleash(cfg: BackendConfig) -> FlagBackend:
    from app.flags.unleash import UnleashBackend

    return UnleashBackend(**_http_options(cfg))


@register("launchdarkly")
def _launchdarkly(cfg: BackendConfig) -> FlagBackend:
    from app.flags.launchdarkly import LaunchDarklyBackend

    return LaunchDarklyBackend(**_http_options(cfg))


def _http_options(cfg: BackendConfig) -> dict:
    return {
        "url": str(cfg.options["url"]),
        "token": cfg.token,
        "project": str(cfg.options.get("project", "default")),
        "timeout_s": cfg.timeout_s,
    }


def build_backend(cfg: BackendConfig) -> FlagBackend:
    try:
        factory = _FACTORIES[cfg.type]
    except KeyError:
        raise ConfigError(f"backend {cfg.name}: unknown type {cfg.type}") from None
    return factory(cfg)


def backend_for_feature(config: FlagConfig, feature: FeatureFlags) -> FlagBackend:
    return build_backend(config.backends[feature.backend])


def backends(data_dir: Path) -> dict[str, FlagBackend]:
    """Every configured backend by name (for history sync)."""
    config = load_config(data_dir)
    return {name: build_backend(cfg) for name, cfg in config.backends.items()}
