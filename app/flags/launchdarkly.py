"""LaunchDarkly through its REST API v2 with semantic patches.

Turn a flag on or off per environment (`turnFlagOn` / `turnFlagOff`), serve one variation
or a percentage rollout from the default rule (`updateFallthroughVariationOrRollout`), and
read the audit log (`/api/v2/auditlog`) as history. Rollout weights are thousandths of a
percent (100000 = 100%). The API token goes in the `Authorization` header as is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.config import setting
from app.flags.base import (
    EnvironmentState,
    FlagState,
    HistoryEntry,
    InvalidValue,
    validate_percentage,
)
from app.flags.config import Secret, redact_url
from app.flags.flagd_format import value_type
from app.flags.rest import RestClient, answer_shape, token_value

SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
FULL_WEIGHT = 100_000


class LaunchDarklyBackend:
    name = "launchdarkly"

    def __init__(
        self, url: str, token: Secret | None, project: str = "default", timeout_s: float | None = None
    ) -> None:
        self.url = redact_url(url.rstrip("/"))  # shown and stored: never a password
        self.project = project
        auth = {"Authorization": token_value(token, f"LaunchDarkly at {self.url}")}
        self.rest = RestClient(
            "LaunchDarkly",
            url.rstrip("/"),
            auth,
            float(setting("flag_timeout_s")) if timeout_s is None else timeout_s,
        )

    def describe(self) -> str:
        return f"LaunchDarkly at {self.url}"

    def _missing(self, flag: str) -> str:
        return f"flag {flag} not found in project {self.project}"

    def _flag(self, flag: str) -> dict[str, Any]:
        return self.rest.request(
            "GET", f"/api/v2/flags/{self.project}/{flag}", idempotent=True, not_found=self._missing(flag)
        )

    def read(self, flag: str) -> FlagState:
        doc = self._flag(flag)
        with answer_shape(self.describe(), f"flag {flag}"):
            return self._state(flag, doc)

    def _state(self, flag: str, doc: dict[str, Any]) -> FlagState:
        names = [_variation_name(v, i) for i, v in enumerate(doc["variations"])]
        environments = {}
        for key, env in doc["environments"].items():
            fallthrough = env.get("fallthrough") or {}
            split = None
            if "rollout" in fallthrough:
                split = {
                    names[w["variation"]]: w["weight"] / 1000
                    for w in fallthrough["rollout"].get("variations", [])
                }
            variant = names[fallthrough["variation"]] if "variation" in fallthrough else None
            first = next(iter(split.values())) if split else None
            environments[key] = EnvironmentState(
                name=key,
                enabled=bool(env.get("on")),
                variant=variant,
                split=split,
                rollout_percentage=None if first is None else _number(first),
            )
        variations = doc["variations"]
        return FlagState(
            key=flag,
            variants={n: v.get("value") for n, v in zip(names, variations, strict=True)},
            environments=environments,
            value_type=value_type(variations[0].get("value")) if variations else "boolean",
        )

    def set_enabled(self, flag: str, environment: str, enabled: bool, *, comment: str = "") -> None:
        self._patch(flag, environment, [{"kind": "turnFlagOn" if enabled else "turnFlagOff"}], comment)

    def set_rollout(
        self, flag: str, environment: str, percentage: float, variant: str, *, comment: str = ""
    ) -> None:
        percentage = validate_percentage(percentage)
        doc = self._flag(flag)
        with answer_shape(self.describe(), f"flag {flag}"):
            ids = _ids_by_name(doc)
        if variant not in ids:
            raise InvalidValue(f"flag {flag} has no variation {variant}")
        state = self.read(flag).environment(environment)
        others = [n for n in (state.split or {}) if n != variant]
        others += [
            n
            for n in ([state.variant] if state.variant else []) + list(ids)
            if n != variant and n not in others
        ]
        weight = round(percentage * 1000)
        self._patch(
            flag,
            environment,
            [
                {
                    "kind": "updateFallthroughVariationOrRollout",
                    "rolloutWeights": {ids[variant]: weight, ids[others[0]]: FULL_WEIGHT - weight},
                    "rolloutBucketBy": "key",
                }
            ],
            comment,
        )

    def set_variant(self, flag: str, environment: str, variant: str, *, comment: str = "") -> None:
        doc = self._flag(flag)
        with answer_shape(self.describe(), f"flag {flag}"):
            ids = _ids_by_name(doc)
        if variant not in ids:
            raise InvalidValue(f"flag {flag} has no variation {variant} (known: {', '.join(ids)})")
        self._patch(
            flag,
            environment,
            [{"kind": "updateFallthroughVariationOrRollout", "variationId": ids[variant]}],
            comment,
        )

    def _patch(self, flag: str, environment: str, instructions: list[dict[str, Any]], comment: str) -> None:
        # Every instruction used here sets an absolute state: safe to retry.
        self.rest.request(
            "PATCH",
            f"/api/v2/flags/{self.project}/{flag}",
            idempotent=True,
            json={"environmentKey": environment, "comment": comment, "instructions": instructions},
            headers={"Content-Type": SEMANTIC_PATCH},
            not_found=self._missing(flag),
        )

    def history(self, since: datetime | None = None) -> list[HistoryEntry]:
        params: dict[str, Any] = {"limit": 20, "spec": f"proj/{self.project}:env/*:flag/*"}
        if since is not None:
            params["after"] = int(since.replace(tzinfo=UTC).timestamp() * 1000)
        page = self.rest.request(
            "GET",
            "/api/v2/auditlog",
            params=params,
            idempotent=True,
            not_found=f"LaunchDarkly at {self.url} has no audit log",
        )
        with answer_shape(self.describe(), "the audit log"):
            return [_history_entry(item) for item in page.get("items", [])]


def _variation_name(variation: dict[str, Any], index: int) -> str:
    return str(variation.get("name") or variation.get("value", index))


def _ids_by_name(doc: dict[str, Any]) -> dict[str, str]:
    return {_variation_name(v, i): v["_id"] for i, v in enumerate(doc.get("variations", []))}


def _number(value: float) -> float:
    return int(value) if float(value).is_integer() else value


def _history_entry(item: dict[str, Any]) -> HistoryEntry:
    resource = ((item.get("target") or {}).get("resources") or [""])[0]
    parts = dict(p.split("/", 1) for p in resource.split(":") if "/" in p)
    return HistoryEntry(
        timestamp=datetime.fromtimestamp(item["date"] / 1000, UTC).replace(tzinfo=None),
        flag=parts.get("flag") or item.get("name", ""),
        environment=parts.get("env"),
        change=item.get("titleVerb") or "changed",
        before=None,
        after=None,
        author=(item.get("member") or {}).get("email"),
        description=item.get("comment") or item.get("description") or item.get("title"),
        entry_id=str(item["_id"]),
    )
