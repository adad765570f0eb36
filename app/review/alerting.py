"""Burn-rate alerts as they happen: evaluated on every `watch` look, each alert episode sent
once to the configured webhooks, and the features burning budget right now.

An episode is identified by feature, objective, rule and the moment it started firing (an
episode still firing since a previous look keeps the start recorded then, even when it has
grown longer than the stretch of data a look reads);
the sends are recorded in the ledger (`review_alerts_sent`), so a second look, a second
`watch` process or a restart never sends the same episode twice. A failed send is recorded
as failed and tried again at the next look.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.incidents import notify
from app.review.budget import Alert, iso_z, slo_status
from app.review.sli import count_events
from app.review.slos import SloConfig, load_slos
from app.storage.ledger import Ledger
from app.storage.store import Store
from app.timestamps import display, machine

DDL = (
    """CREATE TABLE IF NOT EXISTS review_alerts_sent (
            alert_key TEXT NOT NULL, channel TEXT NOT NULL, sent_at TEXT NOT NULL,
            outcome TEXT NOT NULL, detail TEXT, PRIMARY KEY (alert_key, channel))""",
    """CREATE TABLE IF NOT EXISTS review_alert_episodes (
            feature TEXT NOT NULL, slo TEXT NOT NULL, rule TEXT NOT NULL, start TEXT NOT NULL,
            last_seen TEXT NOT NULL, PRIMARY KEY (feature, slo, rule, start))""",
)


@dataclass(frozen=True)
class AlertSend:
    alert: Alert
    channel: str
    outcome: str  # sent | failed
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.alert.feature,
            "slo": self.alert.slo,
            "rule": self.alert.rule,
            "start": iso_z(self.alert.start),
            "channel": self.channel,
            "outcome": self.outcome,
            "detail": self.detail,
        }


LOOKBACK = timedelta(days=1)


def firing_now(store: Store, config: SloConfig | None = None, lookback: timedelta = LOOKBACK) -> list[Alert]:
    """Alerts firing at the newest data. Episodes are followed back up to `lookback`, so
    a long one keeps the start (and the identity) it had at its first look."""
    config = config or load_slos(store.data_dir)
    features = [f for f, s in config.features.items() if s.objectives]
    if not features:
        return []
    _, newest = store.time_bounds()
    if newest is None:
        return []
    until = newest + timedelta(microseconds=1)
    longest = max(r.long_min for r in config.alerts)
    series = count_events(store, config, until - timedelta(minutes=longest) - lookback, until, features)
    out = []
    for f in features:
        s = series[f]
        for o in config.features[f].objectives:
            # Only the burn rates matter here: the SLO window's attainment is the review's.
            status = slo_status(
                s, config.features[f], o, s.until, config.alerts, s.until - lookback, min_requests=1
            )
            out += [a for a in status.alerts if a.end >= s.until - timedelta(minutes=5)]
    return out


def _ledger(data_dir: Path) -> Ledger:
    led = Ledger(Path(data_dir))
    led.ensure_tables("review_alerts", DDL)
    return led


def already_sent(data_dir: Path) -> set[tuple[str, str]]:
    with _ledger(data_dir).connect() as con:
        return {
            (r[0], r[1])
            for r in con.execute("SELECT alert_key, channel FROM review_alerts_sent WHERE outcome = 'sent'")
        }


def alert_text(a: Alert) -> str:
    return (
        f"Burn-rate alert ({a.severity}) on {a.feature}: objective {a.slo} is burning its "
        f"error budget at {a.peak_burn_rate:.1f}× (rule {a.rule}: ≥ {a.threshold:g}× over "
        f"both windows) since {display(a.start)}."
    )


def send_alerts(data_dir: Path, alerts: list[Alert]) -> list[AlertSend]:
    """Send each alert episode not yet sent to every configured webhook; record each send."""
    if not alerts:
        return []
    try:
        hooks = notify.load_webhooks(data_dir)
    except notify.NotifyConfigError as exc:
        return [AlertSend(a, "", "failed", str(exc)) for a in alerts]
    done = already_sent(data_dir)
    sends = []
    for a in alerts:
        for name, hook in sorted(hooks.items()):
            if (a.key, name) in done:
                continue
            result = notify.post(hook, alert_text(a))
            sends.append(AlertSend(a, name, result.outcome, result.detail))
            with _ledger(data_dir).connect() as con:
                con.execute(
                    "INSERT OR REPLACE INTO review_alerts_sent VALUES (?, ?, ?, ?, ?)",
                    [a.key, name, machine(datetime.now(UTC)), result.outcome, result.detail],
                )
    return sends


def follow_episodes(data_dir: Path, alerts: list[Alert], visible_from: datetime | None = None) -> list[Alert]:
    """Give an alert still firing since an earlier look the start recorded then, and record
    when each episode was last seen firing. An alert that starts where the look's data
    starts (`visible_from`) began before it: it continues the last episode recorded."""
    out = []
    with _ledger(data_dir).connect() as con, con:
        for a in alerts:
            row = con.execute(
                """SELECT start, last_seen FROM review_alert_episodes
                   WHERE feature = ? AND slo = ? AND rule = ? ORDER BY last_seen DESC LIMIT 1""",
                [a.feature, a.slo, a.rule],
            ).fetchone()
            clipped = visible_from is not None and a.start <= visible_from + timedelta(minutes=10)
            if row and (clipped or a.start <= datetime.fromisoformat(row[1])):
                a = replace(a, start=datetime.fromisoformat(row[0]))
            con.execute(
                "INSERT OR REPLACE INTO review_alert_episodes VALUES (?, ?, ?, ?, ?)",
                [a.feature, a.slo, a.rule, a.start.isoformat(), a.end.isoformat()],
            )
            out.append(a)
    return out


def evaluate(data_dir: Path) -> tuple[list[Alert], list[AlertSend]]:
    """One look: the alerts firing now and the sends made for them."""
    store = Store(data_dir)
    alerts = firing_now(store)
    _, newest = store.time_bounds()
    if alerts:
        alerts = follow_episodes(data_dir, alerts, newest - LOOKBACK)
    return alerts, send_alerts(data_dir, alerts)


def watch_hook(data_dir: Path) -> dict[str, Any]:
    """The hook `watch` runs after each look: alerts firing and the sends made."""
    alerts, sends = evaluate(data_dir)
    return {
        "burn_rate_alerts": [a.as_dict() | {"feature": a.feature, "slo": a.slo} for a in alerts],
        "alert_sends": [s.as_dict() for s in sends],
    }
