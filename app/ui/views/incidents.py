"""Incidents: open one (by hand, from a feature or from a detected degradation), then walk
its playbook, triage, follow the timeline, communicate and write the post-mortem."""

from datetime import datetime, time

import streamlit as st

from app.changes.declared import parse_time
from app.detection.thresholds import ThresholdsError, load_thresholds
from app.incidents import briefing
from app.incidents.attach import attach_finding
from app.incidents.log import SEVERITIES, STATUSES, IncidentError, IncidentLog
from app.incidents.playbooks import METRICS, load_playbooks, suggest
from app.ui import auth, common
from app.ui.components import incident_tabs as tabs

st.title("🧯 Incidents")
data_dir = common.datadir()
log = IncidentLog(data_dir, auth.identity())  # writes checked and recorded as this person
playbooks, playbook_errors = load_playbooks()
for error in playbook_errors:
    st.error(f"Playbook not loaded: {error}", icon="⚠️")

try:
    incidents = log.list()
except IncidentError as exc:
    st.error(str(exc), icon="🛑")
    st.stop()

prefill = st.session_state.get("incident_prefill")
wanted = st.session_state.get("incident_id") or st.query_params.get("incident")
labels = {i.id: f"{i.id} · {i.severity} · {i.status} · {i.title}" for i in incidents}


def attach_analysis(incident_id: str) -> None:
    """Run the analysis for the incident's features and attach the finding (or why none)."""
    try:
        attached = attach_finding(common.store(), log, incident_id, playbooks, load_thresholds(data_dir))
    except (ThresholdsError, IncidentError) as exc:
        st.session_state["flash"] = f"No analysis attached: {exc}"
        return
    st.session_state["flash"] = attached.summary()


def open_form() -> None:
    """Open an incident, pre-filled from a finding or the feature chosen on another page."""
    features = common.features()
    p = prefill or {}
    if p:
        st.info(
            f"Pre-filled from a detected degradation of {p.get('feature')} ({p.get('metric')}).", icon="🚨"
        )
    wanted_feature = p.get("feature") or st.session_state.get("feature") or st.query_params.get("feature")
    c1, c2 = st.columns(2)
    picked = c1.multiselect(
        "Features affected", features, default=[wanted_feature] if wanted_feature in features else []
    )
    metric_options = ["(from the logs)", *METRICS]
    given_metric = p.get("metric") if p.get("metric") in METRICS else None
    metric_choice = c2.selectbox(
        "Metric that degraded",
        metric_options,
        index=metric_options.index(given_metric) if given_metric else 0,
    )
    metric = None if metric_choice == metric_options[0] else metric_choice
    onset = parse_time(p.get("onset")) if p.get("onset") else None
    hints = briefing.opening_hints(common.store(), picked[0], onset, metric) if picked else None
    onset = hints.onset if hints else onset
    c3, c4 = st.columns(2)
    onset_day = c3.date_input(
        "Onset (first degraded bucket), UTC date", value=onset.date() if onset else None
    )
    onset_time = c4.time_input(
        "Onset time (UTC)",
        value=onset.time() if onset else time(0, 0),
        help="From the detection, else the feature's latest change: correct it "
        "if the degradation began elsewhere.",
    )
    if hints and onset_day and datetime.combine(onset_day, onset_time) != hints.onset:
        hints = briefing.opening_hints(
            common.store(), picked[0], datetime.combine(onset_day, onset_time), metric
        )
    finding = p.get("finding") if isinstance(p.get("finding"), dict) else {}
    change_kind = tabs.suspect_kind(p) or (hints.change_kind if hints else None)
    scope = (finding.get("scope") or {}).get("kind") if isinstance(finding.get("scope"), dict) else None
    scope = scope or (hints.scope if hints else None)
    found_metric = metric or (hints.metric if hints else None)
    ranked = suggest(playbooks, picked[0] if picked else None, found_metric, change_kind, scope)
    if hints:
        st.caption(
            f"From the logs: metric {found_metric or '?'}, change {change_kind or '?'}, "
            f"scope {scope or '?'}; playbooks are ordered by fit."
        )
    with st.form("open_incident"):
        default_title = p.get("title") or (f"{picked[0]} degraded" if picked else "")
        title = st.text_input("Title", value=default_title)
        c5, c6 = st.columns(2)
        severity = c5.selectbox("Severity", SEVERITIES, index=1)
        playbook_choice = c6.selectbox("Playbook", [pb.id for pb in ranked] + ["(none)"])
        c7, c8 = st.columns(2)
        commander = c7.text_input("Incident commander")
        comms_lead = c8.text_input("Communications lead")
        submitted = st.form_submit_button("🧯 Open incident", type="primary")
    if submitted:
        try:
            incident = log.open(
                title,
                picked,
                severity,
                commander=commander or None,
                comms_lead=comms_lead or None,
                playbook=None if playbook_choice == "(none)" else playbook_choice,
                metric=found_metric,
                onset=datetime.combine(onset_day, onset_time) if onset_day else None,
                suspect_change_ids=list(p.get("suspect_change_ids") or []),
                finding=finding or None,
                source="detection" if p else ("feature page" if wanted_feature else "manual"),
                actor=commander or None,
            )
        except IncidentError as exc:
            st.error(str(exc), icon="🛑")
            return
        if not finding:  # opened by hand: the analysis of its features, attached
            attach_analysis(incident.id)
        st.session_state.pop("incident_prefill", None)
        st.session_state["incident_id"] = incident.id
        # the picker below keeps its last choice unless told: show the new incident
        st.session_state["incident_select"] = incident.id
        st.query_params["incident"] = incident.id
        st.rerun()


with st.expander("➕ Open an incident", expanded=bool(prefill) or not incidents):
    open_form()
    if prefill and st.button("Discard the pre-filled finding"):
        st.session_state.pop("incident_prefill", None)
        st.rerun()

if not incidents:
    st.caption("No incidents yet.")
    st.stop()

ids = list(labels)
chosen = st.selectbox(
    "Incident",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=labels.get,
    key="incident_select",
)
st.session_state["incident_id"] = chosen
st.query_params["incident"] = chosen
incident = log.get(chosen)
playbook = next((pb for pb in playbooks if pb.id == incident.playbook), None)
if playbook is not None:
    incident = tabs.link_actions(data_dir, incident, playbook)
if st.button(
    "↻ Fetch flag histories",
    help="Read each flag system's own change history into "
    "the timeline now; otherwise the page shows the copy fetched last.",
):
    tabs.refresh_flag_histories(data_dir)
b = tabs.briefing(data_dir, incident)

if "flash" in st.session_state:
    st.success(st.session_state.pop("flash"), icon="✅")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Status", incident.status)
c2.metric("Severity", incident.severity)
c3.metric("Requests affected", f"{(b.totals or b.impact).requests:,}" if b.impact else "n/a")
c4.metric("Time to detect", tabs.ttd(incident))
if st.button(
    "🔬 Analyse the features again",
    key=f"reanalyse_{incident.id}",
    help="Runs the detection for this incident's features and attaches the finding "
    "that fits; fills the onset, metric, suspects and playbook when they are missing.",
):
    attach_analysis(incident.id)
    st.rerun()
with st.form(f"status_{incident.id}"):
    s1, s2 = st.columns([3, 1])
    new_status = s1.selectbox("Move to status", STATUSES, index=STATUSES.index(incident.status))
    if s2.form_submit_button("Update status"):
        tabs.write(lambda: log.set_status(incident.id, new_status, actor=incident.commander))

t_play, t_triage, t_timeline, t_comms, t_pm = st.tabs(
    ["🧭 Playbook", "🔎 Triage", "🕒 Timeline", "📣 Communicate", "📝 Post-mortem"]
)
with t_play:
    tabs.playbook_tab(data_dir, log, incident, playbook, b)
with t_triage:
    tabs.triage_tab(b)
with t_timeline:
    tabs.timeline_tab(log, incident, b)
with t_comms:
    tabs.communicate_tab(data_dir, incident, b)
with t_pm:
    tabs.postmortem_tab(data_dir, log, incident, b)
