"""Review → Weekly review: objectives and error budgets, week over week, the changes that
failed, the incidents, the top regressions and the cost of one ISO week."""

import polars as pl
import streamlit as st

from app.review import export, figures
from app.review.report import week_bounds
from app.review.slos import SloConfigError
from app.ui import common
from app.ui.components import review_data

st.title("🗓️ Weekly review")
if not common.features():
    common.empty_state()
    st.stop()

dd, version = str(common.data_dir()), common.data_version()
weeks, default = review_data.weeks(dd, version)
week = st.selectbox(
    "ISO week",
    weeks,
    index=weeks.index(default) if default in weeks else 0,
    key="review_week",
    help="The default is the last complete week of the data, not of the clock.",
)
period = week_bounds(week)
try:
    review = review_data.weekly_review(
        dd, version, review_data.slos_version(dd), period.since, period.until, period.week
    )
except SloConfigError as exc:
    st.error(f"slos.yaml cannot be used: {exc}")
    st.stop()

st.caption(f"{period.label}, UTC. {export.summary_line(review)}")
md, html = st.columns(2)
md.download_button("⬇️ Markdown", export.to_markdown(review), f"review-{week}.md", "text/markdown")
html.download_button(
    "⬇️ HTML (one file, works offline)", export.to_html(review), f"review-{week}.html", "text/html"
)


def table(rows_of) -> None:
    header, rows = rows_of(review)
    if not rows:
        st.caption("None this week.")
        return
    st.dataframe(pl.DataFrame(rows, schema=header, orient="row"), hide_index=True, width="stretch")


def open_feature(feature: str) -> None:
    st.session_state["feature"] = feature
    st.switch_page("views/feature.py")


st.header("Objectives and error budgets")
st.caption(
    "Attainment over each objective's rolling window, ending with the week; burn rates "
    "at the end of the week (1× spends the budget exactly over the window)."
)
table(export.slo_rows)
for f in review.features:
    st.subheader(f.feature)
    if st.button(f"📈 Open the {f.feature} timeline", key=f"review_open_{f.feature}"):
        open_feature(f.feature)
    if not f.slos:
        st.info(f"No objectives for {f.feature} in slos.yaml: none is assumed.", icon="ℹ️")
    else:
        cols = st.columns(len(f.slos))
        for col, s in zip(cols, f.slos, strict=True):
            col.metric(
                f"{f.feature} · {s.objective.name}",
                export.pct(s.attainment, 2) if s.attainment is not None else "n/a",
                help=f"{export.sli_text(s)}, target {export.pct(s.objective.objective)} over "
                f"{s.window_days:g} days; {s.reason or ''}",
            )
            col.caption(
                f"Budget left {export.pct(s.budget_remaining_share, 1)} · burn 1h "
                f"{export.burn(s.burn_rates['1h'])} · alerts: {export.alerts_text(s)}"
            )
        charted = [s for s in f.slos if s.burndown]
        for col, s in zip(st.columns(max(len(charted), 1)), charted, strict=False):
            col.plotly_chart(figures.burndown(s, period.since), key=f"bd_{f.feature}_{s.objective.name}")
    wow = st.columns(4)
    for col, metric in zip(
        wow, ("quality_score", "error_rate", "latency_p95_ms", "cost_per_request_usd"), strict=True
    ):
        prev, now = f.week_over_week[metric]
        delta = None
        if prev is not None and now is not None and metric == "error_rate":
            delta = f"{100 * (now - prev):+.2f} pt"
        elif prev and now is not None:
            delta = f"{(now - prev) / prev:+.1%}"
        col.metric(
            f"{f.feature} · {metric}",
            export.format_value(metric, now),
            delta,
            delta_color="off",
            help="this week; the change is against the week before",
        )
        col.plotly_chart(
            figures.sparkline(f, metric), key=f"spark_{f.feature}_{metric}", config={"displayModeBar": False}
        )

st.header("Week over week")
table(export.wow_rows)
st.header("Changes")
st.caption(
    "A change failed when, within the failure horizon "
    f"({review.config.failure_horizon_hours:g} h), it was rolled back or reverted, or named "
    "as the top suspect of a finding or an incident (docs/review.md)."
)
table(export.kind_rows)
table(export.feature_change_rows)
st.subheader("Failed changes")
table(export.failed_rows)
st.header("Incidents")
table(export.incident_rows)
st.subheader("Still open from earlier weeks")
st.caption("Incidents opened before this week that are not resolved or have action items open.")
table(export.still_open_rows)
if (review.incidents or review.still_open) and st.button("🧯 Open the incidents", key="review_incidents"):
    st.switch_page("views/incidents.py")
st.header("Top regressions")
table(export.regression_rows)
st.header("Cost per feature and model")
table(export.cost_rows)
st.plotly_chart(figures.cost_by_feature(review), key="review_cost")
