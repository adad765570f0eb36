"""The tabs of the incident page: playbook, triage, timeline, communicate, post-mortem.

Widgets only; every decision and number comes from the logic package (incidents, briefing,
impact, notify, postmortem, actions through the flag-actions panel).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import streamlit as st

from app.changes.declared import parse_time
from app.flags.base import FlagError, FlagRole
from app.flags.config import load_config
from app.incidents import notify, playbooks, postmortem
from app.incidents.briefing import Briefing, brief, facts, link_actions_to_steps, money
from app.incidents.log import ACTION_ITEM_TYPES, Incident, IncidentError, IncidentLog
from app.incidents.playbooks import Check, Playbook, Step, fill
from app.incidents.timeline import format_duration
from app.metrics import timeline as metrics
from app.rollback import history
from app.storage.readonly import ReadOnlyQueryError
from app.timestamps import display
from app.ui import auth, common
from app.ui.components.investigate_ui import compare_preset_link

PHASE_ICONS = {
    "detect": "🚨",
    "triage": "🔎",
    "rollback": "⏪",
    "communicate": "📣",
    "investigate": "🧪",
    "postmortem": "📝",
}
STATE_ICONS = {"done": "✅", "skipped": "⏭️", "pending": "⬜"}

try:
    from app.ui.components.flag_actions import render_flag_actions
except ImportError:  # the flag-actions panel is not part of this build
    render_flag_actions = None


def write(call: Callable[[], Any]) -> bool:
    """Run one incident write; a refused or failed write is shown, never swallowed."""
    try:
        call()
    except IncidentError as exc:
        st.error(str(exc), icon="🛑")
        return False
    st.rerun()
    return True


def suspect_kind(prefill: dict[str, Any]) -> str | None:
    finding = prefill.get("finding")
    suspects = finding.get("suspects") if isinstance(finding, dict) else None
    if suspects and isinstance(suspects[0], dict):
        return "silent_update" if suspects[0].get("silent_update") else suspects[0].get("kind")
    return None


def link_actions(data_dir: Path, incident: Incident, playbook: Playbook) -> Incident:
    try:
        return link_actions_to_steps(data_dir, incident, playbook)
    except IncidentError as exc:
        st.error(str(exc), icon="🛑")
        return incident


def briefing(data_dir: Path, incident: Incident) -> Briefing:
    return brief(data_dir, incident)


def refresh_flag_histories(data_dir: Path) -> None:
    """Fetch every flag backend's history now (the briefing itself only reads the cache)."""
    try:
        status = history.sync_history(data_dir, force=True)
    except FlagError as exc:
        st.error(f"Flag configuration: {exc.message}", icon="🛑")
        return
    for name, line in status.items():
        if line.startswith("failed"):
            st.warning(f"Flag history of {name}: {line}", icon="⚠️")
        else:
            st.caption(f"Flag history of {name}: {line}")


def ttd(incident: Incident) -> str:
    return format_duration(incident.opened_at - incident.onset) if incident.onset else "n/a"


def _rollout_flag(data_dir: Path, feature: str | None) -> str | None:
    try:
        flags = load_config(data_dir).features.get(feature or "")
    except FlagError:
        return None
    ref = flags.flags.get(FlagRole.ROLLOUT) if flags else None
    return ref.key if ref else None


# Playbook -------------------------------------------------------------------------------


def playbook_tab(
    data_dir: Path, log: IncidentLog, incident: Incident, playbook: Playbook | None, b: Briefing
) -> None:
    if playbook is None:
        st.info("No playbook chosen for this incident.", icon="🧭")
        return
    st.markdown(f"**{playbook.title}**: {playbook.description}")
    states = [incident.step(s.id).state for s in playbook.steps]
    finished = sum(s != "pending" for s in states)
    st.progress(finished / len(states), text=f"{finished} of {len(states)} steps done or skipped")
    current = next(
        (s.id for s, state in zip(playbook.steps, states, strict=True) if state == "pending"), None
    )
    known = facts(b, _rollout_flag(data_dir, incident.feature))
    # One flag-actions panel per page (its dialog is shared): in the chosen action step, else
    # the first action step still pending, else the last one that ran an action.
    choice_key = f"action_step_{incident.id}"
    with_actions = [s for s in playbook.steps if s.actions]
    ran = [s.id for s in with_actions if incident.step(s.id).actions]
    action_step = st.session_state.get(choice_key) or next(
        (s.id for s in with_actions if incident.step(s.id).state == "pending"), ran[-1] if ran else None
    )
    for number, step in enumerate(playbook.steps, 1):
        progress = incident.step(step.id)
        label = (
            f"{STATE_ICONS[progress.state]} {number}. {PHASE_ICONS[step.phase]} {step.phase}: "
            f"{fill(step.title, known)}"
        )
        with st.expander(label, expanded=step.id in (current, action_step)):
            _step(data_dir, log, incident, step, known, b, panel=step.id == action_step)
    _notes(log, incident)


def _step(
    data_dir: Path,
    log: IncidentLog,
    incident: Incident,
    step: Step,
    known: dict[str, Any],
    b: Briefing,
    panel: bool,
) -> None:
    st.markdown(fill(step.instructions, known))
    for check in step.checks:
        _check(check, incident, known, b)
    progress = incident.step(step.id)
    if step.actions:
        st.caption(
            "Actions: "
            + ", ".join(a.label() for a in step.actions)
            + ". The step is done once one of them is verified by read-back."
        )
        for result in progress.actions:
            icon = "✅" if result.get("outcome") == "verified" else "⚠️"
            st.write(
                f"{icon} {result.get('action')} {result.get('flag')}: **{result.get('outcome')}**"
                f" ({result.get('message')})"
            )
        if render_flag_actions is None:
            st.info(
                "The flag-actions panel is not available in this build; use "
                f"`rollback-desk flags ... --incident {incident.id}`.",
                icon="ℹ️",
            )
        elif incident.feature and panel:
            result = render_flag_actions(
                data_dir, incident.feature, incident_id=incident.id, allowed={a.action for a in step.actions}
            )
            if result is not None:
                st.session_state[f"action_step_{incident.id}"] = step.id  # keep the outcome in view
                write(
                    lambda: log.record_step_action(
                        incident.id,
                        step.id,
                        {
                            "action_id": result.action_id,
                            "action": result.action,
                            "flag": result.flag,
                            "outcome": str(result.outcome),
                            "message": result.message,
                            "before": result.before,
                            "after": result.after,
                        },
                        actor=result.operator,
                    )
                )
        elif incident.feature and st.button("🎛️ Show the flag actions here", key=f"panel_{step.id}"):
            st.session_state[f"action_step_{incident.id}"] = step.id
            st.rerun()
    if progress.state != "pending":
        who = f" by {progress.actor}" if progress.actor else ""
        why = f" ({progress.reason})" if progress.reason else ""
        st.caption(f"{progress.state.capitalize()}{who} at {display(progress.at)}{why}")
    c1, c2, c3 = st.columns([1, 1, 3])
    needs_action = bool(step.actions)
    if c1.button(
        "✅ Done",
        key=f"done_{step.id}",
        disabled=needs_action and not progress.verified,
        help="Steps with flag actions are done once an action is verified.",
    ):
        write(lambda: log.mark_step(incident.id, step.id, "done", needs_verified_action=needs_action))
    reason = c3.text_input(
        "Reason to skip",
        key=f"skip_reason_{step.id}",
        label_visibility="collapsed",
        placeholder="Reason to skip (optional)",
    )
    if c2.button("⏭️ Skip", key=f"skip_{step.id}"):
        write(lambda: log.mark_step(incident.id, step.id, "skipped", reason=reason or None))


def _check(check: Check, incident: Incident, known: dict[str, Any], b: Briefing) -> None:
    title = fill(check.title, known)
    feature, onset = incident.feature, incident.onset
    if feature is None or onset is None:
        st.caption(f"{title}: needs a feature and an onset.")
        return
    store = common.store()
    since, until = onset - timedelta(days=1), (b.impact.end if b.impact else b.now)
    if check.kind == "chart":
        df = metrics.timeline(store, feature, since, until, split=check.split)
        if df.is_empty():
            st.caption(f"{title}: no requests in the window.")
        else:
            st.markdown(f"**{title}**")
            st.line_chart(
                df.select("bucket", "series", check.metric),
                x="bucket",
                y=check.metric,
                color="series",
                height=220,
            )
    elif check.kind == "split" and b.impact is not None:
        rows = b.impact.scope.slices.get(check.split or "", [])
        st.markdown(f"**{title}**")
        st.dataframe(
            [
                {
                    "value": s.value,
                    "share of requests": f"{100 * s.request_share:.1f}%",
                    "now": s.current,
                    "baseline": s.baseline,
                    "share of the excess": f"{100 * s.excess_share:.0f}%",
                }
                for s in rows[:10]
            ],
            hide_index=True,
            width="stretch",
        )
    elif check.kind == "query":
        st.markdown(f"**{title}**")
        try:
            result = playbooks.run_query_check(store, check, feature, onset, until)
        except ReadOnlyQueryError as exc:
            st.error(f"This check's query did not run: {exc}", icon="⚠️")
        else:
            st.dataframe(
                [dict(zip(result.columns, row, strict=True)) for row in result.rows],
                hide_index=True,
                width="stretch",
            )


def _notes(log: IncidentLog, incident: Incident) -> None:
    st.markdown("**Notes**")
    for e in incident.events:
        if e.kind == "note":
            st.markdown(f"- `{display(e.at)}` {e.actor or ''}: {e.data['text']}")
    with st.form(f"note_{incident.id}", clear_on_submit=True):
        text = st.text_area("Add a note", height=80)
        st.caption(f"Recorded as {auth.identity().label}")
        if st.form_submit_button("🗒️ Add note"):
            write(lambda: log.add_note(incident.id, text))


# Triage -----------------------------------------------------------------------------------


def triage_tab(b: Briefing) -> None:
    im = b.impact
    if im is None:
        st.info("Set the incident's feature and onset to see scope and impact.", icon="🔎")
        return
    if b.totals is not None:
        t = b.totals
        st.markdown(
            f"**Total, {b.totals_label}:** {t.requests:,} requests and {t.users:,} "
            f"users affected, {t.extra_errors:,} extra errors, "
            f"{money(t.extra_cost_usd)} extra cost"
        )
        st.dataframe(
            [
                {
                    "feature": m.feature,
                    "scope": m.scope.describe(),
                    "requests affected": m.requests,
                    "users affected": m.users,
                    "extra errors": m.extra_errors,
                    "quality delta": None if m.quality_delta is None else round(m.quality_delta, 3),
                    "extra cost (USD)": round(m.extra_cost_usd, 2),
                }
                for m in b.impacts
            ],
            hide_index=True,
            width="stretch",
        )
        st.markdown(f"#### {im.feature}")
    st.markdown(
        f"**Scope:** {im.scope.describe()}  ·  metric `{im.metric}`  ·  "
        f"window {display(im.onset)} to {display(im.end)}"
    )
    if im.scope.same_requests_as:
        st.caption("Same requests as: " + ", ".join(im.scope.same_requests_as))
    c = st.columns(5)
    c[0].metric("Requests affected", f"{im.requests:,}")
    c[1].metric("Users affected", f"{im.users:,}")
    c[2].metric("Extra errors", f"{im.extra_errors:,}")
    c[3].metric("Quality delta", "n/a" if im.quality_delta is None else f"{im.quality_delta:+.3f}")
    c[4].metric("Extra cost", money(im.extra_cost_usd))
    if b.suspect:
        st.markdown(f"**Suspect change:** {b.suspect.describe()}  \n{b.suspect.evidence}")
    compare_preset_link(
        im.feature,
        im.onset,
        im.end,
        b.suspect.change if b.suspect else None,
        (im.scope.dimension, im.scope.value) if im.scope.dimension else None,
    )
    for dimension, rows in im.scope.slices.items():
        with st.expander(f"By {dimension}"):
            st.dataframe(
                [
                    {
                        "value": s.value,
                        "requests": s.requests,
                        "share of requests": f"{100 * s.request_share:.1f}%",
                        "now": s.current,
                        "baseline": s.baseline,
                        "share of the excess": f"{100 * s.excess_share:.0f}%",
                    }
                    for s in rows[:20]
                ],
                hide_index=True,
                width="stretch",
            )


# Timeline ---------------------------------------------------------------------------------


def timeline_tab(log: IncidentLog, incident: Incident, b: Briefing) -> None:
    st.dataframe(
        [
            {
                "time": display(e.time, seconds=True),
                "source": e.source,
                "event": e.text,
                "outcome": e.outcome or "",
                "corrected": "✏️" if e.corrected else "",
            }
            for e in b.timeline
        ],
        hide_index=True,
        width="stretch",
    )
    corrected = [e for e in b.timeline if e.corrected]
    for e in corrected:
        with st.expander(f"✏️ History of {e.key}"):
            for r in e.history:
                what = (
                    "original" if r.changed_at is None else f"corrected {display(r.changed_at)} by {r.actor}"
                )
                st.markdown(
                    f"- {display(r.time, seconds=True)}: {r.text} _({what}"
                    + (f"; {r.reason}" if r.reason else "")
                    + ")_"
                )
    with st.form(f"correct_{incident.id}"):
        st.markdown("**Correct an entry** (the original is kept)")
        options = {e.key: f"{display(e.time, seconds=True)} {e.text[:70]}" for e in b.timeline}
        key = st.selectbox("Entry", list(options), format_func=options.get)
        new_time = st.text_input("New time (UTC, ISO 8601; empty = keep)")
        new_text = st.text_input("New text (empty = keep)")
        reason = st.text_input("Reason")
        if st.form_submit_button("✏️ Save correction"):
            when = parse_time(new_time) if new_time.strip() else None
            if new_time.strip() and when is None:
                st.error(f"{new_time!r} is not a time", icon="🛑")
            else:
                write(
                    lambda: log.correct(
                        incident.id,
                        key,
                        time=when,
                        text=new_text or None,
                        reason=reason or None,
                        actor=st.session_state.get("operator"),
                    )
                )


# Communicate ------------------------------------------------------------------------------


def communicate_tab(data_dir: Path, incident: Incident, b: Briefing) -> None:
    templates, problems = notify.read_templates()
    for problem in problems:
        st.error(f"Template not loaded: {problem}", icon="⚠️")
    if not templates:
        return
    choice = st.selectbox("Template", list(templates), format_func=lambda t: templates[t].title)
    template = templates[choice]
    text = notify.render(template, facts(b, _rollout_flag(data_dir, incident.feature)))
    st.caption("Copy-ready text (copy button at the top right):")
    st.code(text, language=None, wrap_lines=True)
    try:
        hooks = notify.load_webhooks(data_dir)
    except notify.NotifyConfigError as exc:
        st.error(str(exc), icon="🛑")
        hooks = {}
    if not hooks:
        st.caption(
            f"No webhooks configured: add them to `{data_dir / notify.CONFIG_FILE}` (see docs/playbooks.md)."
        )
    else:
        channel = st.selectbox("Send to", list(hooks))
        if st.button("📣 Send", type="primary"):
            _send(data_dir, incident, channel, template, text, None)
    for failed in notify.failed_messages(incident):
        st.warning(f"{failed['template_title']} to {failed['channel']} failed: {failed['detail']}", icon="⚠️")
        if st.button("🔁 Send again", key=f"retry_{failed['seq']}"):
            _send(
                data_dir,
                incident,
                failed["channel"],
                templates.get(failed["template"], template),
                failed["text"],
                failed["seq"],
            )


def _send(
    data_dir: Path,
    incident: Incident,
    channel: str,
    template: notify.Template,
    text: str,
    retry_of: int | None,
) -> None:
    with st.spinner(f"Sending to {channel}..."):
        try:
            result = notify.send(
                data_dir, incident, channel, template, text, retry_of=retry_of, identity=auth.identity()
            )
        except IncidentError as exc:
            st.error(f"Could not record the message: {exc}", icon="🛑")
            return
    if result.ok:
        st.session_state["flash"] = f"Sent to {channel} ({result.detail})."
        st.rerun()
    st.error(f"Send to {channel} failed after {result.attempts} attempt(s): {result.detail}", icon="🛑")


# Post-mortem ------------------------------------------------------------------------------


def postmortem_tab(data_dir: Path, log: IncidentLog, incident: Incident, b: Briefing) -> None:
    st.caption("Numbers are computed from the logs at export; these sections need your words.")
    for name, title in postmortem.SECTION_TITLES.items():
        stored, seq = incident.sections.get(name, ("", 0))
        base_key, text_key = f"pm_base_{incident.id}_{name}", f"pm_text_{incident.id}_{name}"
        if base_key not in st.session_state:
            st.session_state[base_key] = seq
            st.session_state[text_key] = stored or (postmortem.draft_summary(b) if name == "summary" else "")
        text = st.text_area(title, key=text_key, height=100)
        c1, c2 = st.columns([1, 4])
        if c1.button("💾 Save", key=f"pm_save_{name}"):
            try:
                saved = log.set_section(
                    incident.id,
                    name,
                    text,
                    actor=st.session_state.get("operator"),
                    base_version=st.session_state[base_key],
                )
                st.session_state[base_key] = saved.sections[name][1]
                st.success(f"{title} saved.", icon="✅")
            except IncidentError as exc:
                st.error(str(exc), icon="🛑")
        if c2.button("↻ Reload stored text", key=f"pm_reload_{name}"):
            for key in (base_key, text_key):
                st.session_state.pop(key, None)
            st.rerun()
    _action_items(log, incident)
    markdown = postmortem.render(b)
    st.download_button(
        "⬇️ Download post-mortem (markdown)",
        markdown,
        mime="text/markdown",
        file_name=f"postmortem-{incident.id}.md",
        type="primary",
        on_click="ignore",
    )
    with st.expander("Preview"):
        st.markdown(markdown)


def _action_items(log: IncidentLog, incident: Incident) -> None:
    st.markdown("**Action items**")
    for item_id, item in incident.action_items.items():
        c1, c2 = st.columns([5, 1])
        c1.markdown(f"- {item['text']} (owner: {item.get('owner') or 'unassigned'}, {item['type']})")
        if c2.button("🗑️ Remove", key=f"rm_{item_id}"):
            write(
                lambda i=item: log.set_action_item(
                    incident.id, "", None, i["type"], item_id=i["item_id"], removed=True
                )
            )
    with st.form(f"item_{incident.id}", clear_on_submit=True):
        c1, c2, c3 = st.columns([4, 2, 2])
        text = c1.text_input("Action item")
        owner = c2.text_input("Owner")
        kind = c3.selectbox("Type", ACTION_ITEM_TYPES)
        if st.form_submit_button("➕ Add action item"):
            write(lambda: log.set_action_item(incident.id, text, owner or None, kind))
