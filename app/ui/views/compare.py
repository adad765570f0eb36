"""Compare: two arms of a feature side by side, every metric with 95% intervals and p-values,
both over time, and each arm's worst requests; a shareable URL."""

import streamlit as st

from app.detection.thresholds import METRIC_NAMES
from app.investigate import request_table
from app.investigate.compare import TIMELINE_SQL, before_after
from app.investigate.filters import Scope
from app.investigate.links import compare_link
from app.metrics.timeline import choose_bucket
from app.timestamps import display
from app.ui import common
from app.ui.components import investigate_ui as ui
from app.ui.components.investigate_evidence import render_save_to_incident

SAMPLES = 20

st.title("⚖️ Compare")
features = common.features()
if not features:
    common.empty_state()
    st.stop()

feature = ui.pick_feature(features, "compare_feature")
window = ui.pick_window("compare", feature)
if window is None:
    st.stop()
since, until = window
extras = ui.extras_of(feature)

ui.from_url("compare_a", "a")
ui.from_url("compare_b", "b")
changes = common.timeline_changes(feature, since, until)
if changes:
    with st.expander("⏱️ Before and after a change"):
        by_label = {
            f"{display(e.timestamp)} · {e.kind} {e.key or ''}: "
            f"{e.from_value or '?'} → {e.to_value or '?'} ({e.source})": e
            for e in changes
        }
        st.selectbox("Change", list(by_label), key="compare_change")

        def split_at_change() -> None:
            before, after = before_after(by_label[st.session_state["compare_change"]].timestamp)
            st.session_state["compare_a"], st.session_state["compare_b"] = (before.text(), after.text())

        st.button("Compare before with after", key="compare_change_go", on_click=split_at_change)
ca, cb = st.columns(2)
text_a = ca.text_input(
    "Arm a (baseline)",
    key="compare_a",
    placeholder="prompt_version=v7",
    help="field=value[,field=value...]; empty = every request",
)
text_b = cb.text_input("Arm b", key="compare_b", placeholder="prompt_version=v8")
flt_a, flt_b = ui.parse_filter(text_a, "Arm a"), ui.parse_filter(text_b, "Arm b")
if flt_a is None or flt_b is None:
    st.stop()
if not flt_a and not flt_b:
    st.info(
        "Give each arm a filter, e.g. `prompt_version=v7` and `prompt_version=v8`, or "
        "`variant=control` and `variant=canary`.",
        icon="⚖️",
    )
    st.stop()
a, b = Scope(feature, since, until, flt_a), Scope(feature, since, until, flt_b)
dd, version = str(common.data_dir()), common.data_version()
try:
    result = ui.cached_compare(dd, version, a, b, extras)
except ValueError as exc:
    st.error(str(exc), icon="⚠️")
    st.stop()

ui.from_url("compare_metric", "metric", "error_rate")
if st.session_state["compare_metric"] not in METRIC_NAMES:
    st.session_state["compare_metric"] = "error_rate"
ui.to_url(
    feature=feature,
    since=since,
    until=until,
    a=flt_a.text(),
    b=flt_b.text(),
    metric=st.session_state["compare_metric"],
)
link = compare_link(feature, flt_a, flt_b, since, until, st.session_state["compare_metric"])
st.caption(
    f"a = `{flt_a.text() or '(all)'}`: {result.a.requests:,} requests · "
    f"b = `{flt_b.text() or '(all)'}`: {result.b.requests:,} requests · "
    f"share this view: `{link}`"
)


def interval(metric: str, ci: tuple | None) -> str:
    return "" if ci is None else f"{ui.shown(metric, ci[0])} – {ui.shown(metric, ci[1])}"


def signed(metric: str, x: float | None) -> str:
    if x is None:
        return "n/a"
    return ("+" if x > 0 else "−" if x < 0 else "±") + ui.shown(metric, abs(x))


# A static table (not a grid): five rows, read and copied as text.
st.table(
    [
        {
            "metric": m.metric,
            "a": ui.shown(m.metric, m.a),
            "a 95% CI": interval(m.metric, m.a_ci),
            "b": ui.shown(m.metric, m.b),
            "b 95% CI": interval(m.metric, m.b_ci),
            "difference (b − a)": signed(m.metric, m.difference),
            "p-value": ui.p_text(m.p_value),
            "n a / n b": f"{m.n_a:,} / {m.n_b:,}",
        }
        for m in result.metrics
    ]
)
st.caption(
    "Intervals: Wilson for rates, normal for means, order statistics for the p95. "
    "p-values are two-sided: two-proportion (Cochran-Mantel-Haenszel) for rates, "
    "Mann-Whitney for quality, latency and cost (docs/investigate.md)."
)

metric = st.selectbox("Over time", list(TIMELINE_SQL), key="compare_metric")
bucket = choose_bucket(since, until, target_points=60)
rows = ui.cached_arm_timeline(dd, version, a, b, metric, bucket, extras)
st.plotly_chart(
    ui.arms_figure(rows, metric, {"a": flt_a.text() or "(all)", "b": flt_b.text() or "(all)"}),
    width="stretch",
    key="compare_chart",
)

st.subheader("Worst requests of each arm")
st.caption("Errors first, then the lowest quality, then the slowest.")
left, right = st.columns(2)
for column, name, scope in ((left, "a", a), (right, "b", b)):
    with column:
        st.markdown(f"**{name}: {scope.filter.text() or '(all)'}**")
        page = ui.cached_page(dd, version, scope, 0, "worst", extras)
        keep = (
            "timestamp",
            "request_id",
            "error",
            "quality_score",
            "latency_ms",
            "cost_usd",
            "prompt_version",
            "model",
            "variant",
        )
        st.dataframe(
            [{k: request_table.truncate(r.get(k)) for k in keep} for r in page.rows[:SAMPLES]],
            hide_index=True,
            width="stretch",
            key=f"compare_samples_{name}",
        )

render_save_to_incident(
    feature,
    f"Compare {flt_a.text() or '(all)'} with {flt_b.text() or '(all)'}",
    link,
    [
        {
            "metric": m.metric,
            "a": ui.shown(m.metric, m.a),
            "b": ui.shown(m.metric, m.b),
            "p": ui.p_text(m.p_value),
        }
        for m in result.metrics
    ],
    key="compare_save",
)
