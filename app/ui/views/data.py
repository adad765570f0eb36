"""Files loaded, row counts, quarantined rows; load a file by upload or by path."""

import threading
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from app.access.roles import AccessDenied, Permission, allowed, require
from app.changes import declared
from app.ingest.mapping import MappingError, load_mapping
from app.ingest.pipeline import LoadProgress
from app.ingest.uploads import load_files, save_upload
from app.ui import auth, common

st.title("💾 Data")
store = common.store()

files = store.loaded_files()
c1, c2, c3 = st.columns(3)
c1.metric("Requests stored", f"{store.request_count():,}")
c2.metric("Files loaded", f"{files.height:,}")
c3.metric("Rows quarantined", f"{store.quarantine_count():,}")

st.subheader("Load logs")
tab_upload, tab_path = st.tabs(["Upload", "Path on this machine"])
with tab_upload:
    uploads = st.file_uploader(
        "JSONL, CSV or Parquet (optionally .gz)", accept_multiple_files=True, key="uploads"
    )
    mapping_upload = st.file_uploader(
        "Mapping file (YAML, optional)", type=["yaml", "yml"], key="mapping_upload"
    )
with tab_path:
    path_text = st.text_input("Files, folders or globs (one per line)", key="paths")
    mapping_path = st.text_input("Mapping file path (optional)", key="mapping_path")

who = auth.identity()
if not allowed(who, Permission.UPLOAD):
    st.caption(f"Loading data needs the admin role; you are a {who.role}.")
if st.button("Load", type="primary", key="load"):
    paths: list[str] = []
    mapping = None
    data_dir = common.data_dir()
    try:
        require(who, Permission.UPLOAD)  # the logic below checks again; this says it first
        if mapping_upload is not None:
            mapping = load_mapping(save_upload(data_dir, who, mapping_upload.name, mapping_upload.getvalue()))
        elif mapping_path.strip():
            mapping = load_mapping(mapping_path.strip())
        uploaded = [str(save_upload(data_dir, who, up.name, up.getvalue())) for up in uploads or []]
    except (MappingError, AccessDenied) as exc:
        st.error(str(exc))
        st.stop()
    paths += uploaded
    paths += [p.strip() for p in path_text.splitlines() if p.strip()]
    if not paths:
        st.warning("Choose a file to upload or type a path first.")
    else:
        bar = st.progress(0.0, text="Loading…")
        page = get_script_run_ctx()

        def progress(p: LoadProgress) -> None:
            # Within a file, progress is reported from the thread that watches DuckDB read.
            if get_script_run_ctx(suppress_warning=True) is None:
                add_script_run_ctx(threading.current_thread(), page)
            what = f"{Path(p.path).name} {p.within_file:.0%}" if p.path else "done"
            bar.progress(
                p.fraction, text=f"file {min(p.files_done + 1, p.files_total)} of {p.files_total}: {what}"
            )

        result = load_files(store, who, paths, mapping=mapping, progress=progress, whole=uploaded)
        outcome = []
        for f in result.files:
            kind = "error" if f.error else "info" if f.skipped else "success"
            outcome.append((kind, f.summary()))
            outcome.extend(("warning", w) for w in f.warnings)
        # Run the page again so the counts and the file list above include this load.
        st.session_state["load_outcome"] = outcome
        st.cache_data.clear()
        st.rerun()

for kind, text in st.session_state.pop("load_outcome", []):
    getattr(st, kind)(text)

st.subheader("Declared changes")
changes_upload = st.file_uploader(
    "Changes file (YAML `changes:` list or CSV)", type=["yaml", "yml", "csv"], key="changes_upload"
)
if changes_upload is not None and st.button("Load changes", key="load_changes"):
    try:
        target = save_upload(common.data_dir(), who, changes_upload.name, changes_upload.getvalue())
        events, errors = declared.load_declared(target)
    except (declared.ChangeFileError, AccessDenied) as exc:
        st.error(str(exc))
    else:
        added = declared.save_events(store, events)
        st.success(f"{added} new change events ({len(events) - added} already known)")
        for e in errors:
            st.error(e)
        st.cache_data.clear()

st.subheader("Files")
if files.is_empty():
    st.caption("No files loaded yet.")
else:
    st.dataframe(files, hide_index=True, width="stretch")

st.subheader("Quarantine")
q = store.quarantined_rows(1000)
if q.is_empty():
    st.caption("No quarantined rows.")
else:
    st.caption("The most recent 1,000 quarantined rows, with the reason each was set aside.")
    st.dataframe(q, hide_index=True, width="stretch")
