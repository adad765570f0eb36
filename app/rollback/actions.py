"""The one path every rollback button and CLI command takes.

read the live state -> plan (before -> after) -> audit the intent -> call the backend ->
read back (short poll) -> audit the outcome -> a typed `ActionResult`.

Presses on the same flag are serialised by a lock file in the data directory, and the state
is read again under the lock: a double click, or two operators pressing the same button,
makes one change and the second press is recorded as "already so, no change made".
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.access.identity import Identity
from app.access.roles import AccessDenied, Permission, allowed
from app.changes import recorded
from app.flags.base import (
    ActionResult,
    Change,
    EnvironmentState,
    ErrorCode,
    FlagBackend,
    FlagError,
    FlagRole,
    FlagState,
    InvalidValue,
    NotAllowed,
    Outcome,
    validate_percentage,
)
from app.flags.config import FlagConfig, FlagRef, load_config
from app.flags.registry import backend_for_feature
from app.storage import trail

_LOG = logging.getLogger(__name__)

READBACK_S = 3.0
READBACK_INTERVAL_S = 0.2
# A match must still hold this long later: a change some other system reverts at once
# (a config-sync job rewriting the file) would never really be served.
READBACK_SETTLE_S = 0.3
# Errors after which the backend surely did not apply the change: no read-back needed.
NOT_APPLIED = {
    ErrorCode.UNREACHABLE,
    ErrorCode.UNAUTHORIZED,
    ErrorCode.FORBIDDEN,
    ErrorCode.NOT_FOUND,
    ErrorCode.INVALID_VALUE,
    ErrorCode.INVALID_CONFIG,
    ErrorCode.UNSAFE_CHANGE,
    ErrorCode.UNSUPPORTED,
}


class Action(StrEnum):
    KILL = "kill"
    RESUME = "resume"
    ROLLOUT = "rollout"
    PIN_MODEL = "pin-model"
    REVERT_PROMPT = "revert-prompt"
    PAUSE = "pause"
    RESUME_AGENT = "resume-agent"


ROLE_OF = {
    Action.KILL: FlagRole.KILL_SWITCH,
    Action.RESUME: FlagRole.KILL_SWITCH,
    Action.ROLLOUT: FlagRole.ROLLOUT,
    Action.PIN_MODEL: FlagRole.MODEL,
    Action.REVERT_PROMPT: FlagRole.PROMPT,
    Action.PAUSE: FlagRole.AGENT_PAUSE,
    Action.RESUME_AGENT: FlagRole.AGENT_PAUSE,
}

LABELS = {
    Action.KILL: "🛑 Kill switch (feature off)",
    Action.RESUME: "▶️ Resume feature",
    Action.ROLLOUT: "📉 Canary to 0%",
    Action.PIN_MODEL: "📌 Pin model version",
    Action.REVERT_PROMPT: "⏪ Revert prompt version",
    Action.PAUSE: "⏸️ Pause agent (dry-run)",
    Action.RESUME_AGENT: "▶️ Resume agent",
}


@dataclass(frozen=True)
class Plan:
    """An action made concrete against the live state, for the confirmation dialog."""

    action: Action
    feature: str
    flag: FlagRef
    backend: str
    location: str
    change: Change
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def description(self) -> str:
        role = self.flag.role
        return (
            f"{self.flag.key} in {self.flag.environment}: "
            f"{_show(self.before, role)} -> {_show(self.after, role)}"
        )


def plan(data_dir: Path, feature: str, action: Action | str, value: str | float | None = None) -> Plan:
    """Read the flag's live state and work out the change; raises FlagError."""
    action = Action(action)
    config = load_config(data_dir)
    feature_flags = config.feature(feature)
    ref = feature_flags.flag(ROLE_OF[action])
    backend = backend_for_feature(config, feature_flags)
    state = backend.read(ref.key)
    return _plan(action, feature, ref, backend, state, value)


def _plan(
    action: Action,
    feature: str,
    ref: FlagRef,
    backend: FlagBackend,
    state: FlagState,
    value: str | float | None,
) -> Plan:
    env = state.environment(ref.environment)
    change = _change_for(action, ref, state, env, value)
    before = _env_dict(env, ref)
    after = {**before, **change.as_dict()}
    return Plan(action, feature, ref, backend.name, backend.describe(), change, before, after)


def _change_for(action: Action, ref: FlagRef, state: FlagState, env: EnvironmentState, value: Any) -> Change:
    if action in (Action.KILL, Action.RESUME_AGENT):
        return Change(enabled=False)
    if action in (Action.RESUME, Action.PAUSE):
        return Change(enabled=True)
    if action is Action.ROLLOUT:
        return Change(rollout_percentage=validate_percentage(0 if value is None else value))
    variant = str(value) if value not in (None, "", "previous") else previous_variant(ref, state, env)
    if variant not in state.variants:
        known = ", ".join(state.variants)
        raise InvalidValue(f"flag {ref.key} has no variant {variant} (known: {known})")
    return Change(variant=variant)


def plan_variants(data_dir: Path, feature: str, action: Action | str) -> list[str]:
    """The variants an action can serve (for pickers)."""
    config = load_config(data_dir)
    feature_flags = config.feature(feature)
    ref = feature_flags.flag(ROLE_OF[Action(action)])
    return list(backend_for_feature(config, feature_flags).read(ref.key).variants)


def previous_variant(ref: FlagRef, state: FlagState, env: EnvironmentState) -> str:
    """The version before the one served. An alias missing from the version list follows
    the newest version, so its previous is the one before the newest."""
    versions = list(ref.versions) or list(state.variants)
    current = env.variant
    if current is None:
        raise InvalidValue(f"flag {ref.key} serves a split, not one version: name the version")
    if current in versions:
        index = versions.index(current)
        if index == 0:
            raise InvalidValue(f"flag {ref.key}: no version before {current}")
        return versions[index - 1]
    if len(versions) < 2:
        raise InvalidValue(f"flag {ref.key}: no previous version known for {current}")
    return versions[-2]


def execute(
    data_dir: Path,
    feature: str,
    action: Action | str,
    value: str | float | None = None,
    *,
    operator: str | None = None,
    reason: str | None = None,
    incident_id: str | None = None,
    actor: Identity | None = None,
) -> ActionResult:
    """Carry out one press end to end and return its result; never raises FlagError.

    With `actor` (the console always passes the signed-in or local identity; the CLI its
    user) the operator recorded is the actor, with its role, and a role that may not act is
    refused before anything is read: the refusal is on the audit trail like any press."""
    action = Action(action)
    action_id = trail.new_action_id()
    started = time.monotonic()
    if actor is not None:
        operator = actor.name
    base = dict(
        action=str(action),
        feature=feature,
        action_id=action_id,
        operator=operator,
        reason=reason,
        incident_id=incident_id,
        operator_role=str(actor.role) if actor is not None else None,
    )
    if actor is not None and not allowed(actor, Permission.FLAG_ACTION):
        refusal = NotAllowed(str(AccessDenied(actor, Permission.FLAG_ACTION)))
        result = _failed_early(base, refusal, started)
        _record_press(data_dir, result, str(ROLE_OF[action]), "")
        return result
    try:
        config = load_config(data_dir)
        feature_flags = config.feature(feature)
        ref = feature_flags.flag(ROLE_OF[action])
        backend = backend_for_feature(config, feature_flags)
    except FlagError as exc:
        result = _failed_early(base, exc, started)
        _record_press(data_dir, result, str(ROLE_OF[action]), "")  # refused presses too
        return result
    with _flag_lock(data_dir, feature_flags.backend, ref.key):
        try:
            the_plan = _plan(action, feature, ref, backend, backend.read(ref.key), value)
        except FlagError as exc:
            result = _failed_early(
                base, exc, started, flag=ref.key, env=ref.environment, backend=backend.name
            )
            _record_press(data_dir, result, str(ref.role), backend.describe())
            return result
        trail.record_intent(
            data_dir,
            action_id=action_id,
            feature=feature,
            action=str(action),
            role=str(ref.role),
            backend=backend.name,
            location=the_plan.location,
            flag=ref.key,
            environment=ref.environment,
            before=the_plan.before,
            after=the_plan.after,
            operator=operator,
            reason=reason,
            incident_id=incident_id,
            operator_role=base["operator_role"],
        )
        try:
            result = _apply(the_plan, backend, base, started)
        except Exception as exc:  # noqa: BLE001 - the intent is on record: so is the outcome
            # A fault nobody foresaw, after the write may have been sent: the press must not
            # stay "no outcome recorded", nor claim what it cannot see. The traceback goes
            # to the log; the read-back decides, as for an unreadable answer.
            _LOG.exception("action %s on %s ended in an unexpected error", action_id, ref.key)
            result = _after_unforeseen(the_plan, backend, base, started, exc)
        trail.record_outcome(data_dir, result, str(ref.role), the_plan.location)
    return result


def _apply(p: Plan, backend: FlagBackend, base: dict[str, Any], started: float) -> ActionResult:
    common = dict(
        base, flag=p.flag.key, environment=p.flag.environment, backend=backend.name, before=p.before
    )
    role, where = p.flag.role, f"in {p.flag.environment}"
    if _matches(p.before, p.change):
        return ActionResult(
            outcome=Outcome.VERIFIED,
            after=p.before,
            changed=False,
            message=f"{p.flag.key} already {_show(p.before, role)} {where}; no change made",
            latency_ms=_ms(started),
            **common,
        )
    comment = f"rollback-desk action {base['action_id']}" + (
        f": {base['reason']}" if base.get("reason") else ""
    )
    call_error: FlagError | None = None
    try:
        _call(backend, p, comment)
    except FlagError as exc:
        call_error = exc
        if exc.code in NOT_APPLIED:
            return ActionResult(
                outcome=Outcome.FAILED,
                after=p.before,
                message=exc.message,
                error_code=str(exc.code),
                latency_ms=_ms(started),
                **common,
            )
    # A timeout or an unreadable answer says nothing of whether the write landed: the
    # read-back decides, with the usual wait.
    timed_out = call_error is not None and call_error.code in (ErrorCode.TIMEOUT, ErrorCode.BAD_RESPONSE)
    try:
        seen = _read_back(backend, p, wait=call_error is None or timed_out)
    except FlagError as exc:
        text = (f"{call_error.message}; " if call_error else "change sent, ") + (
            f"but could not read it back ({exc.message}): check {p.flag.key} before retrying"
        )
        return ActionResult(
            outcome=Outcome.UNVERIFIED,
            after=p.after,
            message=text,
            error_code=str(exc.code),
            latency_ms=_ms(started),
            **common,
        )
    if _matches(seen, p.change):
        note = f" (after: {call_error.message})" if call_error else ""
        return ActionResult(
            outcome=Outcome.VERIFIED,
            after=seen,
            latency_ms=_ms(started),
            message=f"{p.flag.key} now {_show(seen, role)} {where}, read back "
            f"from {backend.describe()}{note}",
            **common,
        )
    if timed_out:
        return ActionResult(
            outcome=Outcome.UNVERIFIED,
            after=seen,
            error_code=str(call_error.code),
            message=f"{call_error.message} and the change is not visible: it may "
            f"still land, check {p.flag.key} before retrying",
            latency_ms=_ms(started),
            **common,
        )
    if call_error:
        return ActionResult(
            outcome=Outcome.FAILED,
            after=seen,
            message=call_error.message,
            error_code=str(call_error.code),
            latency_ms=_ms(started),
            **common,
        )
    return ActionResult(
        outcome=Outcome.UNVERIFIED,
        after=seen,
        error_code=str(ErrorCode.READBACK_MISMATCH),
        message=f"change sent, but {p.flag.key} reads back {_show(seen, role)} instead of "
        f"{_show(p.after, role)} {where}",
        latency_ms=_ms(started),
        **common,
    )


def _after_unforeseen(
    p: Plan, backend: FlagBackend, base: dict[str, Any], started: float, exc: Exception
) -> ActionResult:
    common = dict(
        base,
        flag=p.flag.key,
        environment=p.flag.environment,
        backend=backend.name,
        before=p.before,
        error_code=type(exc).__name__,
    )
    what = f"unexpected {type(exc).__name__} while changing {p.flag.key}"
    try:
        seen = _read_back(backend, p, wait=True)
    except Exception:  # noqa: BLE001 - nothing more is known: say so
        return ActionResult(
            outcome=Outcome.UNVERIFIED,
            after={},
            latency_ms=_ms(started),
            message=f"{what}, and its state could not be read back: check {p.flag.key} before retrying",
            **common,
        )
    role, where = p.flag.role, f"in {p.flag.environment}"
    if _matches(seen, p.change):
        return ActionResult(
            outcome=Outcome.VERIFIED,
            after=seen,
            latency_ms=_ms(started),
            message=f"{p.flag.key} now {_show(seen, role)} {where}, read back "
            f"from {backend.describe()} (after: {what})",
            **common,
        )
    return ActionResult(
        outcome=Outcome.UNVERIFIED,
        after=seen,
        latency_ms=_ms(started),
        message=f"{what}; it reads back {_show(seen, role)} {where}: check {p.flag.key} before retrying",
        **common,
    )


def _call(backend: FlagBackend, p: Plan, comment: str) -> None:
    c, ref = p.change, p.flag
    if c.enabled is not None:
        backend.set_enabled(ref.key, ref.environment, c.enabled, comment=comment)
    elif c.rollout_percentage is not None:
        backend.set_rollout(
            ref.key, ref.environment, c.rollout_percentage, ref.canary_variant or "", comment=comment
        )
    elif c.variant is not None:
        backend.set_variant(ref.key, ref.environment, c.variant, comment=comment)


def _read_back(backend: FlagBackend, p: Plan, *, wait: bool) -> dict[str, Any]:
    deadline = time.monotonic() + (READBACK_S if wait else 0)
    while True:
        seen = _env_dict(backend.read(p.flag.key).environment(p.flag.environment), p.flag)
        if _matches(seen, p.change):
            time.sleep(READBACK_SETTLE_S)
            return _env_dict(backend.read(p.flag.key).environment(p.flag.environment), p.flag)
        if time.monotonic() >= deadline:
            return seen
        time.sleep(READBACK_INTERVAL_S)


def _matches(state: dict[str, Any], change: Change) -> bool:
    if change.enabled is not None and state.get("enabled") != change.enabled:
        return False
    if change.rollout_percentage is not None:
        seen = state.get("rollout_percentage")
        if seen is None or abs(float(seen) - change.rollout_percentage) > 0.01:
            return False
    return change.variant is None or state.get("variant") == change.variant


def _env_dict(env: EnvironmentState, ref: FlagRef | None = None) -> dict[str, Any]:
    """enabled / rollout_percentage / variant; the percentage is the canary's share when
    the flag's configuration names the canary variant."""
    d = asdict(env)
    for internal in ("name", "has_strategy", "split"):
        d.pop(internal)
    if ref is not None and ref.canary_variant and env.split is not None:
        d["rollout_percentage"] = env.split.get(ref.canary_variant, 0)
    return d


def _show(state: dict[str, Any], role: str) -> str:
    return recorded.summary(state, role) or "unknown"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _failed_early(
    base: dict[str, Any], exc: FlagError, started: float, *, flag: str = "", env: str = "", backend: str = ""
) -> ActionResult:
    return ActionResult(
        outcome=Outcome.FAILED,
        flag=flag,
        environment=env,
        backend=backend,
        before={},
        after={},
        message=exc.message,
        error_code=str(exc.code),
        latency_ms=_ms(started),
        changed=False,
        **base,
    )


def _record_press(data_dir: Path, result: ActionResult, role: str, location: str) -> None:
    """A press refused or failed before any change (bad configuration, state unreadable) is
    still on record."""
    trail.record_intent(
        data_dir,
        action_id=result.action_id,
        feature=result.feature,
        action=result.action,
        role=role,
        backend=result.backend or "-",
        location=location,
        flag=result.flag or "-",
        environment=result.environment or "-",
        before={},
        after={},
        operator=result.operator,
        reason=result.reason,
        incident_id=result.incident_id,
        operator_role=result.operator_role,
    )
    trail.record_outcome(data_dir, result, role, location)


@contextlib.contextmanager
def _flag_lock(data_dir: Path, backend: str, flag: str) -> Iterator[None]:
    folder = Path(data_dir) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(f"{backend}\x1f{flag}".encode()).hexdigest()[:16]
    with open(folder / f"flag-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- status ---------------------------------------------------------------------------------
def status(data_dir: Path, feature: str | None = None) -> dict[str, Any]:
    """Live state of every configured flag: the `flags status --json` document."""
    config = load_config(data_dir)
    names = [feature] if feature else sorted(config.features)
    return {"features": [feature_status(config, name) for name in names]}


def feature_status(config: FlagConfig, name: str) -> dict[str, Any]:
    feature_flags = config.feature(name)
    backend = backend_for_feature(config, feature_flags)
    flags = []
    for role, ref in feature_flags.flags.items():
        row: dict[str, Any] = {
            "role": str(role),
            "key": ref.key,
            "environment": ref.environment,
            "enabled": None,
            "rollout_percentage": None,
            "variant": None,
        }
        try:
            env = backend.read(ref.key).environment(ref.environment)
            row.update(_env_dict(env, ref))
        except FlagError as exc:
            row["error"] = exc.message
        flags.append(row)
    return {"feature": name, "backend": backend.name, "flags": flags}


class NoRolloutFlag(LookupError):
    """The feature has no rollout flag in flags.yaml (or there is no flags.yaml)."""


def rollout_percentage(data_dir: Path, feature: str) -> float | None:
    """The percentage the feature's rollout flag serves now (None when the flag serves no
    percentage). Raises NoRolloutFlag when none is configured, and FlagError when flags.yaml
    is broken or the backend cannot be read: the caller decides, nothing is swallowed."""
    config = load_config(data_dir)
    feature_flags = config.features.get(feature)
    if feature_flags is None or FlagRole.ROLLOUT not in feature_flags.flags:
        raise NoRolloutFlag(feature)
    ref = feature_flags.flags[FlagRole.ROLLOUT]
    backend = backend_for_feature(config, feature_flags)
    percent = _env_dict(backend.read(ref.key).environment(ref.environment), ref).get("rollout_percentage")
    return None if percent is None else float(percent)


def available_actions(config: FlagConfig, feature: str) -> list[Action]:
    roles = set(config.feature(feature).flags)
    return [a for a in Action if ROLE_OF[a] in roles]
