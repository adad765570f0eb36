"""Unleash through its Admin API.

On/off per environment, the percentage of the first `flexibleRollout` strategy, strategy
variants (pinning serves one variant to everyone), and the event log as history. Unleash
accepts a rollout of 150, so percentages are validated here. Turning on an environment
with no strategy makes Unleash add a 100% rollout by itself: that is refused.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.config import setting
from app.flags.base import (
    EnvironmentState,
    FlagState,
    HistoryEntry,
    InvalidValue,
    UnsafeChange,
    validate_percentage,
)
from app.flags.config import Secret, redact_url
from app.flags.rest import RestClient, answer_shape, token_value

ROLLOUT_STRATEGY = "flexibleRollout"
EVENT_CHANGES = {
    "feature-environment-enabled": "enabled",
    "feature-environment-disabled": "disabled",
    "feature-strategy-update": "strategy",
    "feature-strategy-add": "strategy-added",
    "feature-strategy-remove": "strategy-removed",
}


class UnleashBackend:
    name = "unleash"

    def __init__(
        self, url: str, token: Secret | None, project: str = "default", timeout_s: float | None = None
    ) -> None:
        self.url = redact_url(url.rstrip("/"))  # shown and stored: never a password
        self.project = project
        auth = {"Authorization": token_value(token, f"Unleash at {self.url}")}
        self.rest = RestClient(
            "Unleash",
            url.rstrip("/"),
            auth,
            float(setting("flag_timeout_s")) if timeout_s is None else timeout_s,
        )

    def describe(self) -> str:
        return f"Unleash at {self.url}"

    def _path(self, flag: str, rest: str = "") -> str:
        return f"/api/admin/projects/{self.project}/features/{flag}{rest}"

    def _missing(self, flag: str) -> str:
        return f"flag {flag} not found in project {self.project}"

    def _feature(self, flag: str) -> dict[str, Any]:
        return self.rest.request("GET", self._path(flag), idempotent=True, not_found=self._missing(flag))

    # -- reading -------------------------------------------------------------------------
    def read(self, flag: str) -> FlagState:
        feature = self._feature(flag)
        with answer_shape(self.describe(), f"flag {flag}"):
            return self._state(flag, feature)

    def _state(self, flag: str, feature: dict[str, Any]) -> FlagState:
        environments, variants = {}, {}
        for env in feature["environments"]:
            strategies = [s for s in env.get("strategies", []) if not s.get("disabled")]
            rollout = _rollout_strategy(strategies)
            for s in strategies:
                for v in s.get("variants") or []:
                    variants.setdefault(v["name"], (v.get("payload") or {}).get("value", v["name"]))
            environments[env["name"]] = EnvironmentState(
                name=env["name"],
                enabled=bool(env.get("enabled")),
                rollout_percentage=_percentage(rollout),
                variant=_served_variant(rollout or (strategies[0] if strategies else None)),
                has_strategy=bool(strategies),
            )
        return FlagState(
            key=flag,
            variants=variants or {"on": True, "off": False},
            environments=environments,
            value_type="string" if variants else "boolean",
        )

    # -- writing -------------------------------------------------------------------------
    def set_enabled(self, flag: str, environment: str, enabled: bool, *, comment: str = "") -> None:
        if enabled and not self.read(flag).environment(environment).has_strategy:
            raise UnsafeChange(
                f"flag {flag} has no strategy in {environment}: turning it on would make "
                "Unleash add a 100% rollout. Add a strategy in Unleash first."
            )
        self.rest.request(
            "POST",
            self._path(flag, f"/environments/{environment}/{'on' if enabled else 'off'}"),
            idempotent=True,
            not_found=self._missing(flag),
        )

    def set_rollout(
        self, flag: str, environment: str, percentage: float, variant: str, *, comment: str = ""
    ) -> None:
        percentage = validate_percentage(percentage)
        if not float(percentage).is_integer():
            raise InvalidValue(f"rollout {percentage} is not a whole percentage (Unleash)")
        strategy = self._strategy(
            flag, environment, lambda s: s["name"] == ROLLOUT_STRATEGY, f"a {ROLLOUT_STRATEGY} strategy"
        )
        strategy["parameters"] = {**strategy.get("parameters", {}), "rollout": str(int(percentage))}
        self._put_strategy(flag, environment, strategy)

    def set_variant(self, flag: str, environment: str, variant: str, *, comment: str = "") -> None:
        strategy = self._strategy(
            flag,
            environment,
            lambda s: any(v["name"] == variant for v in s.get("variants") or []),
            f"a strategy with variant {variant}",
        )
        strategy["variants"] = [
            {
                **v,
                "weight": 1000 if v["name"] == variant else 0,
                "weightType": "fix" if v["name"] == variant else "variable",
            }
            for v in strategy["variants"]
        ]
        if len(strategy["variants"]) == 1:
            strategy["variants"][0]["weightType"] = "variable"
        self._put_strategy(flag, environment, strategy)

    def _strategy(self, flag: str, environment: str, wanted, what: str) -> dict[str, Any]:
        feature = self._feature(flag)
        with answer_shape(self.describe(), f"flag {flag}"):
            return self._find_strategy(feature, flag, environment, wanted, what)

    def _find_strategy(
        self, feature: dict[str, Any], flag: str, environment: str, wanted, what: str
    ) -> dict[str, Any]:
        for env in feature["environments"]:
            if env["name"] != environment:
                continue
            for s in env.get("strategies", []):
                if not s.get("disabled") and wanted(s):
                    return s
            raise InvalidValue(f"flag {flag} has no {what} in {environment}")
        raise InvalidValue(f"flag {flag} has no environment {environment}")

    def _put_strategy(self, flag: str, environment: str, strategy: dict[str, Any]) -> None:
        body = {
            k: strategy[k]
            for k in (
                "name",
                "title",
                "disabled",
                "constraints",
                "parameters",
                "variants",
                "segments",
                "sortOrder",
            )
            if k in strategy
        }
        self.rest.request(
            "PUT",
            self._path(flag, f"/environments/{environment}/strategies/{strategy['id']}"),
            json=body,
            idempotent=True,
            not_found=self._missing(flag),
        )

    # -- history -------------------------------------------------------------------------
    def history(self, since: datetime | None = None) -> list[HistoryEntry]:
        params: dict[str, Any] = {"project": f"IS:{self.project}", "limit": 500}
        if since is not None:
            params["from"] = f"IS:{since.date().isoformat()}"
        entries = []
        for offset in range(0, 5000, 500):
            page = self.rest.request(
                "GET",
                "/api/admin/search/events",
                idempotent=True,
                params={**params, "offset": offset},
                not_found=f"Unleash at {self.url} has no event search",
            )
            with answer_shape(self.describe(), "the event search"):
                events = page.get("events", [])
                entries += [e for e in map(_history_entry, events) if e is not None]
            if len(events) < 500:
                break
        return [e for e in entries if since is None or e.timestamp >= since]


def _rollout_strategy(strategies: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((s for s in strategies if s.get("name") == ROLLOUT_STRATEGY), None)


def _percentage(strategy: dict[str, Any] | None) -> float | None:
    if strategy is None:
        return None
    value = float(strategy.get("parameters", {}).get("rollout", 100))
    return int(value) if value.is_integer() else value


def _served_variant(strategy: dict[str, Any] | None) -> str | None:
    variants = (strategy or {}).get("variants") or []
    if len(variants) == 1:
        return variants[0]["name"]
    full = [v for v in variants if v.get("weightType") == "fix" and v.get("weight") == 1000]
    return full[0]["name"] if full else None


def _history_entry(event: dict[str, Any]) -> HistoryEntry | None:
    change = EVENT_CHANGES.get(event.get("type", ""))
    if change is None or not event.get("featureName"):
        return None
    before = after = None
    if change == "strategy":
        change, before, after = _strategy_change(event.get("preData"), event.get("data"))
    elif change in ("enabled", "disabled"):
        before, after = ("off", "on") if change == "enabled" else ("on", "off")
    return HistoryEntry(
        timestamp=datetime.strptime(event["createdAt"][:19], "%Y-%m-%dT%H:%M:%S"),
        flag=event["featureName"],
        environment=event.get("environment"),
        change=change,
        before=before,
        after=after,
        author=event.get("createdBy"),
        description=event.get("label") or event.get("type"),
        entry_id=str(event["id"]),
    )


def _strategy_change(pre: Any, data: Any) -> tuple[str, str | None, str | None]:
    pre, data = pre or {}, data or {}
    old, new = _percentage(pre) if pre else None, _percentage(data) if data else None
    if old != new:
        return "rollout", _pct(old), _pct(new)
    old_v, new_v = _served_variant(pre), _served_variant(data)
    if old_v != new_v:
        return "variant", old_v, new_v
    return "strategy", None, json.dumps(data.get("parameters", {}), sort_keys=True)


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:g}%"
