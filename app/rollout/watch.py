"""`watch`: every interval, ingest new log files and guard every running canary.

A look ingests what is new in the folder (unchanged files are skipped), evaluates each
canary's guardrails with the always-valid sequential test and keeps the p-values, and when a
guardrail trips: with `apply`, sets the canary to 0% through the flag actions path (read
back and audited), opens an incident and sends the notification; without it, records what
it would have done. Each trip is acted on once per canary step. Too little data extends the
step; it never counts as a pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.detection.thresholds import Thresholds
from app.flags.base import FlagError
from app.ingest.pipeline import ingest_paths
from app.rollback import history
from app.rollout import ladder as rollout
from app.rollout.guardrails import find_arms
from app.storage.datadir import DataDir
from app.storage.store import Store
from app.timestamps import display, machine

log = logging.getLogger(__name__)


@dataclass
class WatchLook:
    at: datetime
    loaded: int = 0
    files_loaded: int = 0
    errors: list[str] = field(default_factory=list)
    statuses: list[rollout.LadderStatus] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)  # what the look hooks reported

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": machine(self.at),
            "loaded": self.loaded,
            "files_loaded": self.files_loaded,
            "errors": self.errors,
            "canaries": [
                {"feature": s.feature, "verdict": s.verdict, "reason": s.reason} for s in self.statuses
            ],
            "actions": self.actions,
            **self.extras,
        }

    def lines(self) -> list[str]:
        out = [
            f"{display(self.at, seconds=True)}: {self.loaded:,} requests loaded from "
            f"{self.files_loaded} new file(s)"
        ]
        out += [f"  error: {e}" for e in self.errors]
        out += [f"  {s.feature}: {s.verdict}: {s.reason}" for s in self.statuses]
        out += [f"  {a['kind']}: {a['summary']}" for a in self.actions]
        out += [
            f"  burn-rate alert: {a['feature']} {a['slo']} {a['rule']} since {a['start']} "
            f"({a['peak_burn_rate']}x)"
            for a in self.extras.get("burn_rate_alerts", [])
        ]
        out += [
            f"  alert sent to {s['channel']}: {s['outcome']} ({s['detail']})"
            for s in self.extras.get("alert_sends", [])
        ]
        return out


def canary_features(store: Store) -> list[str]:
    out = []
    for feature in store.features():
        _, newest = store.time_bounds(feature)
        if newest is not None and find_arms(store, feature, newest - rollout.LOOKBACK, newest)[1]:
            out.append(feature)
    return out


# A look hook runs after each look with the data directory and returns entries for the
# look's report; the commands layer passes them in (burn-rate alerts: app/review/alerting.py),
# so this room needs nothing of the rooms above it. A failing hook is reported, never raised.
LookHook = Callable[[Path], dict[str, Any]]


def look_once(
    data_dir: DataDir | Path, folder: str | Path, apply: bool, t: Thresholds, hooks: Sequence[LookHook] = ()
) -> WatchLook:
    """One look, on the data directory opened afresh (an edited flags.yaml is seen)."""
    data_dir = DataDir(data_dir)
    store = data_dir.store
    look = WatchLook(at=datetime.now(UTC).replace(tzinfo=None))
    if Path(folder).exists():
        result = ingest_paths(store, [str(folder)])
        look.loaded = result.loaded
        look.files_loaded = sum(1 for f in result.files if not f.skipped and f.error is None)
        look.errors = [f.error for f in result.files if f.error]
    else:
        look.errors.append(f"{folder}: no such folder")
    look.errors += _sync_flag_histories(data_dir)
    for feature in canary_features(store):
        status = rollout.ladder_status(store, feature, t)
        rollout.record_look(data_dir, status)
        look.statuses.append(status)
        if status.verdict == "rollback" and not _already_acted(data_dir, status, apply):
            look.actions.append(roll_back(data_dir, status, apply))
    for hook in hooks:
        try:
            look.extras.update(hook(data_dir.path))
        except Exception as exc:  # noqa: BLE001 - a hook must not stop the canary guard
            look.errors.append(f"{getattr(hook, '__name__', 'hook')}: {exc}")
    return look


def _sync_flag_histories(data_dir: Path) -> list[str]:
    """Fetch the flag systems' histories into the ledger (at most once a minute), so pages
    and post-mortems find them without calling a backend; failures are the look's errors."""
    try:
        status = history.sync_history(data_dir)
    except FlagError as exc:
        return [f"flag history: {exc.message}"]
    return [f"flag history of {name}: {line}" for name, line in status.items() if line.startswith("failed")]


def _already_acted(data_dir: Path, status: rollout.LadderStatus, apply: bool) -> bool:
    kind = "rollback" if apply else "would-rollback"
    canary = status.comparison.canary if status.comparison else None
    return any(
        a["kind"] == kind
        and a["canary"] == canary
        and a["started_at"] == (rollout._iso(status.started_at) if status.started_at else None)
        for a in rollout.actions_log(data_dir, status.feature)
    )


def _incident_title(status: rollout.LadderStatus) -> str:
    canary = status.comparison.canary if status.comparison else "canary"
    return f"{status.feature}: canary variant {canary} rolled back ({status.reason})"


def roll_back(data_dir: Path, status: rollout.LadderStatus, apply: bool) -> dict[str, Any]:
    """Set the canary to 0%, open an incident, notify; or record that it would have."""
    title = _incident_title(status)
    channels, notify_error = _channels(data_dir)
    plan = {
        "flag": f"{status.feature} rollout -> 0%",
        "incident": title,
        "notify": channels,
        "reason": status.reason,
    }
    if notify_error:
        plan["notify_error"] = notify_error
    if not apply:
        rollout.record_action(data_dir, status, "would-rollback", applied=False, detail=plan)
        return {
            "kind": "would-rollback",
            "feature": status.feature,
            "detail": plan,
            "summary": f"would set {status.feature} canary to 0%, open '{title}' and notify "
            f"{', '.join(plan['notify']) or notify_error or 'no channel (none configured)'}",
        }
    detail: dict[str, Any] = {"plan": plan}
    from app.rollback import actions

    result = actions.execute(
        data_dir,
        status.feature,
        "rollout",
        0,
        operator="rollback-desk watch",
        reason=f"guardrail tripped: {status.reason}",
    )
    detail["flag"] = result.cli_dict()
    detail["incident"] = _open_incident(data_dir, status, title, result.cli_dict())
    detail["notifications"] = _notify(data_dir, detail["incident"], status, result.message)
    rollout.record_action(data_dir, status, "rollback", applied=True, detail=detail)
    return {
        "kind": "rollback",
        "feature": status.feature,
        "detail": detail,
        "summary": f"{result.message}; incident {detail['incident'] or 'not opened'}",
    }


def _channels(data_dir: Path) -> tuple[list[str], str | None]:
    """The configured channels, and why there are none when notify.yaml is broken: a broken
    file must not stop a rollback, so it is named in the plan instead of raising."""
    from app.incidents.notify import NotifyConfigError, load_webhooks

    try:
        return sorted(load_webhooks(data_dir)), None
    except NotifyConfigError as exc:
        log.warning("watch: no channel to notify: %s", exc)
        return [], str(exc)


def _open_incident(
    data_dir: Path, status: rollout.LadderStatus, title: str, flag: dict[str, Any]
) -> str | None:
    from app.incidents.log import IncidentError, IncidentLog

    tripped = status.comparison.tripped if status.comparison else []
    try:
        incident = IncidentLog(data_dir).open(
            title,
            [status.feature],
            severity="SEV2",
            metric=tripped[0].metric if tripped else None,
            onset=status.started_at,
            finding={"guardrails": status.as_dict(), "flag": flag},
            source="watch",
            actor="rollback-desk watch",
        )
    except IncidentError as exc:  # the rollback stands even when filing the incident fails
        log.error("watch: could not open the incident for %s: %s", status.feature, exc)
        return None
    return incident.id


def _notify(
    data_dir: Path, incident_id: str | None, status: rollout.LadderStatus, flag_message: str
) -> list[dict[str, Any]]:
    if incident_id is None:
        return []
    from app.incidents import notify
    from app.incidents.log import IncidentError, IncidentLog

    # Recorded, never raised: the rollback is done.
    try:
        incident = IncidentLog(data_dir).get(incident_id)
        template = notify.load_templates()["internal-update"]
        channels = sorted(notify.load_webhooks(data_dir))
    except (IncidentError, notify.NotifyConfigError, KeyError) as exc:
        detail = f"no {exc} message template" if isinstance(exc, KeyError) else str(exc)
        log.error("watch: no notification for %s: %s", incident_id, detail)
        return [{"channel": None, "outcome": "failed", "detail": detail}]
    text = (
        f"Automatic rollback of the {status.feature} canary: {status.reason}. "
        f"Flag: {flag_message}. Incident {incident_id} is open."
    )
    sent = []
    for ch in channels:
        try:
            outcome = notify.send(data_dir, incident, ch, template, text, actor="rollback-desk watch").outcome
        except IncidentError as exc:  # sent or not, the send could not be put on record
            log.error("watch: message to %s not recorded on %s: %s", ch, incident_id, exc)
            sent.append({"channel": ch, "outcome": "unrecorded", "detail": str(exc)})
            continue
        sent.append({"channel": ch, "outcome": outcome})
    return sent


def watch(
    data_dir: Path,
    folder: str | Path,
    interval_s: float,
    apply: bool,
    once: bool,
    thresholds: Thresholds,
    on_look: Callable[[WatchLook], None],
    keep_going: Callable[[], bool] = lambda: True,
    hooks: Sequence[LookHook] = (),
) -> None:
    while True:
        on_look(look_once(data_dir, folder, apply, thresholds, hooks))
        if once or not keep_going():
            return
        time.sleep(interval_s)
