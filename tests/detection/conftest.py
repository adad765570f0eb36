"""Fixtures: the story data set, loaded and analysed once for the package."""

from __future__ import annotations

import pytest

from app.storage.store import Store

from .stories import load, story_scenario


@pytest.fixture(scope="package")
def stories(tmp_path_factory: pytest.TempPathFactory) -> Store:
    scenario, events = story_scenario()
    return load(tmp_path_factory.mktemp("stories"), scenario, events)


@pytest.fixture(scope="package")
def story_result(stories: Store):
    from app.detection.analysis import analyze

    return analyze(stories)
