"""Every feature at a glance, against the previous period of equal length."""

import polars as pl
import streamlit as st

from app.timestamps import display
from app.ui import common
from app.ui.components.burn_banner import burn_banner

st.title("📊 Overview")
if not common.features():
    common.empty_state()
    st.stop()

burn_banner()
window = common.pick_range("overview", default="Last 24 hours")
since, until = window
df = common.cached_overview(str(common.data_dir()), common.data_version(), since, until)
st.caption(
    f"{display(since)} to {display(until)}, compared with the "
    "previous period of equal length. ⚠️ marks a change for the worse that is larger "
    "than noise (docs/metrics.md); the Detect page runs the full tests."
)
if df.is_empty():
    st.info("No requests in this time range.")
    st.stop()

COLUMNS = (
    ("requests", "Volume", "{:,.0f}"),
    ("error_rate", "Error rate", "{:.2%}"),
    ("quality_score", "Quality", "{:.3f}"),
    ("latency_p95_ms", "p95 latency", "{:,.0f} ms"),
    ("cost_per_request_usd", "Cost/request", "${:.4f}"),
    ("negative_feedback_rate", "Neg. feedback", "{:.1%}"),
)


def cell(value, change, fmt, worse) -> str:
    if value is None:
        return "–"
    text = fmt.format(value)
    if change is None or change != change:
        return text
    return f"{text}  {'↑' if change > 0 else '↓'}{abs(change):.1%}{' ⚠️' if worse else ''}"


rows = []
for r in df.iter_rows(named=True):
    row = {"Feature": r["feature"]}
    for col, label, fmt in COLUMNS:
        row[label] = cell(r[col], r.get(f"{col}_change"), fmt, r.get(f"{col}_worse"))
    at = r.get("last_change_at")
    row["Last change"] = f"{r['last_change']} ({display(at)})" if at else "–"
    rows.append(row)
st.dataframe(pl.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("Open a feature")
cols = st.columns(min(len(df), 5))
for i, feature in enumerate(df["feature"].to_list()):
    if cols[i % len(cols)].button(f"📈 {feature}", key=f"open_{feature}"):
        st.session_state["feature"] = feature
        st.switch_page("views/feature.py")
