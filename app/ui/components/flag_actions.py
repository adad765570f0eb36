"""The flag action panel: live state of a feature's flags, one button per action, a
confirmation dialog (before -> after, who acts, reason) and the verified result.

The operator is the signed-in (or local) person, never a typed name; their role is
checked by `actions.execute`, which refuses and records a press the role does not allow.

Shown on the feature page and inside playbook steps. Every press goes through
`app.actions.execute`, like the CLI. "Dialog open" lives in session state (set by the
button's on_click, cleared on confirm and on dismiss) so the dialog survives reruns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from app.access import roles
from app.changes import recorded
from app.flags.base import ActionResult, FlagError
from app.flags.config import load_config
from app.rollback import actions
from app.rollback.actions import LABELS, Action
from app.ui import auth

OUTCOME_ICONS = {"verified": "✅", "unverified": "⚠️", "failed": "❌"}


def render_flag_actions(
    data_dir: Path,
    feature: str,
    incident_id: str | None = None,
    allowed: set[str] | None = None,
) -> ActionResult | None:
    """Draw the panel; returns the result of a press confirmed in this run, if any."""
    scope = f"flags-{feature}-{incident_id or 'none'}"
    try:
        config = load_config(data_dir)
    except FlagError as exc:
        st.error(f"Flag configuration: {exc.message}")
        return None
    if feature not in config.features:
        st.info(f"No flags configured for {feature} (add it to `flags.yaml`, see docs/flags.md).")
        return None
    _live_state(config, feature)
    who = auth.identity()
    if not roles.allowed(who, roles.Permission.FLAG_ACTION):
        st.caption(
            f"You are a {who.role}: a press is refused and recorded on the audit trail "
            "(acting on flags needs the responder role)."
        )
    choices = [a for a in actions.available_actions(config, feature) if allowed is None or str(a) in allowed]
    columns = st.columns(max(len(choices), 1))
    for column, action in zip(columns, choices, strict=False):
        column.button(
            LABELS[action], key=f"{scope}-{action}", on_click=_open, args=(scope, action), width="stretch"
        )
    confirmed = None
    if st.session_state.get(f"{scope}-dialog"):
        confirmed = _confirm(
            data_dir, feature, Action(st.session_state[f"{scope}-dialog"]), incident_id, scope
        )
    _show_result(st.session_state.get(f"{scope}-result"))
    return confirmed


def _live_state(config: Any, feature: str) -> None:
    status = actions.feature_status(config, feature)
    rows = [
        {
            "role": f["role"],
            "flag": f["key"],
            "environment": f["environment"],
            "state": f.get("error") or recorded.summary(f, f["role"]) or "-",
        }
        for f in status["flags"]
    ]
    st.caption(f"Live state from {status['backend']}")
    st.dataframe(rows, hide_index=True, width="stretch")


def _open(scope: str, action: Action) -> None:
    st.session_state[f"{scope}-dialog"] = str(action)


def _close(scope: str) -> None:
    st.session_state.pop(f"{scope}-dialog", None)


def _confirm(
    data_dir: Path, feature: str, action: Action, incident_id: str | None, scope: str
) -> ActionResult | None:
    @st.dialog(f"Confirm: {LABELS[action]}", on_dismiss=lambda: _close(scope))
    def dialog() -> None:
        value = _value_input(data_dir, feature, action, scope)
        try:
            the_plan = actions.plan(data_dir, feature, action, value)
        except FlagError as exc:
            st.error(exc.message)
            if st.button("Close", key=f"{scope}-close"):
                _close(scope)
                st.rerun()
            return
        st.markdown(
            f"**{feature}** · flag `{the_plan.flag.key}` in "
            f"`{the_plan.flag.environment}` on {the_plan.location}"
        )
        role = the_plan.flag.role
        st.markdown(
            f"**Before:** {recorded.summary(the_plan.before, role) or '-'}  \n"
            f"**After:** {recorded.summary(the_plan.after, role) or '-'}"
        )
        if incident_id:
            st.caption(f"Recorded against incident {incident_id}")
        who = auth.identity()
        st.markdown(f"**Acting as:** {who.name} ({who.role})")
        reason = st.text_input("Reason", key=f"{scope}-reason")
        if st.button("Confirm", type="primary", key=f"{scope}-confirm"):
            with st.spinner("Changing the flag and reading it back..."):
                result = actions.execute(
                    data_dir,
                    feature,
                    action,
                    value,
                    actor=who,
                    reason=reason.strip() or None,
                    incident_id=incident_id,
                )
            st.session_state[f"{scope}-result"] = result
            st.session_state[f"{scope}-confirmed"] = result
            _close(scope)
            st.rerun()

    dialog()
    return st.session_state.pop(f"{scope}-confirmed", None)


def _value_input(data_dir: Path, feature: str, action: Action, scope: str) -> Any:
    if action is Action.ROLLOUT:
        return st.number_input(
            "Canary rollout (%)",
            min_value=0.0,
            max_value=100.0,
            value=0.0,
            step=1.0,
            key=f"{scope}-percentage",
        )
    if action not in (Action.PIN_MODEL, Action.REVERT_PROMPT):
        return None
    try:
        default = actions.plan(data_dir, feature, action).change.variant
        variants = list(actions.plan_variants(data_dir, feature, action))
    except FlagError as exc:  # the action itself still runs, and reports what it finds
        st.caption(f"⚠️ The versions cannot be listed: {exc.message}")
        return None
    label = "Model version" if action is Action.PIN_MODEL else "Prompt version"
    index = variants.index(default) if default in variants else 0
    return st.selectbox(
        label, variants, index=index, key=f"{scope}-variant", help="Defaults to the previous version"
    )


def _show_result(result: ActionResult | None) -> None:
    if result is None:
        return
    text = f"{OUTCOME_ICONS[str(result.outcome)]} {result.action} {result.outcome}: {result.message}"
    if result.verified:
        st.success(text)
    elif str(result.outcome) == "unverified":
        st.warning(text)
    else:
        st.error(text)
