"""What changed? Scope slices and suspect ranking for a detected degradation.

Both work on one per-request quantity `x` whose mean moves with the metric (app/detect.py
`measure`), so the degradation splits additively over requests: the *excess* of a set of
requests is how far its x sum lies from the feature baseline, in the bad direction.

- Scope: the smallest slice (one dimension, up to three values) carrying at least
  `scope.coverage` of the excess with at most `scope.max_share` of the requests is `partial`,
  or `single_user` when it is one user; otherwise the degradation is `total`.
- Suspects: each change touches a set of requests from its time on (the new prompt version,
  the canary variant, the new response model, or everything for a config change). Its score is
  coverage (share of the excess inside the touched requests since onset) x purity (how
  degraded the touched requests are against the degraded population) x timing weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import polars as pl

from app import stats
from app.changes.events import ChangeEvent
from app.detection.detect import Detection, measure
from app.detection.findings import Scope, Slice, Suspect, format_value
from app.detection.hourly import frame_query
from app.detection.scope import SliceExcess, choose_scope
from app.detection.thresholds import METRIC_DIRECTION, Thresholds
from app.storage.schema import SPLIT_DIMENSIONS
from app.storage.store import Store

MIN_SLICE_N = 20
NEW_VALUE_WINDOW = (timedelta(minutes=-5), timedelta(hours=2))
SOURCE_ORDER = {"declared": 0, "flag-audit": 1, "rollback-desk": 2, "inferred": 3}


@dataclass(frozen=True)
class Context:
    """The shared numbers of one finding."""

    det: Detection
    onset: datetime
    until: datetime
    range_start: datetime
    base_mean: float  # mean of x before the onset
    base_var: float  # variance of x before the onset
    onset_lo: datetime  # the onsets the data cannot tell apart from `onset`
    onset_hi: datetime
    excess: float  # total excess since onset (bad direction positive)
    cur_requests: int
    cur_mean: float


def slice_table(
    store: Store, det: Detection, onset: datetime, range_start: datetime, until: datetime
) -> pl.DataFrame:
    """Per period (base, cur, after) and per value of every split dimension: requests, count
    and sum of x, first time seen, and (for latency) the p95."""
    return slice_tables(store, [det], onset, range_start, until)[0]


def slice_tables(
    store: Store, dets: list[Detection], onset: datetime, range_start: datetime, until: datetime
) -> list[pl.DataFrame]:
    """`slice_table` of several detections of one feature that share the onset and the end
    (two metrics that broke together), from one scan of the feature's rows."""
    det = dets[0]
    assert all((d.feature, d.end) == (det.feature, det.end) for d in dets)
    measures = [measure(d.metric, d.baseline) for d in dets]
    dims = ", ".join(SPLIT_DIMENSIONS)
    # Users are read from the onset on only: the baseline's thousands of users would make the
    # scan several times slower, and a user's scope is judged on the degraded period.
    inner = ", ".join(
        "CASE WHEN timestamp >= ? THEN user_id END AS user_id" if d == "user_id" else d
        for d in SPLIT_DIMENSIONS
    )
    xs = ", ".join(f"{expr} AS x{i}" for i, (expr, _) in enumerate(measures))
    sums = ", ".join(
        f"count(x{i}) AS n{i}, CAST(sum(x{i}) AS DOUBLE) AS s{i}, CAST(sum(x{i} * x{i}) AS DOUBLE) AS ss{i}"
        for i in range(len(dets))
    )
    sets = ", ".join(["(period)"] + [f"(period, {d})" for d in SPLIT_DIMENSIONS])
    latency = any(d.metric == "latency_p95_ms" for d in dets)
    p95 = ", quantile_cont(latency_ms, 0.95) FILTER (WHERE error IS NULL) AS p95" if latency else ""
    df = frame_query(
        store,
        f"""SELECT period, {dims}, GROUPING({dims}) AS g, count(*) AS requests, {sums},
                   min(timestamp) AS first_seen, count(error) AS failed{p95}
            FROM (SELECT timestamp, latency_ms, error, {inner}, {xs},
                         CASE WHEN timestamp < ? THEN 'base' WHEN timestamp < ? THEN 'cur'
                              ELSE 'after' END AS period
                  FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?)
            GROUP BY GROUPING SETS ({sets})""",
        [onset, *[p for _, params in measures for p in params], onset, det.end, det.feature]
        + [range_start, until],
    )
    k = len(SPLIT_DIMENSIONS)
    codes = {(2**k - 1) - 2 ** (k - 1 - i): d for i, d in enumerate(SPLIT_DIMENSIONS)}
    codes[2**k - 1] = "(all)"
    # Columnar: the grouping code names the dimension, the value is that dimension's column.
    dim = pl.col("g").cast(pl.Int64).replace_strict(codes, default=None, return_dtype=pl.Utf8)
    value = pl.when(pl.col("dimension") == "(all)").then(pl.lit("(all)"))
    for d in SPLIT_DIMENSIONS:
        value = value.when(pl.col("dimension") == d).then(pl.col(d).cast(pl.Utf8))
    rows = (
        df.with_columns(dimension=dim)
        .filter(pl.col("dimension").is_not_null())
        .filter(~((pl.col("dimension") == "user_id") & (pl.col("period") == "base")))
        .with_columns(value.otherwise(None).fill_null("(none)").alias("value"))
    )
    tables = []
    for i, d in enumerate(dets):
        p = pl.col("p95").cast(pl.Float64) if d.metric == "latency_p95_ms" else pl.lit(None, pl.Float64)
        tables.append(
            rows.select(
                pl.col("period").cast(pl.Utf8),
                pl.col("dimension"),
                pl.col("value"),
                pl.col("requests").cast(pl.Int64),
                pl.col(f"n{i}").fill_null(0).cast(pl.Int64).alias("n"),
                pl.col(f"s{i}").cast(pl.Float64).fill_null(0.0).alias("s"),
                pl.col(f"ss{i}").cast(pl.Float64).fill_null(0.0).alias("ss"),
                pl.col("first_seen").cast(pl.Datetime("us")),
                pl.col("failed").fill_null(0).cast(pl.Int64),
                p.alias("p95"),
            )
        )
    return tables


def context(
    det: Detection, onset: datetime, range_start: datetime, until: datetime, table: pl.DataFrame
) -> Context | None:
    def total(period: str) -> dict | None:
        rows = table.filter((pl.col("dimension") == "(all)") & (pl.col("period") == period))
        return rows.row(0, named=True) if rows.height else None

    base, cur = total("base"), total("cur")
    if not base or not cur or not base["n"] or not cur["n"]:
        return None
    direction = METRIC_DIRECTION[det.metric]
    mu0 = base["s"] / base["n"]
    excess = direction * (cur["s"] - cur["n"] * mu0)
    var0 = max(base["ss"] / base["n"] - mu0 * mu0, 1e-12)
    return Context(
        det, onset, until, range_start, mu0, var0, onset, onset, excess, cur["requests"], cur["s"] / cur["n"]
    )


def new_slice_onset(ctx: Context, scope: Scope, table: pl.DataFrame) -> datetime | None:
    """When the degradation sits in requests that did not exist before (a canary variant, a new
    user), it began with the first of them, provided their requests before the detected onset
    were already significantly worse than the baseline, or too few to say they were any
    better than after it (one-sided z tests, 5%): a canary started at night is degraded from
    its first request even if the night's dozen requests cannot show it."""
    if scope.kind == "total" or not scope.slices:
        return None
    dim = scope.slices[0].dimension
    if dim == "user_id":  # users are read from the onset on (slice_table): the change point decides
        return None
    values = [s.value for s in scope.slices if s.dimension == dim]
    rows = table.filter((pl.col("dimension") == dim) & pl.col("value").is_in(values))
    everything = table.filter(pl.col("dimension") == "(all)")["first_seen"].min()
    first = rows["first_seen"].min()
    if first is None or everything is None or first <= everything + timedelta(hours=1):
        return None
    if first >= ctx.onset:  # they carry the degradation, so it cannot have begun before them
        return first.replace(second=0, microsecond=0)
    pre = rows.filter(pl.col("period") == "base")
    n, s = pre["n"].sum(), pre["s"].sum()
    if not n:
        return None
    direction = METRIC_DIRECTION[ctx.det.metric]
    if direction * stats.excess_z(s, n, ctx.base_mean, ctx.base_var) > stats.Z90:
        return first.replace(second=0, microsecond=0)
    cur = rows.filter(pl.col("period") == "cur")
    n_c, s_c, ss_c = cur["n"].sum(), cur["s"].sum(), cur["ss"].sum()
    if not n_c:
        return None
    mean_c = s_c / n_c
    var_c = max(ss_c / n_c - mean_c * mean_c, 1e-12)
    if ctx.det.metric in ("error_rate", "negative_feedback_rate"):  # a few events: exact tails
        p_better = stats.exact_binomial(s, n, mean_c).p_less
        return first.replace(second=0, microsecond=0) if p_better > 0.05 else None
    better = direction * stats.excess_z(n * mean_c - s, n, 0.0, var_c)  # pre below the degraded level
    return first.replace(second=0, microsecond=0) if better < stats.Z90 else None


# Scope ---------------------------------------------------------------------------------------


def slice_excesses(ctx: Context, table: pl.DataFrame) -> list[SliceExcess]:
    """Every value of every split dimension since the onset, with its excess over the
    feature's baseline and the share of its requests (over the whole range) that failed."""
    direction = METRIC_DIRECTION[ctx.det.metric]
    sliced = table.filter(pl.col("dimension") != "(all)")
    failed = sliced.group_by("dimension", "value").agg(
        (pl.col("failed").sum() / pl.col("requests").sum()).alias("failed_share")
    )
    cur = sliced.filter((pl.col("period") == "cur") & (pl.col("n") >= MIN_SLICE_N)).join(
        failed, on=["dimension", "value"], how="left"
    )
    return [
        SliceExcess(
            r["dimension"],
            r["value"],
            r["requests"],
            direction * (r["s"] - r["n"] * ctx.base_mean),
            r["failed_share"] or 0.0,
        )
        for r in cur.iter_rows(named=True)
    ]


def classify_scope(ctx: Context, table: pl.DataFrame, t: Thresholds) -> Scope:
    choice = choose_scope(
        slice_excesses(ctx, table), ctx.excess, ctx.cur_requests, t.scope_coverage, t.scope_max_share
    )
    if choice.kind == "total":
        return Scope("total")
    slices = [
        _slice(ctx, table, r.dimension, r.value, r.requests) for r in (*choice.picks, *choice.same_requests)
    ]
    return Scope(choice.kind, tuple(slices), coverage=choice.coverage)


def focus(ctx: Context, table: pl.DataFrame, dim: str, value: str) -> tuple[Context, Scope] | None:
    """A degradation found in one slice only: the slice is the scope, and its excess (not the
    feature's, which the rest's noise can hide) is what suspects must explain."""
    rows = table.filter(
        (pl.col("period") == "cur") & (pl.col("dimension") == dim) & (pl.col("value") == value)
    )
    if not rows.height or not rows["n"][0]:
        return None
    r = rows.row(0, named=True)
    excess = METRIC_DIRECTION[ctx.det.metric] * (r["s"] - r["n"] * ctx.base_mean)
    if excess <= 0:
        return None
    kind = "single_user" if dim == "user_id" else "partial"
    return (
        replace(ctx, excess=excess),
        Scope(kind, (_slice(ctx, table, dim, value, r["requests"]),), coverage=1.0),
    )


def _slice(ctx: Context, table: pl.DataFrame, dim: str, value: str, requests: int) -> Slice:
    metric = ctx.det.metric
    base = table.filter(
        (pl.col("period") == "base") & (pl.col("dimension") == dim) & (pl.col("value") == value)
    )
    cur = table.filter(
        (pl.col("period") == "cur") & (pl.col("dimension") == dim) & (pl.col("value") == value)
    )
    cur_row = cur.row(0, named=True)
    own = base.row(0, named=True) if base.height and base["n"][0] >= MIN_SLICE_N else None
    if metric == "latency_p95_ms":
        baseline = own["p95"] if own else ctx.det.baseline
        current = cur_row["p95"]
    else:
        baseline = own["s"] / own["n"] if own else ctx.det.baseline
        current = cur_row["s"] / cur_row["n"] if cur_row["n"] else None
    return Slice(dim, value, requests / ctx.cur_requests, baseline, current)


# Suspects -------------------------------------------------------------------------------------


def touched(change: ChangeEvent, table: pl.DataFrame) -> tuple[list[tuple[str, str]], str]:
    """The request values a change touched, and how they were found: direct (the change names
    them), new (values first seen as the change happened), or all (every request from then)."""
    values = table.select("dimension", "value").unique()
    known = {(r[0], r[1]) for r in values.iter_rows()}
    to = change.to_value
    if to is not None:
        if change.silent_update and ("response_model", to) in known:
            return [("response_model", to)], "direct"
        if change.key in SPLIT_DIMENSIONS and (change.key, to) in known:
            return [(change.key, to)], "direct"
        direct = [(d, to) for d in SPLIT_DIMENSIONS if d != "user_id" and (d, to) in known]
        if direct:
            return direct, "direct"
    if change.kind == "config":  # settings do not create new request values
        return [], "all"
    first = table.filter(pl.col("dimension").is_in([d for d in SPLIT_DIMENSIONS if d != "user_id"]))
    first = first.group_by("dimension", "value").agg(pl.col("first_seen").min())
    lo, hi = change.timestamp + NEW_VALUE_WINDOW[0], change.timestamp + NEW_VALUE_WINDOW[1]
    new = first.filter(
        (pl.col("first_seen") >= lo)
        & (pl.col("first_seen") <= hi)
        & (pl.col("first_seen") > first["first_seen"].min() + timedelta(hours=1))
    )
    if new.height:
        return sorted((r[0], r[1]) for r in new.select("dimension", "value").iter_rows()), "new"
    return [], "all"


def timing_weight(onset: datetime, changed: datetime, band: tuple[datetime, datetime] | None = None) -> float:
    """1 for a change at the onset; decays over a day for earlier changes and within the hour
    for changes after the onset (a change cannot cause what came before it). When the data
    cannot pin the onset down (`band`: the onsets it cannot tell apart), the grace widens."""
    lo, hi = band or (onset, onset)
    early_grace = max(0.5, (onset - lo).total_seconds() / 3600.0)
    late_grace = max(5 / 60, (hi - onset).total_seconds() / 3600.0)
    lead_h = (onset - changed).total_seconds() / 3600.0
    if lead_h >= -late_grace:
        return math.exp(-max(0.0, lead_h - early_grace) / 24.0)
    return math.exp(-(-lead_h - late_grace) / 1.0)


def rank_suspects(
    store: Store,
    ctx: Context,
    scope: Scope,
    table: pl.DataFrame,
    candidates: list[ChangeEvent],
    t: Thresholds,
) -> list[Suspect]:
    candidates = [c for c in candidates if ctx.range_start <= c.timestamp < ctx.det.end]
    if not candidates or ctx.excess <= 0:
        return []
    direction = METRIC_DIRECTION[ctx.det.metric]
    deg_scope = _scope_degradation(ctx, scope, table)
    touched_sets = [touched(c, table) for c in candidates]
    sums = _touched_sums(store, ctx, candidates, [ts[0] for ts in touched_sets])
    out = []
    for change, (pairs, how), (n_cur, s_cur, n_all, s_all, req_cur) in zip(
        candidates, touched_sets, sums, strict=True
    ):
        if not n_all:
            continue
        coverage = _clip(direction * (s_cur - n_cur * ctx.base_mean) / ctx.excess)
        deg_t = direction * (s_all / n_all - ctx.base_mean)
        purity = _clip(deg_t / deg_scope) if deg_scope > 0 else 0.0
        timing = timing_weight(ctx.onset, change.timestamp, (ctx.onset_lo, ctx.onset_hi))
        specificity = 0.8 if how == "new" and change.kind != "flag" else 1.0
        score = coverage * purity * (0.5 + 0.5 * timing) * specificity
        if score < t.suspect_min_score:
            continue
        evidence = _evidence(ctx, change, pairs, how, req_cur, coverage, s_all / n_all)
        out.append(
            (Suspect(change, score, evidence, timing=timing, coverage=coverage, purity=purity), how == "all")
        )
    # Equal scores: a change that names the requests it touched, then the declared record,
    # then the change nearest the onset.
    out.sort(
        key=lambda o: (
            -round(o[0].score, 2),
            o[1],
            SOURCE_ORDER.get(o[0].change.source, 9),
            abs((o[0].change.timestamp - ctx.onset).total_seconds()),
        )
    )
    return [o[0] for o in out[:5]]


def _clip(x: float) -> float:
    return 0.0 if not math.isfinite(x) else min(max(x, 0.0), 1.0)


def _scope_degradation(ctx: Context, scope: Scope, table: pl.DataFrame) -> float:
    """How degraded the degraded population is: the scope's slices, or the whole feature."""
    direction = METRIC_DIRECTION[ctx.det.metric]
    if scope.kind == "total" or not scope.slices:
        return direction * (ctx.cur_mean - ctx.base_mean)
    first_dim = scope.slices[0].dimension
    values = [s.value for s in scope.slices if s.dimension == first_dim]
    rows = table.filter(
        (pl.col("period") == "cur") & (pl.col("dimension") == first_dim) & pl.col("value").is_in(values)
    )
    n, s = rows["n"].sum(), rows["s"].sum()
    return direction * (s / n - ctx.base_mean) if n else 0.0


def _touched_sums(
    store: Store, ctx: Context, changes: list[ChangeEvent], pairs: list[list[tuple[str, str]]]
) -> list[tuple[int, float, int, float, int]]:
    """For every change, in one scan: count and sum of x over its touched requests since the
    onset, over all its touched requests from its time on, and the touched requests since onset."""
    expr, params = measure(ctx.det.metric, ctx.det.baseline)
    selects: list[str] = []
    sel_params: list = []
    for change, pp in zip(changes, pairs, strict=True):
        pred, pred_params = ["timestamp >= ?"], [change.timestamp]
        if pp:
            ors = " OR ".join(f"{d} = ?" for d, _ in pp)
            pred.append(f"({ors})")
            pred_params += [v for _, v in pp]
        cond = " AND ".join(pred)
        cur = f"{cond} AND timestamp >= ? AND timestamp < ?"
        cur_params = [*pred_params, ctx.onset, ctx.det.end]
        selects += [
            f"count(x) FILTER (WHERE {cur})",
            f"sum(x) FILTER (WHERE {cur})",
            f"count(x) FILTER (WHERE {cond})",
            f"sum(x) FILTER (WHERE {cond})",
            f"count(*) FILTER (WHERE {cur})",
        ]
        sel_params += [*cur_params, *cur_params, *pred_params, *pred_params, *cur_params]
    sql = (
        f"SELECT {', '.join(selects)} FROM (SELECT *, {expr} AS x FROM requests "
        f"WHERE feature = ? AND timestamp >= ? AND timestamp < ?)"
    )
    # Every sum counts requests from its change's time on: nothing before the earliest is read.
    start = max(ctx.range_start, min(c.timestamp for c in changes)) if changes else ctx.range_start
    row = store.rows(sql, [*sel_params, *params, ctx.det.feature, start, ctx.until])[0]
    out = []
    for i in range(len(changes)):
        a, b, c, d, e = row[5 * i : 5 * i + 5]
        out.append((int(a or 0), float(b or 0.0), int(c or 0), float(d or 0.0), int(e or 0)))
    return out


def _evidence(
    ctx: Context,
    change: ChangeEvent,
    pairs: list[tuple[str, str]],
    how: str,
    req_cur: int,
    coverage: float,
    touched_mean: float,
) -> str:
    metric = ctx.det.metric
    lead_h = (ctx.onset - change.timestamp).total_seconds() / 3600.0
    when = (f"{abs(lead_h) * 60:.0f} min" if abs(lead_h) < 1 else f"{abs(lead_h):.1f} h") + (
        " before the onset" if lead_h >= 0 else " after the onset"
    )
    who = " or ".join(f"{d} = {v}" for d, v in pairs) if pairs else "every request"
    share = req_cur / ctx.cur_requests if ctx.cur_requests else 0.0
    if metric == "latency_p95_ms":
        level = f"{100 * touched_mean:.1f}% of its requests slower than the baseline p95 (5% before)"
    else:
        level = (
            f"{metric} {format_value(metric, touched_mean)} in its requests vs "
            f"{format_value(metric, ctx.base_mean)} before the onset"
        )
    head = "Silent provider model update. " if change.silent_update else ""
    found = {"direct": "touched", "new": "first seen with this change", "all": "touched"}[how]
    return (
        f"{head}Changed {when}; {found} {who}: {100 * share:.0f}% of requests since the onset, "
        f"carrying {100 * coverage:.0f}% of the degradation; {level}."
    )
