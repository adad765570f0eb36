"""Filters, facets and the request table on the known store."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.investigate import request_table
from app.investigate.facets import facets
from app.investigate.filters import Condition, Filter, FilterError, Scope, where_sql
from app.storage.store import Store

from .conftest import FEATURE, N_V7, N_V8

EXTRAS = ("prompt_text", "ticket_channel")


def count(store: Store, text: str) -> int:
    return request_table.count(store, Scope(FEATURE, filter=Filter.parse(text)), EXTRAS)


def test_filter_text_round_trips():
    text = "prompt_version=v7|v8,latency_ms>=1200,latency_ms<1300,error=(missing),ticket_channel=chat"
    f = Filter.parse(text)
    assert [c.op for c in f.conditions] == ["in", "ge", "lt", "missing", "eq"]
    assert f.text() == text
    assert Filter.parse("").conditions == ()
    assert f.with_condition(Condition("latency_ms", "ge", ("1000",))).text().count("latency_ms>=1000") == 1


def test_each_operator_selects_the_known_rows(known_template):
    store = Store(known_template)
    assert count(store, "") == N_V7 + N_V8
    assert count(store, "prompt_version=v8") == N_V8
    assert count(store, "prompt_version=v7|v8") == N_V7 + N_V8
    assert count(store, "error=(missing)") == N_V7 + N_V8 - 175
    assert count(store, "prompt_version=v7,latency_ms>=1000,latency_ms<1100") == 500
    assert count(store, "timestamp<2026-11-20T12:00:00Z,prompt_version=v7") == N_V7 // 2
    assert count(store, "ticket_channel=email") == N_V7 // 4 + N_V8 // 4
    assert count(store, "region=eu,ticket_channel=chat") == 250


def test_names_and_values_never_become_sql(known_template):
    store = Store(known_template)
    with pytest.raises(FilterError, match="not a request field"):
        count(store, 'model" = model OR "model=x')
    with pytest.raises(FilterError, match="not a request field"):
        count(store, "1=1")
    assert count(store, "model=x' OR '1'='1") == 0
    assert count(store, "ticket_channel=chat' OR 1=1 --") == 0
    sql, params = where_sql(Scope(FEATURE, filter=Filter.parse("region=eu' --")), EXTRAS)
    assert "eu" not in sql and "eu' --" in params


def test_facets_rank_the_values_that_carry_the_errors(known_template):
    store = Store(known_template)
    out = facets(store, Scope(FEATURE), "error_rate", dimensions=("prompt_version", "region"))
    assert out.total == N_V7 + N_V8
    overall = 175 / 3000
    versions = out.facet("prompt_version").values
    assert [v.value for v in versions] == ["v8", "v7"]
    v8 = versions[0]
    assert v8.requests == N_V8 and v8.error_rate == pytest.approx(0.125)
    # excess errors: 125 - 1000 * 175/3000
    assert v8.contribution == pytest.approx(125 - N_V8 * overall)
    assert versions[1].contribution == pytest.approx(-v8.contribution)
    assert {v.value for v in out.facet("region").values} == {"us", "eu"}


def test_facets_for_quality_and_extra_columns(known_template):
    store = Store(known_template)
    out = facets(
        store, Scope(FEATURE), "quality_score", dimensions=("prompt_version", "ticket_channel"), extras=EXTRAS
    )
    worst = out.facet("prompt_version").values[0]
    assert worst.value == "v8" and worst.contribution > 0
    assert sum(v.requests for v in out.facet("ticket_channel").values) == N_V7 + N_V8


def test_facets_follow_the_filter_and_mark_missing_values(known_template):
    store = Store(known_template)
    out = facets(
        store, Scope(FEATURE, filter=Filter.parse("prompt_version=v8")), "error_rate", dimensions=("error",)
    )
    values = {v.value: v.requests for v in out.facet("error").values}
    assert values == {"timeout": 125, "(missing)": N_V8 - 125}


def test_the_first_page_is_the_newest_and_pages_cover_the_scope(known_template):
    store = Store(known_template)
    scope = Scope(FEATURE, filter=Filter.parse("prompt_version=v8"))
    first = request_table.page(store, scope, limit=50, extras=EXTRAS)
    assert first.total == N_V8 and first.pages == 20 and len(first.rows) == 50
    times = [r["timestamp"] for r in first.rows]
    assert times == sorted(times, reverse=True)
    assert "extra.ticket_channel" in first.columns and "extra.prompt_text" in first.columns
    seen = set()
    for p in range(first.pages):
        seen |= {
            r["request_id"]
            for r in request_table.page(store, scope, offset=p * 50, limit=50, total=first.total).rows
        }
    assert len(seen) == N_V8


def test_worst_first_and_long_text(known_template):
    store = Store(known_template)
    page = request_table.page(store, Scope(FEATURE), limit=200, order="worst")
    assert all(r["error"] for r in page.rows[:175]) and not page.rows[175]["error"]
    text = page.rows[0]["extra.prompt_text"]
    assert len(text) > 500
    short = request_table.truncate(text)
    assert len(short) == request_table.TRUNCATE_AT and short.endswith("…")
    whole = request_table.request(store, FEATURE, page.rows[0]["request_id"])
    assert whole["extra.prompt_text"] == text


def test_a_time_range_narrows_the_scope(known_template):
    store = Store(known_template)
    scope = Scope(FEATURE, datetime(2026, 11, 20, 6), datetime(2026, 11, 20, 12))
    assert request_table.count(store, scope) == (N_V7 + N_V8) // 4


def test_not_equal_keeps_the_requests_without_a_value(known_template):
    store = Store(known_template)
    assert count(store, "region!=eu") == N_V7 + N_V8 // 2
    assert count(store, "error!=timeout") == N_V7 + N_V8 - 175  # no error: not a timeout
    assert count(store, "prompt_version!=v7|v8") == 0
    assert Filter.parse("region!=eu,error!=a|b").text() == "region!=eu,error!=a|b"


def test_facet_p95_is_within_one_percent_and_users_are_exact(known_template):
    import duckdb

    store = Store(known_template)
    out = facets(store, Scope(FEATURE), "latency_p95_ms", dimensions=("prompt_version", "user_id"))
    con = duckdb.connect(str(known_template / "rollback.duckdb"), read_only=True)
    exact = dict(
        con.execute(
            "SELECT prompt_version, quantile_cont(latency_ms, 0.95) FROM requests GROUP BY 1"
        ).fetchall()
    )
    whole = con.execute("SELECT quantile_cont(latency_ms, 0.95) FROM requests").fetchone()[0]
    con.close()
    for v in out.facet("prompt_version").values:
        assert v.latency_p95_ms == pytest.approx(exact[v.value], rel=0.01)
    assert out.overall.latency_p95_ms == pytest.approx(whole, rel=0.01)
    # v8 is the slower arm, so it leads the latency ranking
    assert out.facet("prompt_version").values[0].value == "v8"
    # the known store has no users: one "(missing)" value, with the exact p95 of all
    (users,) = out.facet("user_id").values
    assert users.value == "(missing)" and users.latency_p95_ms == pytest.approx(whole)
