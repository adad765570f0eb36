"""Per feature: the model and prompt it runs now, when they changed, quality vs baseline."""

import streamlit as st

from app.metrics import timeline as metrics
from app.timestamps import display
from app.ui import common

st.title("🗂️ Registry")
if not common.features():
    common.empty_state()
    st.stop()

entries = metrics.registry(common.store())
st.caption(
    "Current = the most common value in the last hour of data. Quality now = last 24 h "
    "of data; baseline = the 7 days before."
)
rows = []
for e in entries:
    delta = (
        e.quality_now - e.quality_baseline
        if e.quality_now is not None and e.quality_baseline is not None
        else None
    )
    rows.append(
        {
            "feature": e.feature,
            "model": e.model,
            "response model": e.response_model,
            "prompt": e.prompt_version,
            "model changed": display(e.model_changed_at, missing="–"),
            "prompt changed": display(e.prompt_changed_at, missing="–"),
            "quality now": None if e.quality_now is None else round(e.quality_now, 3),
            "7-day baseline": None if e.quality_baseline is None else round(e.quality_baseline, 3),
            "Δ": None if delta is None else round(delta, 3),
            "warnings": " · ".join(e.warnings),
        }
    )
st.dataframe(rows, hide_index=True, width="stretch")
for e in entries:
    for w in e.warnings:
        st.warning(f"**{e.feature}**: {w}", icon="⚠️")
