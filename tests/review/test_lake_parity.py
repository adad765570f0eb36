"""The review reads the same numbers in lake mode: the demo loaded embedded and as a lake
(both ship the same objectives and incident) gives the same review, week by week."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.demo.lake import load_lake_demo
from app.demo.setup import load_demo
from app.review.report import week_bounds, weekly_review
from app.storage.store import Store


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("review-pair")
    load_demo(base / "embedded")
    load_lake_demo(base / "lake")
    return base / "embedded", base / "lake"


def rounded(value, digits: int = 9):
    """Equal up to the order in which floating-point sums were added."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


@pytest.mark.parametrize("week", ["2026-W45", "2026-W47"])
def test_the_review_is_the_same_embedded_and_in_lake_mode(pair, week: str):
    embedded, lake = pair
    assert Store(lake).lake is not None
    a = weekly_review(Store(embedded), week_bounds(week)).as_dict()
    b = weekly_review(Store(lake), week_bounds(week)).as_dict()
    assert a["features"] and any(s["attainment"] is not None for f in a["features"] for s in f["slos"])
    assert a["incidents"] or a["still_open"]  # the demo's incident, its week or carried
    assert rounded(a) == rounded(b)
