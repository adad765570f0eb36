"""The rollout ladder: where a feature's canary stands, and moving it up one step.

The ladder comes from the thresholds file (`rollout.steps`, default 1% -> 5% -> 20% -> 50% ->
100%, each with a minimum time and number of canary requests). Step state lives in the SQLite
ledger (`rollout_steps`); a canary the ledger has not seen yet is placed on the step matching
its flag's rollout percentage (or, without a flag, its observed share of requests). Times are
data times: the newest request of the feature is "now", as for `analyze`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.detection.thresholds import LadderStep, Thresholds
from app.flags.base import FlagError
from app.rollout.guardrails import VariantComparison, compare_variants, find_arms
from app.storage.datadir import DataDir
from app.storage.ledger import Ledger
from app.storage.store import Store
from app.timestamps import display, machine

LOOKBACK = timedelta(days=14)
DDL = (
    """CREATE TABLE IF NOT EXISTS rollout_steps (
        feature TEXT PRIMARY KEY, canary TEXT NOT NULL, step INTEGER NOT NULL,
        percent REAL NOT NULL, started_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS guardrail_looks (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, feature TEXT NOT NULL,
        canary TEXT NOT NULL, started_at TEXT NOT NULL, metric TEXT NOT NULL, p REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS guardrail_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, feature TEXT NOT NULL,
        canary TEXT, started_at TEXT, kind TEXT NOT NULL, applied INTEGER NOT NULL,
        detail TEXT NOT NULL)""",
)


def ledger(data_dir: DataDir | Path) -> Ledger:
    led = data_dir.ledger if isinstance(data_dir, DataDir) else Ledger(Path(data_dir))
    led.ensure_tables("rollout", DDL)
    return led


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class LadderStatus:
    feature: str
    verdict: str  # no-data | no-canary | rollback | extend | pass | complete
    reason: str
    step: int | None = None
    step_percent: float | None = None
    next_percent: float | None = None
    started_at: datetime | None = None
    hours_at_step: float = 0.0
    hours_needed: float = 0.0
    samples: int = 0
    samples_needed: int = 0
    comparison: VariantComparison | None = None
    serving_percent: float | None = None  # what the flag (or the traffic) serves now
    flag_error: str | None = None  # the rollout flag could not be read: why

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "verdict": self.verdict,
            "reason": self.reason,
            "step": self.step,
            "step_percent": self.step_percent,
            "serving_percent": self.serving_percent,
            "next_percent": self.next_percent,
            "started_at": machine(self.started_at),
            "hours_at_step": round(self.hours_at_step, 2),
            "hours_needed": self.hours_needed,
            "samples": self.samples,
            "samples_needed": self.samples_needed,
            "flag_error": self.flag_error,
            "comparison": self.comparison.as_dict() if self.comparison else None,
        }

    def summary(self) -> str:
        if self.step is None:
            return f"{self.feature}: {self.verdict}: {self.reason}"
        serving = (
            f" (serving {self.serving_percent:g}%)"
            if self.serving_percent is not None
            and abs(self.serving_percent - (self.step_percent or 0)) > 1e-6
            else ""
        )
        lines = [
            f"{self.feature}: step {self.step + 1} at {self.step_percent:g}%{serving} since "
            f"{display(self.started_at)}",
            f"  time at step {self.hours_at_step:.1f} h of {self.hours_needed:g} h; "
            f"canary requests {self.samples:,} of {self.samples_needed:,}",
        ]
        for g in self.comparison.guardrails if self.comparison else ():
            mark = "TRIPPED" if g.tripped else "ok"
            lines.append(
                f"  {g.metric}: control {g.control:.4g} canary {g.canary:.4g} "
                f"(always-valid p = {g.p_value:.2g}) {mark}"
            )
        if self.flag_error:
            lines.append(f"  rollout flag unreadable: {self.flag_error}")
        lines.append(f"  verdict: {self.verdict}: {self.reason}")
        return "\n".join(lines)


@dataclass(frozen=True)
class RolloutFlag:
    """What the flag system says about a feature's rollout flag."""

    configured: bool  # flags.yaml names a rollout flag for the feature
    percent: float | None = None  # what it serves now (None: not a percentage rollout)
    error: str | None = None  # why the flag could not be read: flags.yaml or the backend

    @property
    def readable(self) -> bool:
        return self.error is None


def rollout_flag(data_dir: Path, feature: str) -> RolloutFlag:
    """Read the feature's rollout flag. A missing flags.yaml, or one that names no rollout
    flag for the feature, is the normal "ladder state only" case; a broken flags.yaml or an
    unreadable backend is reported as an error, never taken for "no flag"."""
    from app.rollback import actions

    try:
        percent = actions.rollout_percentage(data_dir, feature)
    except actions.NoRolloutFlag:
        return RolloutFlag(configured=False)
    except FlagError as exc:
        return RolloutFlag(configured=True, error=exc.message)
    return RolloutFlag(configured=True, percent=percent)


def _step_for(ladder: tuple[LadderStep, ...], percent: float) -> int:
    index = 0
    for i, s in enumerate(ladder):
        if s.percent <= percent + 1e-9:
            index = i
    return index


def ladder_status(store: Store, feature: str, t: Thresholds) -> LadderStatus:
    _, newest = store.time_bounds(feature)
    if newest is None:
        return LadderStatus(feature, "no-data", "no requests loaded for this feature")
    now = newest + timedelta(microseconds=1)
    control, canary, first = find_arms(store, feature, now - LOOKBACK, now)
    if canary is None:
        return LadderStatus(feature, "no-canary", f"only one variant served ({control or 'none'})")
    led = ledger(store.data_dir)
    with led.connect() as con:
        row = con.execute(
            "SELECT * FROM rollout_steps WHERE feature = ? AND canary = ?", [feature, canary]
        ).fetchone()
    ladder = t.ladder
    flag = rollout_flag(store.data_dir, feature)
    percent = flag.percent
    if row is not None:
        step, started = int(row["step"]), datetime.fromisoformat(row["started_at"])
    else:
        if percent is None:
            share = (
                store.scalar(
                    "SELECT avg(CASE WHEN variant = ? THEN 1.0 ELSE 0.0 END) FROM requests "
                    "WHERE feature = ? AND timestamp >= ?",
                    [canary, feature, first],
                )
                or 0.0
            )
            percent = 100 * float(share)
        step, started = _step_for(ladder, percent), first
    with led.connect() as con:
        minima = {
            r["metric"]: r["p"]
            for r in con.execute(
                "SELECT metric, min(p) AS p FROM guardrail_looks WHERE feature = ? AND canary = ? "
                "AND started_at = ? GROUP BY metric",
                [feature, canary, _iso(started)],
            )
        }
    comparison = compare_variants(
        store, feature, now - LOOKBACK, now, t, canary_since=started, previous_p=minima
    )
    here = ladder[step]
    arm = comparison.arm(canary)
    samples = arm.requests if arm else 0
    hours = (now - started).total_seconds() / 3600.0
    nxt = ladder[step + 1].percent if step + 1 < len(ladder) else None
    base = dict(
        step=step,
        step_percent=here.percent,
        next_percent=nxt,
        started_at=started,
        hours_at_step=hours,
        hours_needed=here.min_hours,
        samples=samples,
        samples_needed=here.min_samples,
        comparison=comparison,
        serving_percent=percent,
        flag_error=flag.error,
    )
    tripped = comparison.tripped
    if tripped:
        names = ", ".join(f"{g.metric} (p = {g.p_value:.2g})" for g in tripped)
        return LadderStatus(feature, "rollback", f"guardrail tripped: {names}", **base)
    if nxt is None:
        return LadderStatus(feature, "complete", "the canary serves 100%", **base)
    short = []
    if samples < here.min_samples:
        short.append(f"{samples:,} of {here.min_samples:,} canary requests")
    if hours < here.min_hours:
        short.append(f"{hours:.1f} of {here.min_hours:g} hours")
    if short:
        return LadderStatus(
            feature, "extend", "not enough data yet: " + ", ".join(short) + "; the step is extended", **base
        )
    return LadderStatus(feature, "pass", f"guardrails hold with enough data; next step {nxt:g}%", **base)


@dataclass(frozen=True)
class AdvanceOutcome:
    advanced: bool
    message: str
    status: LadderStatus
    flag_result: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "advanced": self.advanced,
            "message": self.message,
            "status": self.status.as_dict(),
            "flag_result": self.flag_result,
        }


def advance(
    store: Store, feature: str, t: Thresholds, operator: str = "rollback-desk rollout"
) -> AdvanceOutcome:
    """Move the canary one step up the ladder, only when the guardrails pass with enough data.
    When flags.yaml names a rollout flag, the flag goes through the actions path (confirm,
    call, read back, audit) and the ladder moves only once the flag system confirms the new
    percentage. A broken flags.yaml or an unreachable backend refuses the step: the ladder
    stays where it was and the outcome says why."""
    status = ladder_status(store, feature, t)
    if status.verdict != "pass":
        return _refuse(store.data_dir, status, f"{status.verdict}: {status.reason}")
    assert status.step is not None and status.next_percent is not None
    flag = rollout_flag(store.data_dir, feature)
    if not flag.readable:
        return _refuse(store.data_dir, status, f"cannot read the rollout flag: {flag.error}")
    flag_result = None
    if flag.configured:
        from app.rollback import actions

        result = actions.execute(
            store.data_dir,
            feature,
            "rollout",
            status.next_percent,
            operator=operator,
            reason=f"rollout ladder: {status.reason}",
        )
        flag_result = result.cli_dict()
        if str(result.outcome) != "verified":
            return _refuse(
                store.data_dir, status, f"the flag change is {result.outcome}: {result.message}", flag_result
            )
    now = status.started_at + timedelta(hours=status.hours_at_step)
    canary = status.comparison.canary if status.comparison else ""
    with ledger(store.data_dir).connect() as con:
        con.execute(
            "INSERT OR REPLACE INTO rollout_steps VALUES (?, ?, ?, ?, ?, ?)",
            [feature, canary, status.step + 1, status.next_percent, _iso(now), _iso(datetime.now(UTC))],
        )
    record_action(
        store.data_dir,
        status,
        "advance",
        applied=True,
        detail={"to_percent": status.next_percent, "flag": flag_result},
    )
    where = "" if flag_result else " (no rollout flag configured: ladder state only)"
    return AdvanceOutcome(True, f"advanced {feature} to {status.next_percent:g}%{where}", status, flag_result)


def _refuse(
    data_dir: Path, status: LadderStatus, reason: str, flag_result: dict[str, Any] | None = None
) -> AdvanceOutcome:
    """Record a refused step (the ladder is not touched) and say why."""
    record_action(
        data_dir, status, "advance-refused", applied=False, detail={"reason": reason, "flag": flag_result}
    )
    return AdvanceOutcome(False, f"not advanced: {reason}", status, flag_result)


def record_action(
    data_dir: Path, status: LadderStatus, kind: str, applied: bool, detail: dict[str, Any]
) -> None:
    canary = status.comparison.canary if status.comparison else None
    started = _iso(status.started_at) if status.started_at else None
    with ledger(data_dir).connect() as con:
        con.execute(
            "INSERT INTO guardrail_actions (at, feature, canary, started_at, kind, applied, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                _iso(datetime.now(UTC)),
                status.feature,
                canary,
                started,
                kind,
                int(applied),
                json.dumps(detail, default=str),
            ],
        )


def record_look(data_dir: Path, status: LadderStatus) -> None:
    """Keep each look's always-valid p-values: the running minimum spans every look."""
    if not status.comparison or not status.started_at:
        return
    with ledger(data_dir).connect() as con:
        con.executemany(
            "INSERT INTO guardrail_looks (at, feature, canary, started_at, metric, p) VALUES "
            "(?, ?, ?, ?, ?, ?)",
            [
                [
                    _iso(datetime.now(UTC)),
                    status.feature,
                    status.comparison.canary,
                    _iso(status.started_at),
                    g.metric,
                    g.p_value,
                ]
                for g in status.comparison.guardrails
            ],
        )


def actions_log(data_dir: Path, feature: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    with ledger(data_dir).connect() as con:
        rows = con.execute(
            "SELECT * FROM guardrail_actions WHERE (? IS NULL OR feature = ?) ORDER BY id DESC LIMIT ?",
            [feature, feature, limit],
        ).fetchall()
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
