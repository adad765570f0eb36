"""Triage on the demo week: each story's degradation lands in the right scope."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from app.incidents.impact import measure, triage, users_across
from app.storage.store import Store

END = datetime(2026, 11, 23)


@pytest.fixture(scope="module")
def store(demo_template: Path) -> Store:
    return Store(demo_template)


def test_the_canary_failure_is_partial_and_carried_by_the_canary_variant(store):
    scope = triage(store, "doc-summarizer", datetime(2026, 11, 21, 9), END)
    assert (scope.kind, scope.metric) == ("partial", "error_rate")
    assert (scope.dimension, scope.value) == ("variant", "canary")
    assert "model = claude-sonnet-4-5-20250929" in scope.same_requests_as
    canary = scope.slices["variant"][0]
    assert canary.value == "canary" and 0.05 < canary.request_share < 0.15 and canary.excess_share > 0.9
    assert canary.current > 0.08 and canary.baseline < 0.03  # the canary has no own baseline: the feature's


def test_one_noisy_client_is_a_single_user_scope(store):
    im = measure(store, "ticket-triage-agent", datetime(2026, 11, 22), END)
    assert (im.scope.kind, im.scope.value) == ("single_user", "u-04242")
    assert im.users == 1 and im.extra_errors > 50


def test_a_prompt_that_replaced_the_old_one_everywhere_is_total_and_names_the_new_version(store):
    scope = triage(store, "support-reply", datetime(2026, 11, 20, 14), END)
    assert (scope.kind, scope.metric) == ("total", "quality_score")
    assert scope.carried_by == ("prompt_version = v8",)
    assert scope.describe() == "total: the whole feature (now served by prompt_version = v8)"


def test_a_silent_provider_update_is_carried_by_the_new_response_model(store):
    im = measure(store, "search-answers", datetime(2026, 11, 19, 3), END)
    assert im.scope.kind == "total" and "response_model = gpt-4o-2024-11-20" in im.scope.carried_by
    assert -0.09 < im.quality_delta < -0.05


def test_a_clean_feature_shows_no_degradation(store):
    assert triage(store, "code-assistant", datetime(2026, 11, 18, 11), END).kind == "none"


def test_users_affected_in_two_features_count_once(store):
    # The demo's users use every feature: the canary's users and the prompt regression's
    # overlap, so their distinct count is less than the sum.
    canary = measure(store, "doc-summarizer", datetime(2026, 11, 21, 9), END)
    prompt = measure(store, "support-reply", datetime(2026, 11, 20, 14), END)
    logs = pl.concat(
        [
            store.query(
                "SELECT user_id FROM requests WHERE feature = 'doc-summarizer' "
                "AND variant = 'canary' AND timestamp >= ? AND timestamp < ?",
                [canary.onset, canary.end],
            ),
            store.query(
                "SELECT user_id FROM requests WHERE feature = 'support-reply' "
                "AND timestamp >= ? AND timestamp < ?",
                [prompt.onset, prompt.end],
            ),
        ]
    )
    assert (canary.scope.kind, prompt.scope.kind) == ("partial", "total")
    assert users_across(store, [canary, prompt]) == logs["user_id"].n_unique()
    assert logs["user_id"].n_unique() < canary.users + prompt.users
