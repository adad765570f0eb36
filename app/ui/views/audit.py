"""The audit trail: every press of a flag action, its intent and its outcome."""

import streamlit as st

from app.changes import recorded
from app.flags.base import FlagError
from app.rollback import history
from app.storage import trail
from app.timestamps import display
from app.ui import common

st.title("📜 Audit trail")
data_dir = common.datadir()
try:
    features = sorted(data_dir.flag_config().features)
except FlagError as exc:
    st.error(f"Flag configuration: {exc.message}")
    features = []

c1, c2, c3 = st.columns(3)
feature = c1.selectbox("Feature", ["(all)", *features], key="audit_feature")
outcome = c2.selectbox(
    "Outcome", ["(all)", "verified", "unverified", "failed", "no outcome recorded"], key="audit_outcome"
)
incident = c3.text_input("Incident", key="audit_incident").strip()

rows = trail.entries(
    data_dir,
    feature=None if feature == "(all)" else feature,
    outcome={"(all)": None, "no outcome recorded": "none"}.get(outcome, outcome),
    incident_id=incident or None,
)
if rows:
    st.dataframe(
        [
            {
                "requested": display(e.requested_at, seconds=True),
                "operator": e.operator,
                "role": e.operator_role,
                "feature": e.feature,
                "action": e.action,
                "backend": e.backend,
                "flag": e.flag,
                "environment": e.environment,
                "before": recorded.summary(e.before, e.role),
                "after": recorded.summary(e.after, e.role),
                "outcome": e.outcome or "no outcome recorded",
                "latency (ms)": e.latency_ms,
                "changed": {True: "yes", False: "no", None: "?"}[e.changed],
                "reason": e.reason,
                "incident": e.incident_id,
                "message": e.message,
                "action id": e.action_id,
            }
            for e in rows
        ],
        hide_index=True,
        width="stretch",
        key="audit_table",
    )
    latest = rows[0]
    st.markdown(
        f"Latest press: **{latest.operator or 'unknown'}** "
        f"({latest.operator_role or 'role not recorded'}) · {latest.action} "
        f"{latest.feature} · {latest.outcome or 'no outcome recorded'} · "
        f"{display(latest.requested_at, seconds=True)}"
    )
    st.caption(
        'One row per press. "No outcome recorded" means the process stopped between '
        "calling the flag backend and recording the result: check the flag's state."
    )
else:
    st.info("No flag actions recorded yet (with these filters).")

st.subheader("Changes from the flag backends' own histories")
if st.button("🔄 Refresh from backends", key="audit_sync"):
    try:
        fetched = history.sync_history(data_dir, min_interval_s=10)
    except FlagError as exc:
        st.error(f"Flag configuration: {exc.message}")
        fetched = {}
    for name, status in fetched.items():
        (st.warning if status.startswith("failed") else st.caption)(f"{name}: {status}")
history = recorded.change_events(data_dir, None if feature == "(all)" else feature, own=False)
if history:
    st.dataframe(
        [
            {
                "time": display(e.timestamp),
                "feature": e.feature,
                "flag": e.key,
                "from": e.from_value,
                "to": e.to_value,
                "author": e.author,
                "description": e.description,
            }
            for e in history
        ],
        hide_index=True,
        width="stretch",
        key="history_table",
    )
else:
    st.caption("No cached backend history: refresh to fetch it.")
