"""The review as markdown (GitHub and Confluence: headings and tables, no HTML), as one
self-contained HTML file (plotly inline, works offline), and as a short summary for a
webhook. All three say the same things; times are UTC.
"""

from __future__ import annotations

import html
import math

import plotly.io as pio

from app.detection.findings import format_value
from app.review import figures
from app.review.budget import SloStatus
from app.review.report import FeatureReview, WeeklyReview
from app.timestamps import display

NO_SLO_TEXT = "no objectives set in slos.yaml"


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}%"


def minutes(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0f} min" if x < 120 else f"{x / 60:.1f} h"


def money(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"${x:,.{digits}f}"


def burn(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}×"


def _wow(metric: str, pair: tuple[float | None, float | None]) -> str:
    prev, now = pair
    return f"{format_value(metric, prev)} → {format_value(metric, now)}"


# Tables: (header, rows) built once, written as markdown or HTML ----------------------------


def slo_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    header = [
        "Feature",
        "Objective",
        "SLI",
        "Target",
        "Attainment",
        "Met",
        "Budget left",
        "Burn 1h",
        "Burn 6h",
        "Burn 3d",
        "Alerts this week",
    ]
    rows = []
    for f in review.features:
        if not f.slos:
            rows.append([f.feature, NO_SLO_TEXT, "", "", "", "", "", "", "", "", ""])
        for s in f.slos:
            rows.append(
                [
                    f.feature,
                    s.objective.name,
                    sli_text(s),
                    pct(s.objective.objective),
                    pct(s.attainment, 3) if s.attainment is not None else f"n/a ({s.reason})",
                    {True: "yes", False: "no", None: "n/a"}[s.met],
                    pct(s.budget_remaining_share, 1),
                    burn(s.burn_rates["1h"]),
                    burn(s.burn_rates["6h"]),
                    burn(s.burn_rates["3d"]),
                    alerts_text(s),
                ]
            )
    return header, rows


def sli_text(s: SloStatus) -> str:
    o = s.objective
    if o.sli == "latency":
        return f"latency ≤ {o.threshold:g} ms"
    if o.sli == "quality":
        return f"quality ≥ {o.threshold:g}"
    return {"success_rate": "success rate", "feedback": "non-negative feedback"}[o.sli]


def alerts_text(s: SloStatus) -> str:
    if not s.alerts:
        return "none"
    by_rule: dict[str, int] = {}
    for a in s.alerts:
        by_rule[a.rule] = by_rule.get(a.rule, 0) + 1
    first = s.alerts[0]
    return (
        ", ".join(f"{rule} ×{n}" for rule, n in by_rule.items())
        + f" (first {display(first.start)}, peak {max(a.peak_burn_rate for a in s.alerts):.1f}×)"
    )


def wow_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    header = ["Feature", "Requests", "Quality", "Error rate", "Latency p95", "Cost / request"]
    rows = [
        [f.feature, f"{f.requests:,}"]
        + [
            _wow(m, f.week_over_week[m])
            for m in ("quality_score", "error_rate", "latency_p95_ms", "cost_per_request_usd")
        ]
        for f in review.features
    ]
    return header, rows


def kind_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    header = ["Change kind", "Changes", "Failed", "Failure rate", "Median recovery"]
    rows = [
        [k, str(s.count), str(s.failed), pct(s.failure_rate, 0), minutes(s.median_recovery_min)]
        for k, s in review.by_kind.items()
    ]
    return header, rows


def feature_change_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    header = ["Feature", "Changes", "Failed", "Failure rate", "Median recovery"]
    rows = [
        [k, str(s.count), str(s.failed), pct(s.failure_rate, 0), minutes(s.median_recovery_min)]
        for k, s in review.by_feature.items()
    ]
    return header, rows


def failed_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    header = ["When", "Feature", "Kind", "Change", "Source", "Recovery", "Why failed"]
    rows = [
        [
            f"{display(o.change.timestamp)}",
            o.change.feature,
            o.change.kind,
            f"{o.change.key or ''}: {o.change.from_value or '?'} → {o.change.to_value or '?'}",
            o.change.source,
            minutes(o.recovery_min),
            o.why,
        ]
        for o in review.failed_changes
    ]
    return header, rows


def incident_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    return _incident_table(review.incidents)


def still_open_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    return _incident_table(review.still_open)


def _incident_table(incidents) -> tuple[list[str], list[list[str]]]:
    header = [
        "Incident",
        "Title",
        "Severity",
        "Status",
        "TTD",
        "TTM",
        "TTR",
        "Rolled back",
        "Detected by",
        "Open action items",
    ]
    rows = [
        [
            i.id,
            i.title,
            i.severity,
            i.status,
            minutes(i.ttd_min),
            minutes(i.ttm_min),
            minutes(i.ttr_min),
            "yes" if i.rolled_back else "no",
            i.detected_by,
            str(i.open_action_items),
        ]
        for i in incidents
    ]
    return header, rows


def regression_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    header = ["Feature", "Metric", "From", "Baseline → now", "Top suspect"]
    rows = []
    for f in review.regressions:
        top = f.suspects[0].change if f.suspects else None
        rows.append(
            [
                f.feature,
                f.metric,
                f"{display(f.onset)}",
                f"{format_value(f.metric, f.baseline)} → {format_value(f.metric, f.current)}",
                f"{top.kind} {top.key or ''}: {top.from_value or '?'} → {top.to_value or '?'}"
                if top
                else "none found",
            ]
        )
    return header, rows


def cost_rows(review: WeeklyReview) -> tuple[list[str], list[list[str]]]:
    header = ["Feature", "Model", "Requests", "Cost", "Cost / request", "Budget"]
    rows = []
    for f in review.features:
        for model, n, cost in f.cost_by_model:
            rows.append(
                [f.feature, model, f"{n:,}", money(cost), money(cost / n if n else None, 5), _budget(f)]
            )
    return header, rows


def _budget(f: FeatureReview) -> str:
    b = f.cost_budget
    if not b:
        return "none set"
    parts = []
    if b["per_request_usd"] is not None:
        parts.append(f"{money(b['per_request_usd'], 5)}/request")
    if b["per_day_usd"] is not None:
        parts.append(f"{money(b['per_day_usd'])}/day ({b['days_over'] or 0} days over)")
    return ("within: " if b["within"] else "over: ") + ", ".join(parts)


SECTIONS = (
    (
        "Objectives and error budgets",
        slo_rows,
        "Attainment over each objective's rolling window, ending with the week; burn rates at "
        "the end of the week (1 = the budget lasts exactly the window).",
    ),
    ("Week over week", wow_rows, "This week against the week before."),
    (
        "Change failure rate by kind",
        kind_rows,
        "A change failed when, within the failure horizon, it was rolled back or reverted, or "
        "named as the top suspect of a finding or an incident.",
    ),
    ("Change failure rate by feature", feature_change_rows, ""),
    ("Failed changes", failed_rows, ""),
    (
        "Incidents",
        incident_rows,
        "Times from the onset: to detect (opened), to mitigate (first verified rollback), to resolve.",
    ),
    (
        "Still open from earlier weeks",
        still_open_rows,
        "Incidents opened before this week that are not resolved or have action items open.",
    ),
    ("Top regressions", regression_rows, "Degradations that began this week, most severe first."),
    ("Cost per feature and model", cost_rows, ""),
)


# Markdown ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or " "


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["None.", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows] + [""]


def to_markdown(review: WeeklyReview) -> str:
    out = [
        f"# Weekly reliability review: {review.period.label}",
        "",
        f"Period {display(review.period.since)} to {display(review.period.until)}. " + summary_line(review),
        "",
    ]
    for title, build, intro in SECTIONS:
        out += [f"## {title}", ""] + ([intro, ""] if intro else []) + md_table(*build(review))
    return "\n".join(out).rstrip() + "\n"


def summary_line(review: WeeklyReview) -> str:
    judged = [s for f in review.features for s in f.slos if s.met is not None]
    met = sum(1 for s in judged if s.met)
    burning = [f.feature for f in review.features if f.burning]
    failed = len(review.failed_changes)
    total = sum(s.count for s in review.by_kind.values())
    text = f"{met} of {len(judged)} objectives met; "
    text += f"{failed} of {total} changes failed; {len(review.incidents)} incident(s)"
    if review.still_open:
        text += f", {len(review.still_open)} from earlier weeks still open"
    if burning:
        text += f"; burn-rate alerts on {', '.join(burning)}"
    return text + "."


def post_text(review: WeeklyReview) -> str:
    """The short summary `review --post` sends."""
    lines = [f"Weekly reliability review {review.period.label}: {summary_line(review)}"]
    for f in review.features:
        missed = [s.objective.name for s in f.slos if s.met is False]
        if missed:
            lines.append(f"- {f.feature}: missed {', '.join(missed)}")
    for o in review.failed_changes[:5]:
        lines.append(
            f"- failed {o.change.kind} change on {o.change.feature}: "
            f"{o.change.from_value or '?'} → {o.change.to_value or '?'} ({o.why})"
        )
    return "\n".join(lines)


# HTML ----------------------------------------------------------------------------------


def html_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}
.charts{display:flex;flex-wrap:wrap;gap:8px}.charts>div{width:520px}"""


def to_html(review: WeeklyReview) -> str:
    """One file: the tables and the charts, plotly.js inlined once."""
    charts = [figures.burndown(s, review.period.since) for f in review.features for s in f.slos if s.burndown]
    charts.append(figures.cost_by_feature(review))
    divs = [
        pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=(i == 0),
            config={"displayModeBar": False},
            div_id=f"chart-{i}",
        )
        for i, fig in enumerate(charts)
    ]
    parts = [
        f"<h1>Weekly reliability review: {html.escape(review.period.label)}</h1>",
        f"<p>{html.escape(summary_line(review))}</p>",
        "<h2>Error budget burn-down</h2>",
        f'<div class="charts">{"".join(f"<div>{d}</div>" for d in divs[:-1])}</div>',
    ]
    for title, build, intro in SECTIONS:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if intro:
            parts.append(f"<p>{html.escape(intro)}</p>")
        parts.append(html_table(*build(review)))
        if build is cost_rows:
            parts.append(divs[-1])
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Weekly reliability '
        f"review {html.escape(review.period.label)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
