"""One feature: metrics over time with every change laid over them; the flag actions."""

import streamlit as st

from app.detection.findings import format_value, iso_z
from app.metrics import timeline as metrics
from app.storage.schema import SPLIT_DIMENSIONS
from app.timestamps import display
from app.ui import common
from app.ui.charts import timeline_figure
from app.ui.components.detection_overlay import findings_for, onsets_of, open_incident
from app.ui.components.flag_actions import render_flag_actions
from app.ui.components.investigate_ui import compare_finding

st.title("📈 Feature timeline")
features = common.features()
if not features:
    common.empty_state()
    st.stop()

c1, c2, c3, c4 = st.columns([2, 2, 1.3, 1.7])
with c1:
    feature = common.selected_feature(features)
with c2:
    window = common.pick_range("feature", feature)
if window is None:
    st.info(f"No requests stored for {feature}.")
    st.stop()
since, until = window
with c3:
    auto = metrics.choose_bucket(since, until)
    bucket = st.selectbox(
        "Bucket", ["auto", *metrics.BUCKET_NAMES], key="bucket", help=f"auto = {auto} for this range"
    )
    bucket = auto if bucket == "auto" else bucket
with c4:
    extras = common.store().extra_columns(feature)
    split = st.selectbox("Split by", ["(none)", *SPLIT_DIMENSIONS, *extras], key="split")
    split = None if split == "(none)" else split

df = common.cached_timeline(
    str(common.data_dir()), common.data_version(), feature, since, until, bucket, split
)
events = common.timeline_changes(feature, since, until)
found = findings_for(feature, since, until)
onsets = onsets_of(found)

if df.is_empty():
    st.info("No requests for this feature in the time range.")
else:
    st.plotly_chart(timeline_figure(df, events, onsets, title=feature), width="stretch", key="timeline")
    st.caption(
        f"{df['requests'].sum():,} requests, bucket {bucket}. Vertical lines are "
        "changes (model purple, prompt orange, flag blue, config grey; dotted = silent "
        "provider update); dashed red lines are detected onsets."
    )

st.subheader("Detected degradations")
if found == []:
    st.caption("No degradation detected in this window.")
for f in found or []:
    top = f.suspects[0] if f.suspects else None
    suspect = (
        f"most likely cause: **{top.change.kind} {top.change.key}** "
        f"{top.change.from_value or '?'} → {top.change.to_value or '?'} "
        f"(score {top.score:.2f}, {top.change.source})"
        if top
        else "no suspect change"
    )
    st.warning(
        f"**{f.metric}** {format_value(f.metric, f.baseline)} → "
        f"{format_value(f.metric, f.current)} since {iso_z(f.onset)} · scope "
        f"{f.scope.kind} · {suspect}",
        icon="🚨",
    )
    compare_finding(f)
if st.button("🧯 Open incident", key="open_incident", type="primary" if found else "secondary"):
    open_incident(found[0] if found else None, feature)

st.subheader("Changes in this window")
if events:
    st.dataframe(
        [
            {
                "time": display(e.timestamp),
                "kind": e.kind,
                "key": e.key,
                "from": e.from_value,
                "to": e.to_value,
                "author": e.author,
                "source": e.source,
                "silent update": "yes" if e.silent_update else "",
                "description": e.description,
            }
            for e in events
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.caption("No change events in this window.")

st.subheader("Flag actions")
render_flag_actions(common.data_dir(), feature)
