"""Detection on the independent suite (bench/scenarios_independent.py): incidents found with
the right metric, right change ranked first, right scope, onset error, false findings per 100
clean feature-weeks, and `analyze` run time.

    .venv/bin/python bench/detection_independent_bench.py [--quick] [--family NAME ...]

Each case is ingested once into its own data directory under bench/out/independent/ (kept
between runs; delete it to regenerate), its declared changes saved, then analysed like a
user would: `analyze(store, since=..., until=...)` over the case's window, `since` being the
first request when the case has no history. A full run writes its table into
docs/detection-suite.md between the benchmark markers; `--quick` and `--family` runs only
print (and write bench/out/detection_independent.json).

Matching rules (docs/detection-suite.md):
- a finding matches an incident when the feature and the metric are the same and its onset is
  within ONSET_TOLERANCE of the true onset (for a ramp: from ONSET_TOLERANCE before its start
  to ONSET_TOLERANCE after it reaches full size), or later with fewer than LATE_EVIDENCE
  observations of the metric on the affected requests in between; each finding matches one
  incident at most, incidents in onset order taking the nearest finding;
- the right change is ranked first when the first suspect is the causing change: the same
  change id, or the same kind and new value within an hour (the same change inferred);
- the scope is right when `total` is reported for a total incident, `partial` naming the
  slice (one of its dimension = value pairs) for a slice, `single_user` (naming the user when
  users are named) for one user, and for a cross-feature incident a per-feature `total`
  finding plus an event of the analysis (`events`) naming the feature;
- false findings: every finding on a clean feature; findings on an incident's feature that
  match no incident and are not on a metric that moves with one are counted apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.changes import declared  # noqa: E402
from app.detection.analysis import analyze  # noqa: E402
from app.detection.findings import AnalysisResult, Finding  # noqa: E402
from app.ingest.pipeline import ingest_paths  # noqa: E402
from app.storage.store import Store  # noqa: E402
from bench.independent_traffic import generate  # noqa: E402
from bench.scenarios_independent import FAMILIES, Case, Cause, Incident, cases  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
CACHE = OUT / "independent"
DOC = Path(__file__).resolve().parents[1] / "docs" / "detection-suite.md"
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
SUITE_VERSION = "v2"  # bump when bench/independent_traffic.py changes what it generates
ONSET_TOLERANCE = timedelta(hours=3)
SAME_CHANGE_WINDOW = timedelta(hours=1)
LATE_EVIDENCE = 30


# Data --------------------------------------------------------------------------------------


def case_digest(case: Case) -> str:
    """Same generator version, same world and declared changes: same data."""
    text = repr((SUITE_VERSION, case.world, case.declared))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def load_case(case: Case) -> Store:
    """The case's data directory, generated and ingested on first use and again whenever the
    case's definition changed."""
    folder = CACHE / case.name
    ready = folder / "suite-ready"
    digest = case_digest(case)
    if not ready.exists() or ready.read_text().strip() != digest:
        if folder.exists():
            shutil.rmtree(folder)  # a stale case, or half built by an interrupted run
        folder.mkdir(parents=True)
        path = folder / "requests.parquet"
        generate(case.world).write_parquet(path)
        store = Store(folder)
        result = ingest_paths(store, [str(path)])
        if not result.ok:
            raise SystemExit(f"{case.name}: ingest failed: {result.summary()}")
        declared.save_events(store, case.declared)
        path.unlink()
        ready.write_text(f"{digest}\n")
    return Store(folder)


def window(case: Case, store: Store) -> tuple[datetime, datetime]:
    since = case.since
    if since is None:
        since, _ = store.time_bounds()
    return since, case.until or case.world.end


# Matching ----------------------------------------------------------------------------------


# What counts as one observation of a metric, for the evidence a late onset could have had.
OBSERVED = {
    "error_rate": "TRUE",
    "latency_p95_ms": "error IS NULL",
    "cost_per_request_usd": "error IS NULL",
    "quality_score": "quality_score IS NOT NULL",
    "negative_feedback_rate": "feedback IS NOT NULL",
}
DIMENSIONS = ("model", "response_model", "prompt_version", "variant", "region", "segment", "user_id")


def observations(store: Store, inc: Incident, start: datetime, end: datetime) -> int:
    """Observations of the incident's metric on its requests (its slice or user) in [start, end)."""
    sql = (
        "SELECT count(*) FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ? "
        f"AND {OBSERVED[inc.metric]}"
    )
    params: list[Any] = [inc.feature, start, end]
    if inc.scope in ("slice", "single_user"):
        dim, value = inc.slices[0]
        assert dim in DIMENSIONS  # a name from the suite, never from input
        sql += f" AND {dim} = ?"
        params.append(value)
    return store.rows(sql, params)[0][0]


def onset_ok(inc: Incident, f: Finding, store: Store | None = None) -> bool:
    """Within the tolerance of the true onset; or later, when fewer than LATE_EVIDENCE
    observations of the metric came between (quiet hours cannot date an onset)."""
    lo = inc.onset - ONSET_TOLERANCE
    full = inc.onset + timedelta(hours=inc.ramp_hours)
    if lo <= f.onset <= full + ONSET_TOLERANCE:
        return True
    return store is not None and f.onset > full and observations(store, inc, full, f.onset) < LATE_EVIDENCE


def is_cause(cause: Cause, f: Finding) -> bool:
    if not f.suspects:
        return False
    c = f.suspects[0].change
    if cause.change_id is not None and c.change_id == cause.change_id:
        return True
    return (
        c.kind == cause.kind and c.to_value == cause.to and abs(c.timestamp - cause.at) <= SAME_CHANGE_WINDOW
    )


def _events(result: AnalysisResult) -> list[Any]:
    events = getattr(result, "events", None)
    if events is None:
        events = result.as_dict().get("events") or []
    return list(events)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    if hasattr(obj, "as_dict"):
        return obj.as_dict().get(key)
    return getattr(obj, key, None)


def event_names(result: AnalysisResult, inc: Incident) -> bool:
    """An event of the analysis names the incident's feature (cross-feature incidents), with
    the incident's metric and a start within the onset tolerance, when it says them."""
    for ev in _events(result):
        feats = _get(ev, "features") or []
        names = {x if isinstance(x, str) else _get(x, "feature") for x in feats}
        metric, start = _get(ev, "metric"), _get(ev, "start")
        if isinstance(start, str):
            start = datetime.fromisoformat(start.rstrip("Z"))
        if (
            inc.feature in names
            and metric in (None, inc.metric)
            and (start is None or abs(start - inc.onset) <= ONSET_TOLERANCE)
        ):
            return True
    return False


def scope_ok(inc: Incident, f: Finding, result: AnalysisResult) -> bool:
    kind = f.scope.kind
    named = {(s.dimension, s.value) for s in f.scope.slices}
    if inc.scope == "total":
        return kind == "total"
    if inc.scope == "slice":
        return kind == "partial" and bool(named & set(inc.slices))
    if inc.scope == "single_user":
        users = {v for d, v in named if d == "user_id"}
        return kind == "single_user" and (not users or bool(users & {v for _, v in inc.slices}))
    return kind == "total" and event_names(result, inc)


def evaluate(case: Case, result: AnalysisResult, until: datetime, store: Store | None = None) -> dict:
    used: set[int] = set()
    rows = []
    for inc in sorted(case.incidents, key=lambda i: i.onset):
        same = [
            (k, f)
            for k, f in enumerate(result.findings)
            if k not in used and f.feature == inc.feature and f.metric == inc.metric
        ]
        pool = [(k, f) for k, f in same if onset_ok(inc, f, store)]
        hit = min(pool, key=lambda kf: abs(kf[1].onset - inc.onset), default=None)
        row: dict[str, Any] = {
            "family": inc.family,
            "case": case.name,
            "feature": inc.feature,
            "metric": inc.metric,
            "shape": inc.shape,
            "scope": inc.scope,
            "onset": inc.onset.isoformat(),
            "found": hit is not None,
        }
        if hit is not None:
            k, f = hit
            used.add(k)
            row.update(
                onset_error_min=abs((f.onset - inc.onset).total_seconds()) / 60,
                scope_ok=scope_ok(inc, f, result),
                reported_scope=f.scope.kind,
                reported_slices=[f"{s.dimension}={s.value}" for s in f.scope.slices],
                top1=None if inc.cause is None else is_cause(inc.cause, f),
            )
            if inc.end is not None and f.end is not None and f.end < until:
                row["end_error_min"] = abs((f.end - inc.end).total_seconds()) / 60
        else:
            row.update(
                scope_ok=False,
                top1=None if inc.cause is None else False,
                near=[
                    f"{f.metric}@{f.onset:%m-%d %H:%M}" for f in result.findings if f.feature == inc.feature
                ],
            )
        rows.append(row)
    clean = set(case.clean_features)
    moving = {(i.feature, m) for i in case.incidents for m in (i.metric, *i.also)}
    false = [f for f in result.findings if f.feature in clean]
    extra = [
        f
        for k, f in enumerate(result.findings)
        if k not in used and f.feature not in clean and (f.feature, f.metric) not in moving
    ]
    misdated = [
        f
        for k, f in enumerate(result.findings)
        if k not in used
        and f.feature not in clean
        and (f.feature, f.metric) in moving
        and any(i.feature == f.feature and i.metric == f.metric for i in case.incidents)
    ]
    return {
        "incidents": rows,
        "false": [_brief(f) for f in false],
        "extra": [_brief(f) for f in extra],
        "unmatched_same_metric": [_brief(f) for f in misdated],
    }


def _brief(f: Finding) -> str:
    return f"{f.feature} {f.metric} onset {f.onset:%Y-%m-%d %H:%M} scope {f.scope.kind}"


# Summary -----------------------------------------------------------------------------------


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarise(runs: list[dict]) -> dict:
    rows = [r for run in runs for r in run["incidents"]]
    fams: dict[str, dict] = {}
    for run in runs:
        v = fams.setdefault(
            run["family"],
            {
                "n": 0,
                "found": 0,
                "with_cause": 0,
                "top1": 0,
                "scope_ok": 0,
                "onset": [],
                "end": [],
                "clean_weeks": 0.0,
                "false": 0,
                "extra": 0,
                "seconds": [],
            },
        )
        v["clean_weeks"] += run["clean_weeks"]
        v["false"] += len(run["false"])
        v["extra"] += len(run["extra"])
        v["seconds"].append(run["analyze_s"])
        for r in run["incidents"]:
            v["n"] += 1
            v["found"] += r["found"]
            v["scope_ok"] += r["scope_ok"]
            if r["top1"] is not None:
                v["with_cause"] += 1
                v["top1"] += r["top1"]
            if r.get("onset_error_min") is not None:
                v["onset"].append(r["onset_error_min"])
            if r.get("end_error_min") is not None:
                v["end"].append(r["end_error_min"])
    with_cause = [r for r in rows if r["top1"] is not None]
    step_like = [
        r["onset_error_min"]
        for r in rows
        if r["shape"] in ("step", "transient") and r.get("onset_error_min") is not None
    ]
    ramps = [
        r["onset_error_min"] for r in rows if r["shape"] == "ramp" and r.get("onset_error_min") is not None
    ]
    clean_weeks = sum(run["clean_weeks"] for run in runs)
    seconds = [run["analyze_s"] for run in runs]
    n = len(rows)
    return {
        "cases": len(runs),
        "incidents": n,
        "families": len({r["family"] for r in rows}),
        "found_rate": sum(r["found"] for r in rows) / n if n else None,
        "top1_rate": sum(r["top1"] for r in with_cause) / len(with_cause) if with_cause else None,
        "with_cause": len(with_cause),
        "scope_rate": sum(r["scope_ok"] for r in rows) / n if n else None,
        "onset_median_min_steps_transients": _median(step_like),
        "onset_median_min_ramps": _median(ramps),
        "end_median_min": _median([r["end_error_min"] for r in rows if "end_error_min" in r]),
        "clean_feature_weeks": clean_weeks,
        "false_findings": sum(len(run["false"]) for run in runs),
        "false_per_100_clean_weeks": (
            100 * sum(len(run["false"]) for run in runs) / clean_weeks if clean_weeks else None
        ),
        "extra_findings_on_incident_features": sum(len(run["extra"]) for run in runs),
        "misdated_findings": sum(len(run["unmatched_same_metric"]) for run in runs),
        "analyze_median_s": _median(seconds),
        "analyze_total_s": sum(seconds),
        "rows_total": sum(run["rows"] for run in runs),
        "by_family": {
            k: {
                **{x: y for x, y in v.items() if x not in ("onset", "end", "seconds")},
                "onset_median_min": _median(v["onset"]),
                "end_median_min": _median(v["end"]),
                "analyze_median_s": _median(v["seconds"]),
            }
            for k, v in fams.items()
        },
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _min(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f} min"


def table(s: dict) -> str:
    lines = [
        "| family | incidents | found (right metric) | right change first | right scope | "
        "median onset error | clean feature-weeks | false findings | analyze median |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in s["by_family"].items():
        n = v["n"]
        found = f"{v['found']}/{n}" if n else "-"
        top1 = f"{v['top1']}/{v['with_cause']}" if v["with_cause"] else "-"
        scope = f"{v['scope_ok']}/{n}" if n else "-"
        onset = _min(v["onset_median_min"]) if n else "-"
        lines.append(
            f"| {name} | {n} | {found} | {top1} | {scope} | {onset} | "
            f"{v['clean_weeks']:.1f} | {v['false']} | {v['analyze_median_s']:.2f} s |"
        )
    lines += [
        "",
        f"- Incidents found with the right metric: **{_pct(s['found_rate'])}** of {s['incidents']} "
        f"in {s['families']} families (target 98%)",
        f"- Right change ranked first: **{_pct(s['top1_rate'])}** of the {s['with_cause']} incidents "
        f"caused by a change (target 95%)",
        f"- Right scope: **{_pct(s['scope_rate'])}** (target 95%)",
        f"- False findings: **{_fmt(s['false_per_100_clean_weeks'])} per 100 clean feature-weeks** "
        f"({s['false_findings']} on {s['clean_feature_weeks']:.0f} clean feature-weeks; target 1); "
        f"on incident features, findings of another metric: "
        f"{s['extra_findings_on_incident_features']}, of the incident's metric but dated too far "
        f"from its onset: {s['misdated_findings']}",
        f"- Median onset error: **{_min(s['onset_median_min_steps_transients'])}** on steps and "
        f"transients (target 10 min); {_min(s['onset_median_min_ramps'])} on ramps; median error "
        f"of a transient's reported end: {_min(s['end_median_min'])}",
        f"- `analyze` per case: median {s['analyze_median_s']:.2f} s, {s['analyze_total_s']:.0f} s "
        f"in all over {s['cases']} cases ({s['rows_total']:,} requests; 2-core machine, load "
        f"average {os.getloadavg()[0]:.1f} at the end of the run)",
    ]
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def write_doc(text: str) -> None:
    if not DOC.exists():
        return
    doc = DOC.read_text()
    if MARK_START in doc and MARK_END in doc:
        head, rest = doc.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        DOC.write_text(f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}")


# Run ---------------------------------------------------------------------------------------


def run_case(case: Case) -> dict:
    t = time.perf_counter()
    store = load_case(case)
    load_s = time.perf_counter() - t
    since, until = window(case, store)
    t = time.perf_counter()
    result = analyze(store, since=since, until=until)
    analyze_s = time.perf_counter() - t
    days = (until - since).total_seconds() / 86400
    ev = evaluate(case, result, until, store)
    return {
        "case": case.name,
        "family": case.family,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "rows": store.request_count(),
        "load_s": load_s,
        "analyze_s": analyze_s,
        "clean_weeks": len(case.clean_features) * days / 7,
        "findings": len(result.findings),
        **ev,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the first case of each family")
    parser.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="NAME",
        help=f"only this family (repeatable): {', '.join(FAMILIES)}",
    )
    parser.add_argument(
        "--write-doc",
        action="store_true",
        help="write the table into docs/detection-suite.md even for a partial run",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every miss")
    parser.add_argument("--list", action="store_true", help="list the families and their sizes")
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, n) in FAMILIES.items():
            print(f"{name}: {n} cases")
        return 0
    unknown = [f for f in args.family if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown family {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    todo = cases(args.family or None, quick=args.quick)
    runs = []
    for case in todo:
        run = run_case(case)
        runs.append(run)
        found = sum(r["found"] for r in run["incidents"])
        print(
            f"{case.name}: {run['rows']:,} rows, {run['findings']} findings, "
            f"{found}/{len(run['incidents'])} found, {len(run['false'])} false, "
            f"analyze {run['analyze_s']:.2f} s (load {run['load_s']:.1f} s)",
            flush=True,
        )
        if args.verbose:
            for r in run["incidents"]:
                if not r["found"] or not r["scope_ok"] or r["top1"] is False:
                    print(f"   miss: {json.dumps(r, default=str)}")
            for f in run["false"]:
                print(f"   false: {f}")
    s = summarise(runs)
    text = table(s)
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / "detection_independent.json").write_text(
        json.dumps({"summary": s, "runs": runs}, indent=1, default=str)
    )
    if args.write_doc or not (args.quick or args.family):
        write_doc(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
