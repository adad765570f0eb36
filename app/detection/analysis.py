"""`analyze`: detect degradations, classify their scope and rank what changed.

The one entry point the CLI (`rollback-desk analyze`), the Detect page and the incident flow
share. Everything heavy runs in DuckDB: one grouped scan for the hourly aggregates of every
feature, then one slice scan and one suspect scan per finding.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from app.changes import timeline as changes
from app.changes.events import ChangeEvent
from app.detection import attribute, slices
from app.detection.detect import Detection, OnsetEstimate, detect, refine_end, refine_onset
from app.detection.findings import AnalysisResult, CrossFeatureEvent, Finding, Scope
from app.detection.hourly import load_hourly
from app.detection.thresholds import METRIC_NAMES, Thresholds, load_thresholds
from app.storage.store import Store

DEFAULT_WINDOW = timedelta(days=7)
RESCAN_AFTER = timedelta(minutes=10)


def default_window(
    store: Store, feature: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """[since, until): by default the most recent week of loaded data, measured back from the
    newest timestamp in the data, not from the clock."""
    if until is None:
        _, newest = store.time_bounds(feature)
        if newest is None:
            return None
        until = newest + timedelta(microseconds=1)
    if since is None:
        since = until - DEFAULT_WINDOW
    if since >= until:
        return None
    return since, until


def candidate_changes(
    store: Store, feature: str, since: datetime, until: datetime, extra: list[ChangeEvent] | None = None
) -> list[ChangeEvent]:
    """Declared, inferred, flag-history and the console's own changes of a feature."""
    events = changes.timeline_changes(store, feature, since, until)
    seen = {e.change_id for e in events}
    for e in extra or []:
        if e.feature == feature and since <= e.timestamp <= until and e.change_id not in seen:
            events.append(e)
    return events


def analyze(
    store: Store,
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    thresholds: Thresholds | None = None,
    extra_changes: list[ChangeEvent] | None = None,
) -> AnalysisResult:
    """Findings (degradations only, most severe first, each with scope and ranked suspects)
    and the feature-metrics too thin to judge."""
    t = thresholds or load_thresholds(store.data_dir)
    with store.session():  # one connection for every query of the analysis
        return _analyze(store, feature, since, until, t, extra_changes)


def _analyze(
    store: Store,
    feature: str | None,
    since: datetime | None,
    until: datetime | None,
    t: Thresholds,
    extra_changes: list[ChangeEvent] | None,
) -> AnalysisResult:
    window = default_window(store, feature, since, until)
    if window is None:
        return AnalysisResult((), (), since, until)
    since, until = window
    range_start = since - timedelta(days=t.lookback_days)
    hourly = load_hourly(store, range_start, until, feature)
    sliced = slices.detect_slices(
        slices.slice_hourly(store, range_start, until, feature), range_start, until, since, t, METRIC_NAMES
    )
    detections, inconclusive = detect(hourly, since, t, slices=sliced, store=store)
    hints = {(sd.feature, sd.metric): sd for sd in sliced}
    # Detections of one feature with the same onset and end (metrics that broke together)
    # share one scan of the feature's rows for their first slice table.
    groups: dict[tuple, list[Detection]] = {}
    for d in detections:
        groups.setdefault((d.feature, d.onset, d.end), []).append(d)
    first_tables = {}
    for (_, onset, _), group in groups.items():
        for d, table in zip(
            group, attribute.slice_tables(store, group, onset, range_start, until), strict=True
        ):
            first_tables[id(d)] = table
    findings = [
        explain(
            store,
            d,
            range_start,
            until,
            t,
            extra_changes,
            hints.get((d.feature, d.metric)),
            first_tables.get(id(d)),
        )
        for d in detections
    ]
    findings.sort(key=lambda f: (-f.severity, f.feature, f.metric))
    return AnalysisResult(tuple(findings), tuple(inconclusive), since, until, cross_feature_events(findings))


def explain(
    store: Store,
    det: Detection,
    range_start: datetime,
    until: datetime,
    t: Thresholds,
    extra_changes: list[ChangeEvent] | None = None,
    hint: slices.SliceDetection | None = None,
    table: pl.DataFrame | None = None,
) -> Finding:
    """A detection with its onset to the minute, its scope and its suspects. `hint`: the
    slice test's answer for the same feature and metric; when the scope is that slice, its
    step (found on the slice's own gap, not diluted in the total) places the hourly onset."""
    if table is None:  # or the one read with the other metrics of the same break (analyze)
        table = attribute.slice_table(store, det, det.onset, range_start, until)
    ctx = attribute.context(det, det.onset, range_start, until, table)
    scope, suspects, onset, ended = Scope("total"), [], det.onset, None
    if det.shape == "transient":
        ended = det.end
    if ctx is not None:
        ctx, scope = _scope(ctx, table, det, t)
        if (
            hint is not None
            and not hint.new_value
            and det.shape == "step"
            and (hint.dimension, hint.value) in {(s.dimension, s.value) for s in scope.slices}
            and abs(hint.onset - det.onset) > timedelta(hours=1)
        ):
            det = replace(
                det, onset=hint.onset, onset_lo=hint.onset, onset_hi=hint.onset + timedelta(hours=1)
            )
            table = attribute.slice_table(store, det, det.onset, range_start, until)
            ctx = attribute.context(det, det.onset, range_start, until, table) or ctx
            ctx, scope = _scope(ctx, table, det, t)
        where = [(s.dimension, s.value) for s in scope.slices]
        candidates = candidate_changes(store, det.feature, range_start, until, extra_changes)
        slice_onset = attribute.new_slice_onset(ctx, scope, table)
        if slice_onset is not None:
            refined = OnsetEstimate(slice_onset, slice_onset, slice_onset)
        else:
            times = [c.timestamp for c in candidates]
            refined = refine_onset(store, det, ctx.base_mean, ctx.base_var, where, times)
        onset = refined.at
        # The tables are re-read (a scan of the feature's rows) only when the onset moved by
        # more than ten minutes: within them the scope and the suspects' sums barely change.
        if abs(onset - det.onset) > RESCAN_AFTER:
            table = attribute.slice_table(store, det, onset, range_start, until)
            ctx = attribute.context(det, onset, range_start, until, table) or ctx
            ctx, scope = _scope(ctx, table, det, t)
            # The scope seen from the new onset can be a new slice (a canary that went unseen
            # at night): then it began with the slice's first requests.
            later = None if slice_onset is not None else attribute.new_slice_onset(ctx, scope, table)
            if later is not None and later != onset:
                refined = OnsetEstimate(later, later, later)
                onset = later
                table = attribute.slice_table(store, det, onset, range_start, until)
                ctx = attribute.context(det, onset, range_start, until, table) or ctx
                ctx, scope = _scope(ctx, table, det, t)
        ctx = replace(ctx, onset=onset, onset_lo=refined.lo, onset_hi=refined.hi)
        where = [(s.dimension, s.value) for s in scope.slices]
        if det.shape == "transient":
            ended = refine_end(store, det, onset, until, ctx.base_mean, ctx.base_var, where)
        suspects = attribute.rank_suspects(store, ctx, scope, table, candidates, t)
    return Finding(
        feature=det.feature,
        metric=det.metric,
        onset=onset,
        end=det.end,
        baseline=det.baseline,
        current=det.current,
        p_value=det.p_value,
        n_baseline=det.n_baseline,
        n_current=det.n_current,
        shape=det.shape,
        severity=det.severity,
        scope=scope,
        suspects=tuple(suspects),
        ended=ended,
    )


def _scope(ctx: attribute.Context, table, det: Detection, t: Thresholds) -> tuple[attribute.Context, Scope]:
    """The scope rule's answer; for a degradation found only in a slice, that slice."""
    scope = attribute.classify_scope(ctx, table, t)
    if det.slice is None or any((s.dimension, s.value) == det.slice for s in scope.slices):
        return ctx, scope
    return attribute.focus(ctx, table, *det.slice) or (ctx, scope)


EVENT_ONSET_TOLERANCE = timedelta(minutes=15)
EXPLAINED_TIMING = 0.5  # a suspect this close in time, naming the requests, explains a finding


def cross_feature_events(findings: list[Finding]) -> tuple[CrossFeatureEvent, ...]:
    """Findings of one metric in two or more features whose onsets lie within 15 minutes of
    each other, none explained by a change of its own feature: one event each."""

    def explained(f: Finding) -> bool:
        return any(s.timing >= EXPLAINED_TIMING and s.coverage >= 0.5 for s in f.suspects)

    out = []
    free = sorted(
        (f for f in findings if f.scope.kind != "single_user" and not explained(f)),
        key=lambda f: (f.metric, f.onset),
    )
    used: set[int] = set()
    for i, f in enumerate(free):
        if i in used:
            continue
        group = [
            j
            for j in range(i, len(free))
            if j not in used
            and free[j].metric == f.metric
            and abs(free[j].onset - f.onset) <= EVENT_ONSET_TOLERANCE
        ]
        features = sorted({free[j].feature for j in group})
        if len(features) < 2:
            continue
        used.update(group)
        ends = [free[j].ended for j in group]
        end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        out.append(CrossFeatureEvent(f.metric, min(free[j].onset for j in group), end, tuple(features)))
    return tuple(out)
