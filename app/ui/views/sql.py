"""SQL: read-only DuckDB SQL over the stored tables, a table and a chart; a shareable URL."""

import streamlit as st

from app.investigate import querylog
from app.investigate.console import MAX_LIMIT, TABLES, run_sql
from app.investigate.links import sql_link
from app.investigate.roles import CONSOLE_ROLE, PermissionDenied, allowed
from app.storage.readonly import DEFAULT_LIMIT, QueryRefused, QueryTimeout, ReadOnlyQueryError
from app.timestamps import display
from app.ui import common
from app.ui.components import investigate_ui as ui
from app.ui.components.investigate_evidence import render_save_to_incident

EXAMPLE = (
    "SELECT prompt_version, count(*) AS requests, avg(quality_score) AS quality\n"
    "FROM requests\nGROUP BY ALL\nORDER BY requests DESC"
)

st.title("🧮 SQL")
actor = ui.current_actor()
if not allowed(actor, CONSOLE_ROLE):
    st.error(f"The SQL console needs the {CONSOLE_ROLE} role.", icon="⛔")
    st.stop()

with st.expander("Tables you can query"):
    st.dataframe(
        [{"table": t, "holds": text} for t, text in TABLES.items()], hide_index=True, width="stretch"
    )
    st.caption(
        "Read-only: one SELECT (or DESCRIBE, SHOW, SUMMARIZE) at a time, checked by "
        "DuckDB's parser, on a read-only connection with file and network access off. "
        "Every run is recorded with who ran it."
    )

ui.from_url("sql_text", "q")
sql = st.text_area("Query", key="sql_text", height=160, placeholder=EXAMPLE)
c1, c2, c3 = st.columns([1, 1, 2])
limit = int(
    c1.number_input(
        "Row limit", min_value=1, max_value=MAX_LIMIT, value=DEFAULT_LIMIT, step=100, key="sql_limit"
    )
)
timeout = float(
    c2.number_input("Time limit (s)", min_value=1.0, max_value=120.0, value=10.0, step=1.0, key="sql_timeout")
)
run = c3.button("▶️ Run", type="primary", key="sql_run")
# A link that carries a query runs it once when it is opened.
if "sql_opened_from_link" not in st.session_state:
    st.session_state["sql_opened_from_link"] = True
    run = run or bool(sql.strip() and st.query_params.get("q"))

if run and sql.strip():
    ui.to_url(q=sql.strip())
    try:
        st.session_state["sql_result"] = (
            sql.strip(),
            run_sql(
                common.data_dir(),
                sql,
                actor=actor,
                who=None if actor else "app",
                limit=limit,
                timeout_s=timeout,
            ),
        )
    except PermissionDenied as exc:
        st.session_state["sql_result"] = (sql.strip(), exc)
    except (QueryRefused, QueryTimeout, ReadOnlyQueryError) as exc:
        st.session_state["sql_result"] = (sql.strip(), exc)

ran = st.session_state.get("sql_result")
if ran is not None:
    text, outcome = ran
    if isinstance(outcome, QueryRefused):
        st.error(str(outcome), icon="⛔")
    elif isinstance(outcome, QueryTimeout):
        st.warning(str(outcome), icon="⏱️")
    elif isinstance(outcome, Exception):
        st.error(str(outcome), icon="⚠️")
    else:
        rows = [dict(zip(outcome.columns, r, strict=True)) for r in outcome.rows]
        more = " (truncated at the row limit)" if outcome.truncated else ""
        st.caption(
            f"{len(rows):,} row(s){more} in {outcome.elapsed_s * 1000:.0f} ms · share "
            f"this query: `{sql_link(text)}`"
        )
        tab_table, tab_chart = st.tabs(["Table", "Chart"])
        with tab_table:
            st.dataframe(rows, hide_index=True, width="stretch", key="sql_rows")
        with tab_chart:
            figure = ui.result_figure(outcome.columns, outcome.rows)
            if figure is None:
                st.caption("A chart needs a first column and at least one numeric column.")
            else:
                st.plotly_chart(figure, width="stretch", key="sql_chart")
        render_save_to_incident("", "SQL query", sql_link(text), rows, key="sql_save", query=text)

with st.expander("Recent queries"):
    st.dataframe(
        [
            {
                "ran at": display(r.ran_at, seconds=True),
                "who": r.actor,
                "outcome": r.outcome,
                "rows": r.rows,
                "ms": r.elapsed_ms,
                "query": r.text,
            }
            for r in querylog.recent(common.data_dir(), limit=20)
            if r.kind == "sql"
        ],
        hide_index=True,
        width="stretch",
    )
