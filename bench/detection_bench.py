"""Detection benchmark: detection rate, top-1 suspect accuracy, onset error, scope accuracy and
false findings on the scenario suite (bench/scenarios.py), and `analyze` time at 10M rows.

    .venv/bin/python bench/detection_bench.py [--seeds 6] [--rows 10000000] [--skip-scale]

Each seed is one data directory with one feature per scenario kind (eight incidents, two
clean weeks). Results go to bench/out/detection_bench.json and into docs/detection.md
between the benchmark markers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.changes import declared  # noqa: E402
from app.demo.synth import generate  # noqa: E402
from app.detection.analysis import analyze  # noqa: E402
from app.detection.findings import AnalysisResult, Finding  # noqa: E402
from app.ingest.pipeline import ingest_paths  # noqa: E402
from app.storage.store import Store  # noqa: E402
from bench.scenarios import Case, scenario, suite  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
DOC = Path(__file__).resolve().parents[1] / "docs" / "detection.md"
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"


def load_suite(seed: int, cases: list[Case]) -> Store:
    folder = OUT / f"detect-suite-{seed}"
    store = Store(folder)
    if store.request_count() == 0:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "requests.parquet"
        generate(scenario(cases, seed)).write_parquet(path)
        ingest_paths(store, [str(path)])
        declared.save_events(store, [e for c in cases for e in c.declared])
    return store


def is_cause(case: Case, finding: Finding) -> bool:
    if not finding.suspects or case.cause is None:
        return False
    c = finding.suspects[0].change
    return (
        c.kind == case.cause.kind
        and c.to_value == case.cause.to
        and abs(c.timestamp - case.cause.at) <= timedelta(minutes=15)
    )


def evaluate(cases: list[Case], result: AnalysisResult) -> list[dict]:
    rows = []
    for case in cases:
        mine = [f for f in result.findings if f.feature == case.feature]
        if case.metric is None:
            rows.append({"kind": case.name, "clean": True, "false": len(mine)})
            continue
        hit = next((f for f in mine if f.metric == case.metric), None)
        allowed = {case.metric, *case.also}
        rows.append(
            {
                "kind": case.name,
                "clean": False,
                "detected": hit is not None,
                "top1": None if case.cause is None else bool(hit and is_cause(case, hit)),
                "onset_error_min": abs((hit.onset - case.onset).total_seconds()) / 60 if hit else None,
                "scope_ok": bool(hit and hit.scope.kind == case.scope),
                "extra": sum(1 for f in mine if f.metric not in allowed),
            }
        )
    return rows


def scale_timing(rows: int, repeat: int) -> dict:
    """`analyze` over the demo week scaled to `rows` requests (default window: one week)."""
    folder = OUT / f"detect-{rows}"
    store = Store(folder)
    if store.request_count() < rows * 0.95:
        from app.demo.scenario import demo_changes, demo_scenario

        OUT.mkdir(exist_ok=True)
        path = OUT / f"demo-{rows}.parquet"
        if not path.exists():
            print(f"generating ~{rows:,} rows ...", flush=True)
            generate(demo_scenario(scale=rows / 225_000)).write_parquet(path)
        t = time.perf_counter()
        ingest_paths(store, [str(path)])
        print(f"ingested in {time.perf_counter() - t:.0f} s", flush=True)
        events = [declared._declared_event(d)[0] for d in demo_changes()]
        declared.save_events(store, [e for e in events if e is not None])
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = analyze(store)
        times.append(time.perf_counter() - t)
    return {
        "rows": store.request_count(),
        "median_s": statistics.median(times),
        "min_s": min(times),
        "findings": len(result.findings),
        "load_average": os.getloadavg()[0],
    }


def summarise(rows: list[dict]) -> dict:
    incidents = [r for r in rows if not r["clean"]]
    clean = [r for r in rows if r["clean"]]
    with_cause = [r for r in incidents if r["top1"] is not None]
    onsets = sorted(r["onset_error_min"] for r in incidents if r["onset_error_min"] is not None)
    by_kind: dict[str, dict] = {}
    for r in incidents:
        k = by_kind.setdefault(
            r["kind"], {"n": 0, "detected": 0, "top1": 0, "with_cause": 0, "scope_ok": 0, "onset": []}
        )
        k["n"] += 1
        k["detected"] += r["detected"]
        k["scope_ok"] += r["scope_ok"]
        if r["top1"] is not None:
            k["with_cause"] += 1
            k["top1"] += r["top1"]
        if r["onset_error_min"] is not None:
            k["onset"].append(r["onset_error_min"])
    return {
        "incidents": len(incidents),
        "detection_rate": sum(r["detected"] for r in incidents) / len(incidents),
        "top1_accuracy": sum(r["top1"] for r in with_cause) / len(with_cause),
        "scope_accuracy": sum(r["scope_ok"] for r in incidents) / len(incidents),
        "onset_error_median_min": statistics.median(onsets) if onsets else None,
        "onset_error_p90_min": onsets[int(0.9 * (len(onsets) - 1))] if onsets else None,
        "clean_feature_weeks": len(clean),
        "false_findings_per_clean_week": sum(r["false"] for r in clean) / len(clean),
        "extra_findings_on_incident_features": sum(r["extra"] for r in incidents),
        "by_kind": {
            k: {
                "n": v["n"],
                "detected": v["detected"],
                "top1": v["top1"],
                "with_cause": v["with_cause"],
                "scope_ok": v["scope_ok"],
                "onset_median_min": statistics.median(v["onset"]) if v["onset"] else None,
            }
            for k, v in by_kind.items()
        },
    }


def table(s: dict, timing: dict | None) -> str:
    lines = [
        "| scenario | runs | detected (right metric) | top-1 suspect right | scope right | "
        "median onset error |",
        "|---|---|---|---|---|---|",
    ]
    for kind, v in s["by_kind"].items():
        top1 = f"{v['top1']}/{v['with_cause']}" if v["with_cause"] else "n/a (no change caused it)"
        onset = f"{v['onset_median_min']:.0f} min" if v["onset_median_min"] is not None else "n/a"
        lines.append(
            f"| {kind} | {v['n']} | {v['detected']}/{v['n']} | {top1} | {v['scope_ok']}/{v['n']} | {onset} |"
        )
    lines += [
        "",
        f"- Detection rate: **{100 * s['detection_rate']:.0f}%** of {s['incidents']} "
        f"injected incidents found with the right metric",
        f"- Top-1 suspect accuracy: **{100 * s['top1_accuracy']:.0f}%** (scenarios caused by a change)",
        f"- Scope classification right: {100 * s['scope_accuracy']:.0f}%",
        f"- Onset error: median {s['onset_error_median_min']:.0f} min, "
        f"90th percentile {s['onset_error_p90_min']:.0f} min",
        f"- False findings per clean feature-week: **{s['false_findings_per_clean_week']:.2f}** "
        f"({s['clean_feature_weeks']} clean feature-weeks with harmless changes); findings "
        f"on unaffected metrics of incident features: {s['extra_findings_on_incident_features']}",
    ]
    if timing:
        lines.append(
            f"- `analyze` over one week of {timing['rows']:,} rows: median "
            f"**{timing['median_s']:.1f} s** (best {timing['min_s']:.1f} s; 2-core machine, "
            f"load average {timing['load_average']:.1f} during the run)"
        )
    return "\n".join(lines)


def write_doc(text: str) -> None:
    if not DOC.exists():
        return
    doc = DOC.read_text()
    if MARK_START in doc and MARK_END in doc:
        head, rest = doc.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        DOC.write_text(f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    rows: list[dict] = []
    for seed in range(1, args.seeds + 1):
        cases = suite(seed)
        store = load_suite(seed, cases)
        result = analyze(store)
        rows += evaluate(cases, result)
        print(f"seed {seed}: {len(result.findings)} findings", flush=True)
    s = summarise(rows)
    timing = None if args.skip_scale else scale_timing(args.rows, args.repeat)
    text = table(s, timing)
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / "detection_bench.json").write_text(
        json.dumps({"summary": s, "timing": timing, "rows": rows}, indent=1, default=str)
    )
    write_doc(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
