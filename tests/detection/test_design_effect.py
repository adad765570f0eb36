"""The users' design effect: scores that are each user's own habit make a window's mean move
with who came; independent scores do not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from app.detection.detect import user_design_effect
from app.ingest.pipeline import ingest_paths
from app.storage.store import Store

from .adversarial import START, Logs, Traffic, build

USERS = 20


def _quiet_feature(folder: Path, habits: bool) -> Store:
    """Two days of a feature used by twenty people; each person's scores sit around their own
    level (habits) or all scores are drawn alike."""
    frame = build(Logs(START, 2, [Traffic("quiet", 3000)], seed=5))
    rng = np.random.default_rng(3)
    user = rng.integers(0, USERS, frame.height)
    level = rng.normal(0.0, 0.15, USERS)[user] if habits else 0.0
    noise = rng.normal(0.0, 0.01 if habits else 0.15, frame.height)
    frame = frame.with_columns(
        user_id=pl.Series([f"person-{u:02d}" for u in user]),
        quality_score=pl.when(pl.col("quality_score").is_not_null())
        .then(pl.Series(np.clip(0.7 + level + noise, 0.0, 1.0)))
        .otherwise(None),
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "requests.parquet"
    frame.write_parquet(path)
    store = Store(folder)
    assert ingest_paths(store, [str(path)]).ok
    return store


def test_scores_that_are_each_users_habit_widen_the_window_test(tmp_path: Path):
    store = _quiet_feature(tmp_path / "habits", habits=True)
    # about 600 scored requests a day from 20 people, each alike: the window's mean is worth
    # a few dozen independent scores, not hundreds
    effect = user_design_effect(store, "quiet", START, START + timedelta(days=1), START + timedelta(days=2))
    assert effect > 5


def test_independent_scores_leave_the_window_test_alone(tmp_path: Path):
    store = _quiet_feature(tmp_path / "alike", habits=False)
    effect = user_design_effect(store, "quiet", START, START + timedelta(days=1), START + timedelta(days=2))
    assert effect < 1.6
