"""A range cut into whole buckets and the partial buckets at its ends."""

from datetime import datetime, timedelta

from app.storage.spans import Spans, cut, edges_sql

HOUR = timedelta(hours=1)
T = datetime(2026, 3, 1)


def test_a_range_off_the_hour_has_a_partial_hour_at_each_end():
    got = cut(T + timedelta(minutes=30), T + timedelta(hours=3, minutes=10), HOUR)
    assert got == Spans(
        (T + HOUR, T + 3 * HOUR),
        ((T + timedelta(minutes=30), T + HOUR), (T + 3 * HOUR, T + timedelta(hours=3, minutes=10))),
    )


def test_a_range_on_the_hour_reads_no_requests():
    got = cut(T, T + 24 * HOUR, HOUR)
    assert got == Spans((T, T + 24 * HOUR), ())
    assert edges_sql([got]) == ("false", [])


def test_a_range_inside_one_bucket_is_all_edge():
    lo, hi = T + timedelta(minutes=5), T + timedelta(minutes=50)
    assert cut(lo, hi, HOUR) == Spans(None, ((lo, hi),))
    assert cut(hi, lo, HOUR) == Spans(None, ())


def test_before_1970_buckets_stay_whole():
    t = datetime(1969, 12, 31, 23, 30)
    assert cut(t, t + HOUR, HOUR) == Spans(None, ((t, t + HOUR),))
    assert cut(t, t + 2 * HOUR, HOUR) == Spans(
        (datetime(1970, 1, 1), datetime(1970, 1, 1, 1)),
        ((t, datetime(1970, 1, 1)), (datetime(1970, 1, 1, 1), t + 2 * HOUR)),
    )


def test_edges_sql_lists_every_edge_with_its_bounds():
    a = cut(T + timedelta(minutes=30), T + 2 * HOUR, HOUR)
    b = cut(T + 3 * HOUR, T + timedelta(hours=4, minutes=1), HOUR)
    where, params = edges_sql([a, b])
    assert where.count("timestamp >= ?") == 2
    assert params == [T + timedelta(minutes=30), T + HOUR, T + 4 * HOUR, T + timedelta(hours=4, minutes=1)]
