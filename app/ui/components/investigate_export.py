"""Export the current filter as JSONL, CSV or Parquet (an eval set to rerun offline)."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from app.investigate.export import FORMATS, ExportError, export_slice
from app.investigate.filters import Scope
from app.investigate.roles import EXPORT_ROLE, PermissionDenied, allowed
from app.ui import common
from app.ui.components.investigate_ui import current_actor


def render_export(scope: Scope, extras: tuple[str, ...], key: str = "export") -> None:
    st.subheader("Export this slice")
    actor = current_actor()
    if not allowed(actor, EXPORT_ROLE):
        st.caption(f"Exports need the {EXPORT_ROLE} role.")
        return
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    fmt = c1.selectbox("Format", list(FORMATS), key=f"{key}_format")
    n = int(c2.number_input("Requests (0 = all)", min_value=0, value=0, step=50, key=f"{key}_n"))
    worst = c3.checkbox(
        "Worst first", key=f"{key}_worst", help="errors first, then the lowest quality, then the slowest"
    )
    if c4.button("📦 Export", key=f"{key}_go"):
        folder = common.data_dir() / "exports"
        folder.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = folder / f"{scope.feature}-{stamp}.{fmt}"
        try:
            st.session_state[f"{key}_done"] = export_slice(
                common.store(),
                scope,
                path,
                n=n or None,
                worst=worst,
                extras=extras,
                actor=actor,
                who=None if actor else "app",
            )
        except (PermissionDenied, ExportError) as exc:
            st.error(str(exc), icon="⛔")
    done = st.session_state.get(f"{key}_done")
    if done is not None and done.path.exists():
        st.success(
            f"{done.rows:,} requests written to `{done.path}`; the filter is in `{done.sidecar.name}`.",
            icon="✅",
        )
        with done.path.open("rb") as fh:
            st.download_button(
                f"⬇️ Download {done.path.name}", fh.read(), file_name=done.path.name, key=f"{key}_download"
            )
