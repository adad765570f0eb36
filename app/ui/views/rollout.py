"""Rollouts: canary against control with confidence intervals, the ladder, the sample-size advisor."""

from datetime import timedelta

import streamlit as st

from app.detection.findings import format_value
from app.detection.thresholds import ThresholdsError, load_thresholds
from app.rollout import guardrails
from app.rollout import ladder as rollout
from app.timestamps import display, parse
from app.ui import common

st.title("🚦 Rollouts")
features = common.features()
if not features:
    common.empty_state()
    st.stop()

feature = common.selected_feature(features)
try:
    thresholds = load_thresholds(common.data_dir())
except ThresholdsError as exc:
    st.error(f"Thresholds file problem: {exc}", icon="⚠️")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=16)
def cached_status(dd: str, version: str, feature: str) -> rollout.LadderStatus:
    from pathlib import Path

    from app.storage.store import Store

    return rollout.ladder_status(Store(Path(dd)), feature, load_thresholds(Path(dd)))


status = cached_status(str(common.data_dir()), common.data_version(), feature)
icons = {"rollback": "🛑", "extend": "⏳", "pass": "✅", "complete": "🏁", "no-canary": "➖", "no-data": "📭"}
st.subheader(f"{icons.get(status.verdict, '')} {status.verdict}")
st.write(status.reason)
if status.flag_error:
    st.warning(
        f"The rollout flag cannot be read, so the ladder cannot advance: {status.flag_error}", icon="⚠️"
    )

cmp = status.comparison
if cmp is not None and cmp.canary is not None:
    serving = status.serving_percent
    between = (
        f"; serving {serving:g}%, between steps"
        if serving is not None and abs(serving - status.step_percent) > 1e-6
        else ""
    )
    st.markdown(
        f"**Ladder**: step {status.step + 1} of {len(thresholds.ladder)} "
        f"({status.step_percent:g}%{between}), next {status.next_percent or 100:g}%"
    )
    a, b = st.columns(2)
    a.progress(
        min(status.hours_at_step / max(status.hours_needed, 1e-9), 1.0),
        text=f"time at step {status.hours_at_step:.1f} h of {status.hours_needed:g} h",
    )
    b.progress(
        min(status.samples / max(status.samples_needed, 1), 1.0),
        text=f"canary requests {status.samples:,} of {status.samples_needed:,}",
    )
    st.caption(
        " → ".join(
            f"{'**' if i == status.step else ''}{s.percent:g}%{'**' if i == status.step else ''}"
            for i, s in enumerate(thresholds.ladder)
        )
        + f" · since {display(cmp.since)}, control and canary over the same hours"
    )

    st.subheader("Variants side by side (95% intervals)")
    st.dataframe(
        [
            {
                "variant": arm.variant,
                "requests": arm.requests,
                "error rate": (
                    f"{100 * arm.error_rate:.2f}% [{100 * arm.error_ci[0]:.2f}, {100 * arm.error_ci[1]:.2f}]"
                ),
                "quality": (
                    f"{arm.quality_score:.3f} [{arm.quality_ci[0]:.3f}, {arm.quality_ci[1]:.3f}]"
                    if arm.quality_ci
                    else "n/a"
                ),
                "p95 latency": (
                    f"{arm.latency_p95_ms:,.0f} ms [{arm.latency_p95_ci[0]:,.0f}, "
                    f"{arm.latency_p95_ci[1]:,.0f}]"
                    if arm.latency_p95_ci
                    else "n/a"
                ),
                "cost / request": format_value("cost_per_request_usd", arm.cost_per_request_usd),
                "negative feedback": format_value("negative_feedback_rate", arm.negative_feedback_rate),
            }
            for arm in cmp.arms
        ],
        hide_index=True,
        width="stretch",
    )

    st.subheader("Guardrails (always-valid sequential test)")
    st.dataframe(
        [
            {
                "metric": g.metric,
                "control": format_value(g.metric, g.control),
                "canary": format_value(g.metric, g.canary),
                "difference": (
                    f"{100 * g.difference:+.1f}%" if g.metric == "latency_p95_ms" else f"{g.difference:+.4f}"
                ),
                "95% interval": (
                    f"[{100 * g.ci[0]:+.1f}%, {100 * g.ci[1]:+.1f}%]"
                    if g.metric == "latency_p95_ms"
                    else f"[{g.ci[0]:+.4f}, {g.ci[1]:+.4f}]"
                ),
                "p (always valid)": f"{g.p_value:.2g}",
                "status": "🛑 tripped" if g.tripped else "✅ holds",
            }
            for g in cmp.guardrails
        ],
        hide_index=True,
        width="stretch",
    )
elif cmp is not None:
    st.dataframe(
        [
            {"variant": arm.variant, "requests": arm.requests, "error rate": f"{100 * arm.error_rate:.2f}%"}
            for arm in cmp.arms
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader("Sample-size advisor")
bounds = common.cached_bounds(str(common.data_dir()), common.data_version(), feature)
per_day = 0.0
if bounds[1] is not None:
    per_day = guardrails.daily_traffic(common.store(), feature, bounds[1] + timedelta(microseconds=1))
c1, c2, c3 = st.columns(3)
share = (
    c1.number_input(
        "Canary share (%)", 0.1, 100.0, float(status.step_percent or thresholds.ladder[0].percent), step=1.0
    )
    / 100
)
base = c2.number_input("Current error rate (%)", 0.01, 50.0, 1.0, step=0.1) / 100
effect = c3.number_input("Rise to detect (points, %)", 0.05, 50.0, 1.0, step=0.1) / 100
advice = guardrails.advise(per_day, share, base, effect)
st.info(advice.text, icon="🧮")

log = rollout.actions_log(common.data_dir(), feature, limit=20)
if log:
    st.subheader("Guardrail actions")
    st.dataframe(
        [
            {
                "at": display(parse(r["at"])),
                "kind": r["kind"],
                "applied": bool(r["applied"]),
                "canary": r["canary"],
            }
            for r in log
        ],
        hide_index=True,
        width="stretch",
    )
