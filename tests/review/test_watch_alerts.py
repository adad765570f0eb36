"""`watch` evaluates the burn-rate alerts on every look and sends each one once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.detection.thresholds import DEFAULTS
from app.review import alerting
from app.rollout import watch

from .receiver import SECRET_PATH, Receiver
from .stores import T0, load, per_bucket

SLOS = """features:
  f:
    window_days: 1
    objectives: [{name: availability, sli: success_rate, objective: 0.99}]
"""


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_an_alert_firing_now_is_sent_once_across_looks(data_dir: Path, tmp_path: Path, receiver):
    # The last hour fails 3 in 10 (30x): page-fast fires from 23:30 (see test_budget).
    load(data_dir, per_bucket(T0, 288, 10, bad={b: 3 for b in range(276, 288)}))
    (data_dir / "slos.yaml").write_text(SLOS)
    receiver.configure(data_dir)
    folder = tmp_path / "incoming"
    folder.mkdir()

    first = watch.look_once(data_dir, folder, False, DEFAULTS, hooks=[alerting.watch_hook])
    alerts = first.extras["burn_rate_alerts"]
    assert {(a["feature"], a["slo"], a["rule"]) for a in alerts} == {
        ("f", "availability", "page-fast"),
        ("f", "availability", "ticket"),
    }
    page = next(a for a in alerts if a["rule"] == "page-fast")
    assert page["start"] == "2026-01-01T23:30:00Z"
    assert [s["outcome"] for s in first.extras["alert_sends"]] == ["sent", "sent"]
    assert len(receiver.received) == 2
    text = next(r["text"] for r in receiver.received if "page-fast" in r["text"])
    assert "Burn-rate alert (page) on f: objective availability" in text
    assert any("burn-rate alert: f availability page-fast" in line for line in first.lines())

    second = watch.look_once(data_dir, folder, False, DEFAULTS, hooks=[alerting.watch_hook])
    assert len(second.extras["burn_rate_alerts"]) == 2  # still firing ...
    assert second.extras["alert_sends"] == []  # ... but already sent
    assert len(receiver.received) == 2
    assert SECRET_PATH not in str(first.as_dict()) + "\n".join(first.lines())


def test_no_alert_when_the_last_hour_is_healthy(data_dir: Path, tmp_path: Path, receiver):
    load(data_dir, per_bucket(T0, 288, 10, bad={100: 10}))
    (data_dir / "slos.yaml").write_text(SLOS)
    receiver.configure(data_dir)
    alerts, sends = alerting.evaluate(data_dir)
    assert alerts == [] and sends == [] and receiver.received == []


def test_a_broken_hook_is_reported_and_the_look_goes_on(data_dir: Path, tmp_path: Path):
    load(data_dir, per_bucket(T0, 12, 10))
    (data_dir / "slos.yaml").write_text("features: {f: {objectives: [{sli: nope}]}}\n")
    look = watch.look_once(data_dir, tmp_path, False, DEFAULTS, hooks=[alerting.watch_hook])
    assert any("watch_hook" in e and "sli" in e for e in look.errors)


def test_firing_now_follows_an_episode_back_to_its_start(data_dir: Path):
    # An episode longer than an hour keeps its start: the identity it is sent under.
    load(data_dir, per_bucket(T0, 288, 10, bad={b: 5 for b in range(240, 288)}))
    (data_dir / "slos.yaml").write_text(SLOS)
    from app.storage.store import Store

    [page] = [a for a in alerting.firing_now(Store(data_dir)) if a.rule == "page-fast"]
    # 5 of 10 fail from 20:00; the hour burns 5k/120/1% >= 14.4 from k = 4 (20:20).
    assert page.start == T0 + timedelta(hours=20, minutes=20)


def test_an_episode_longer_than_a_look_reads_is_not_sent_again(data_dir: Path, tmp_path: Path, receiver):
    load(data_dir, per_bucket(T0, 288, 10, bad={b: 3 for b in range(276, 288)}))
    (data_dir / "slos.yaml").write_text(SLOS)
    receiver.configure(data_dir)
    _, sends = alerting.evaluate(data_dir)
    assert len(sends) == 2
    # Two more days of the same failures: the episode now began before the stretch a look
    # reads, so the look sees it start later; it is still the episode already sent.
    load(
        data_dir,
        per_bucket(T0 + timedelta(days=1), 576, 10, bad={b: 3 for b in range(576)}),
        name="more.parquet",
    )
    alerts, sends = alerting.evaluate(data_dir)
    assert {a.rule for a in alerts} >= {"page-fast"}
    page = next(a for a in alerts if a.rule == "page-fast")
    assert page.start == T0 + timedelta(hours=23, minutes=30)
    # page-fast and ticket were sent at the first look; only page-slow (the 6 h window now
    # burns 30x) is new.
    assert [(s.alert.rule, s.outcome) for s in sends] == [("page-slow", "sent")]
    assert len(receiver.received) == 3
