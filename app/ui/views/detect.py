"""Detect: degradations across features, with their evidence, scope and suspects."""

import streamlit as st

from app.detection.findings import Finding, format_value
from app.detection.thresholds import ThresholdsError, thresholds_path
from app.timestamps import display
from app.ui import common
from app.ui.components.detection_overlay import analysis, open_incident
from app.ui.components.investigate_ui import compare_finding

SCOPE_LABEL = {"total": "🌐 whole feature", "partial": "🧩 partial", "single_user": "👤 single user"}

st.title("🚨 Detect")
version = common.data_version()  # read once per run: each read opens the store and the ledger
features = common.cached_features(str(common.data_dir()), version)
if not features:
    common.empty_state()
    st.stop()

c1, c2 = st.columns([2, 2])
with c2:
    window = common.pick_range("detect")
if window is None:
    st.info("No requests in this range.")
    st.stop()
since, until = window

# One analysis of every feature per range (cached on the data version): the feature picked
# below only narrows what is shown, so picking one reruns without analysing again, and a
# feature's findings are the same whether it is shown alone or with the others.
try:
    result = analysis(None, since, until, version)
except ThresholdsError as exc:
    st.error(f"Thresholds file problem: {exc}", icon="⚠️")
    st.stop()

with c1:
    choice = st.selectbox("Feature", ["All features", *features], key="detect_feature")
feature = None if choice == "All features" else choice
findings = [f for f in result.findings if feature in (None, f.feature)]
inconclusive = [i for i in result.inconclusive if feature in (None, i.feature)]
events = [e for e in result.events if feature is None or feature in e.features]

m1, m2, m3 = st.columns(3)
m1.metric("Findings", len(findings))
m2.metric("Features affected", len({f.feature for f in findings}))
m3.metric("Inconclusive", len(inconclusive))
st.caption(
    f"Window {display(result.since)} to {display(result.until)}, compared hour of day by "
    f"hour of day with up to a week before it; every feature analysed together. Thresholds: "
    f"`{thresholds_path(common.data_dir())}` (defaults when absent)."
)


def duration_text(f: Finding) -> str | None:
    if f.duration is None:
        return None
    minutes = int(f.duration.total_seconds() // 60)
    return f"lasted {minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"lasted {minutes} min"


def show_finding(i: int, f: Finding) -> None:
    with st.container(border=True):
        st.subheader(f"🔴 {f.feature}: {f.metric}")
        # Three short figures side by side; the times and the scope on a line of their own,
        # where they are never cut short.
        a, b, e = st.columns(3)
        a.metric("Before", format_value(f.metric, f.baseline))
        b.metric("Since onset", format_value(f.metric, f.current))
        e.metric("End", "ended" if f.ended else "ongoing", delta=duration_text(f), delta_color="off")
        st.markdown(
            f"**Onset** {display(f.onset)} · **End** {display(f.ended) if f.ended else 'ongoing'} · "
            f"**Scope** {SCOPE_LABEL.get(f.scope.kind, f.scope.kind)}"
        )
        st.caption(
            f"{f.shape} change · p = {f.p_value:.2g} (adjusted) · {f.n_current:,} "
            f"observations since the onset, {f.n_baseline:,} before"
        )
        # Static tables: a few rows each, the evidence read in full (a data grid per finding
        # is a canvas to set up in the browser, and truncates the sentences).
        if f.scope.slices:
            st.markdown("**Where it sits**")
            st.table(
                [
                    {
                        "dimension": s.dimension,
                        "value": s.value,
                        "share of requests": f"{100 * s.share:.1f}%",
                        "before": format_value(f.metric, s.baseline),
                        "since onset": format_value(f.metric, s.current),
                    }
                    for s in f.scope.slices
                ],
                hide_index=True,
            )
        st.markdown("**What changed** (best explanation first)")
        if f.suspects:
            st.table(
                [
                    {
                        "score": round(s.score, 2),
                        "kind": s.change.kind,
                        "key": s.change.key,
                        "change": f"{s.change.from_value or '?'} → {s.change.to_value or '?'}",
                        "when": display(s.change.timestamp),
                        "source": s.change.source,
                        "evidence": s.evidence,
                    }
                    for s in f.suspects
                ],
                hide_index=True,
            )
        else:
            st.caption("No recorded change explains it.")
        if st.button("🧯 Open incident", key=f"open_incident_{i}"):
            open_incident(f, f.feature)
        compare_finding(f)


for event in events:
    st.warning(f"**Cross-feature event:** {event.summary}. Each feature's finding is below.", icon="🌩️")
if not findings:
    st.success("No degradations in this window.", icon="✅")
for i, finding in enumerate(findings):
    show_finding(i, finding)

if inconclusive:
    with st.expander(f"⏳ Inconclusive ({len(inconclusive)}): too few samples to judge"):
        st.dataframe([i.as_dict() for i in inconclusive], hide_index=True, width="stretch")
