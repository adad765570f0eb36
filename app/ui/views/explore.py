"""Explore: the requests of a feature and time range, filtered, with facets; a shareable URL."""

import streamlit as st

from app.investigate import request_table
from app.investigate.facets import FACET_METRICS
from app.investigate.filters import MISSING, Condition, Scope
from app.investigate.links import compare_params, explore_link
from app.storage.schema import FIELD_NAMES
from app.ui import common
from app.ui.components import investigate_ui as ui
from app.ui.components.investigate_evidence import render_save_to_incident
from app.ui.components.investigate_export import render_export

METRIC_LABELS = {
    "error_rate": "error rate",
    "quality_score": "mean quality",
    "latency_p95_ms": "p95 latency",
    "cost_per_request_usd": "cost per request",
}
OPERATORS = {"equals": "=", "any of (a|b)": "=", "at least": ">=", "below": "<", "is missing": "="}

st.title("🔎 Explore")
features = common.features()
if not features:
    common.empty_state()
    st.stop()

c1, c2 = st.columns([1, 1])
with c1:
    feature = ui.pick_feature(features, "explore_feature")
with c2:
    ui.from_url("explore_metric", "metric", "error_rate")
    if st.session_state["explore_metric"] not in FACET_METRICS:
        st.session_state["explore_metric"] = "error_rate"
    metric = st.selectbox(
        "Rank facet values by their share of",
        FACET_METRICS,
        format_func=METRIC_LABELS.get,
        key="explore_metric",
    )
window = ui.pick_window("explore", feature)
if window is None:
    st.stop()
since, until = window
extras = ui.extras_of(feature)

ui.from_url("explore_where", "where")
with st.expander("➕ Add a condition"):
    a, b, c, d = st.columns([2, 1.3, 2, 0.8])
    a.selectbox("Field", [*FIELD_NAMES, *extras], key="explore_new_field")
    b.selectbox("Operator", list(OPERATORS), key="explore_new_op")
    c.text_input("Value", key="explore_new_value")

    def add_condition() -> None:
        # read the widgets' state now: the callback runs before the next script run
        field, op = st.session_state["explore_new_field"], st.session_state["explore_new_op"]
        value = st.session_state["explore_new_value"]
        text = f"{field}={MISSING}" if op == "is missing" else f"{field}{OPERATORS[op]}{value}"
        current = st.session_state["explore_where"]
        st.session_state["explore_where"] = f"{current},{text}" if current else text

    d.button("Add", key="explore_add", on_click=add_condition)
where = st.text_input(
    "Filter",
    key="explore_where",
    help="field=value, field=a|b, field>=x, field<x, field=(missing); comma-separated conditions all apply",
)
flt = ui.parse_filter(where, "Filter")
if flt is None:
    st.stop()
scope = Scope(feature, since, until, flt)
dd, version = str(common.data_dir()), common.data_version()
ui.from_url("explore_page", "page", "1")
try:
    result = ui.cached_facets(dd, version, scope, metric, extras)
except ValueError as exc:
    st.error(str(exc), icon="⚠️")
    st.stop()
ui.to_url(feature=feature, since=since, until=until, where=flt.text(), metric=metric)

m1, m2, m3, m4, m5 = st.columns(5)
m1.metric("Requests", f"{result.total:,}")
m2.metric("Error rate", ui.shown("error_rate", result.overall.error_rate))
m3.metric("Mean quality", ui.shown("quality_score", result.overall.quality_score))
m4.metric("p95 latency", ui.shown("latency_p95_ms", result.overall.latency_p95_ms))
m5.metric("Cost / request", ui.shown("cost_per_request_usd", result.overall.cost_per_request_usd))
st.caption(f"Share this view: `{explore_link(scope, metric)}`")

st.subheader("Facets")
st.caption(
    f"Values ranked by how much they add to the {METRIC_LABELS[metric]} of the whole "
    "(docs/investigate.md). Pick one to filter to it."
)
cols = st.columns(3)
for i, facet in enumerate(result.facets):
    with cols[i % 3]:
        st.markdown(f"**{facet.dimension}**")
        st.dataframe(
            [
                {
                    "value": v.value,
                    "requests": v.requests,
                    "errors": ui.shown("error_rate", v.error_rate),
                    "quality": ui.shown("quality_score", v.quality_score),
                    "p95": ui.shown("latency_p95_ms", v.latency_p95_ms),
                    "cost": ui.shown("cost_per_request_usd", v.cost_per_request_usd),
                    "contribution": round(v.contribution or 0.0, 4),
                }
                for v in facet.values
            ],
            hide_index=True,
            width="stretch",
            key=f"facet_{facet.dimension}",
        )

pick1, pick2, pick3 = st.columns([2, 3, 1])
dims = [f.dimension for f in result.facets if f.values]
dim = pick1.selectbox("Facet", dims, key="explore_facet_dim") if dims else None
facet = result.facet(dim) if dim else None
choice = pick2.selectbox("Value", [v.value for v in facet.values] if facet else [], key="explore_facet_value")


def filter_to(dimension: str, value: str) -> None:
    cond = Condition(dimension, "missing") if value == MISSING else Condition(dimension, "eq", (value,))
    st.session_state["explore_where"] = flt.with_condition(cond).text()
    st.session_state["explore_page"] = "1"


pick3.button(
    "Filter to it", key="explore_facet_apply", disabled=choice is None, on_click=filter_to, args=(dim, choice)
)
if facet and choice is not None:
    base = flt.without(dim)
    chosen = base.with_condition(Condition(dim, "eq", (choice,)))
    others = [v.value for v in facet.values if v.value != choice and v.value != MISSING]
    if others:
        rest = base.with_condition(Condition(dim, "in" if len(others) > 1 else "eq", tuple(others)))
        st.page_link(
            "views/compare.py",
            label=f"⚖️ Compare {dim} = {choice} with the other values shown",
            query_params=compare_params(feature, rest, chosen, since, until),
        )

st.subheader("Requests")
o1, o2 = st.columns([1, 1])
order = o1.selectbox("Order", list(request_table.ORDERS), key="explore_order")
try:
    page_no = max(1, int(st.session_state["explore_page"]))
except ValueError:
    page_no = 1
pages = max(1, -(-result.total // request_table.PAGE_SIZE))
page_no = min(page_no, pages)
page_no = int(o2.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=page_no, step=1))
st.session_state["explore_page"] = str(page_no)
ui.to_url(page=page_no if page_no > 1 else None)
page = ui.cached_page(dd, version, scope, (page_no - 1) * request_table.PAGE_SIZE, order, extras)
st.dataframe(
    [{k: request_table.truncate(r.get(k)) for k in page.columns} for r in page.rows],
    hide_index=True,
    width="stretch",
    key="explore_requests",
)
st.caption(
    f"Requests {page.offset + 1:,} to {page.offset + len(page.rows):,} of "
    f"{page.total:,}. Long text is cut; pick a request to see it whole."
)
ids = [r["request_id"] for r in page.rows if r.get("request_id")]
if ids:
    picked = st.selectbox("Whole request", ["(none)", *ids], key="explore_whole")
    if picked != "(none)":
        st.json(request_table.request(common.store(), feature, picked), expanded=True)

render_export(scope, extras)
render_save_to_incident(
    feature,
    f"Explore {flt.text() or 'every request'}",
    explore_link(scope, metric),
    [
        {
            "dimension": f.dimension,
            "value": v.value,
            "requests": v.requests,
            METRIC_LABELS[metric]: ui.shown(metric, v.metric(metric)),
            "contribution": round(v.contribution or 0.0, 4),
        }
        for f in result.facets
        for v in f.values[:2]
    ],
    key="explore_save",
)
