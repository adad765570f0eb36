"""OpenTelemetry traces as OTLP JSON lines: one request per LLM span.

The OpenTelemetry file exporter and the Collector's `fileexporter` write one `TracesData`
object per line: `resourceSpans -> scopeSpans -> spans`, each span's attributes a list of
`{key, value: {stringValue | intValue | doubleValue | boolValue | arrayValue | kvlistValue}}`.
DuckDB reads the lines into typed structs and unnests them into one row per span; every
lookup below is a list search in SQL, so the file is never parsed in Python.

An LLM span is one with `gen_ai.operation.name` (OpenTelemetry's GenAI conventions; agent
and tool operations excepted) or `openinference.span.kind = LLM` (OpenInference). Other
spans are counted, not loaded. The trace's root span (no parent) lends its name and its
attributes to the LLM spans of its trace, wherever in the file it is: instrumented apps
put the feature and the user on their own outer span.

`convert` leaves the rows in CONVERTED_TABLE with the canonical fields as columns; the
pipeline then checks and stores them like any other file's rows. Field map: docs/formats.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from app.ingest.mapping import Mapping
from app.ingest.scores import apply_scores, load_scores
from app.ingest.sources import JSON_READER_MAX_OBJECT, Layout, SourceFile, blank_lines, lines_sql, literal

CONVERTED_TABLE = "rd_telemetry"
_SPANS = "rd_otlp_spans"

_VALUE = {
    "stringValue": "VARCHAR",
    "intValue": "VARCHAR",
    "doubleValue": "VARCHAR",
    "boolValue": "VARCHAR",
    "arrayValue": "JSON",
    "kvlistValue": "JSON",
    "bytesValue": "VARCHAR",
}
_ATTRS = [{"key": "VARCHAR", "value": _VALUE}]
_SPAN = {
    "traceId": "VARCHAR",
    "spanId": "VARCHAR",
    "parentSpanId": "VARCHAR",
    "name": "VARCHAR",
    "startTimeUnixNano": "VARCHAR",
    "endTimeUnixNano": "VARCHAR",
    "attributes": _ATTRS,
    "events": [{"timeUnixNano": "VARCHAR", "name": "VARCHAR", "attributes": _ATTRS}],
    "status": {"code": "VARCHAR", "message": "VARCHAR"},
}
# What is read of each line; every other key is passed over.
TRACES_DATA = {"resourceSpans": [{"resource": {"attributes": _ATTRS}, "scopeSpans": [{"spans": [_SPAN]}]}]}


def sql_type(shape) -> str:
    """The DuckDB type of a JSON shape (as json_transform takes it)."""
    if isinstance(shape, list):
        return sql_type(shape[0]) + "[]"
    if isinstance(shape, dict):
        return "STRUCT(" + ", ".join(f"{k} {sql_type(v)}" for k, v in shape.items()) + ")"
    return shape


# GenAI operations that are not a call to a model.
NOT_MODEL_CALLS = ("execute_tool", "invoke_agent", "create_agent")
# Attributes that hold prompt and response text: never copied to `extra`.
CONTENT_PREFIXES = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "llm.input_messages",
    "llm.output_messages",
    "llm.prompts",
    "llm.tools",
    "llm.invocation_parameters",
    "input.",
    "output.",
    "traceloop.entity.input",
    "traceloop.entity.output",
)
EVALUATION_EVENT = "gen_ai.evaluation.result"
FEEDBACK_EVALUATION = "user_feedback"

# Canonical field -> span attributes, first present wins (a mapped attribute comes first).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "request_id": ("gen_ai.response.id",),
    "model": ("gen_ai.request.model",),
    "response_model": ("gen_ai.response.model",),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "prompt_version": (
        "langfuse.observation.prompt.version",
        "traceloop.prompt.version",
        "llm.prompt_template.version",
    ),
    "cost_usd": ("gen_ai.usage.cost", "llm.cost.total"),
}
# Looked up on the LLM span, then on its trace's root span.
TRACE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "user_id": ("user.id", "enduser.id"),
    "feature": ("langfuse.trace.name",),
}
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.system")
# Read into canonical fields (or `provider`): not repeated in `extra`. gen_ai.system is
# kept there too, as the deprecated name some dashboards still split by.
_CONSUMED = {a for names in (*ATTRIBUTES.values(), *TRACE_ATTRIBUTES.values()) for a in names} | {
    "gen_ai.provider.name",
    "error.type",
}

_MACROS = (
    """CREATE OR REPLACE TEMP MACRO rd_otlp_text(v) AS coalesce(
         v.stringValue, v.intValue, v.doubleValue, v.boolValue,
         CASE WHEN v.arrayValue IS NOT NULL THEN CAST(to_json(list_transform(
           CAST(json_extract(v.arrayValue, '$.values') AS JSON[]),
           lambda x: coalesce(x->>'stringValue', x->>'intValue', x->>'doubleValue',
                              x->>'boolValue', CAST(x AS VARCHAR)))) AS VARCHAR) END,
         CAST(v.kvlistValue AS VARCHAR), v.bytesValue)""",
    # An attribute ({k, v, t}) as a JSON value: numbers and booleans as such when they are.
    """CREATE OR REPLACE TEMP MACRO rd_otlp_render(a) AS CASE
         WHEN a.t = 'i' AND TRY_CAST(a.v AS HUGEINT) IS NOT NULL
           THEN CAST(TRY_CAST(a.v AS HUGEINT) AS VARCHAR)
         WHEN a.t = 'd' AND isfinite(TRY_CAST(a.v AS DOUBLE))
           THEN CAST(TRY_CAST(a.v AS DOUBLE) AS VARCHAR)
         WHEN a.t = 'b' AND lower(a.v) IN ('true', 'false') THEN lower(a.v)
         ELSE CAST(to_json(a.v) AS VARCHAR) END""",
    """CREATE OR REPLACE TEMP MACRO rd_otlp_get(attrs, k) AS
         rd_otlp_text(list_filter(attrs, lambda a: a.key = k)[1].value)""",
    # Trace and span ids: lowercase hex as OTLP JSON writes them; protobuf's JSON mapping
    # writes base64 (24 characters for a trace id, 12 for a span id).
    """CREATE OR REPLACE TEMP MACRO rd_otlp_id(x) AS CASE
         WHEN x IS NULL OR x = '' THEN NULL
         WHEN length(x) IN (12, 24) AND x LIKE '%=' THEN lower(hex(TRY(from_base64(x))))
         ELSE lower(x) END""",
    """CREATE OR REPLACE TEMP MACRO rd_otlp_status(c) AS CASE
         WHEN c IN ('2', 'STATUS_CODE_ERROR') THEN 2
         WHEN c IN ('1', 'STATUS_CODE_OK') THEN 1 ELSE 0 END""",
)


@dataclass
class Converted:
    """What a telemetry file held: its rows are in CONVERTED_TABLE, laid out as `layout`."""

    layout: Layout
    other_spans: int = 0  # spans (or observations) that are not LLM calls: counted, not loaded
    warnings: list[str] = field(default_factory=list)


def _get(attrs: str, keys: str, name: str) -> str:
    """The text of attribute `name` in `attrs` (a list of {k, v, t}), found in `keys`."""
    return f"struct_extract({attrs}[list_position({keys}, {literal(name)})], 'v')"


def _first(attrs: str, keys: str, names: tuple[str, ...]) -> str:
    exprs = [_get(attrs, keys, n) for n in names]
    return exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"


def _read_sql(source: SourceFile, readable: Path, lines: bool, numbered: bool = True) -> str:
    """`__row, __bad, __raw, resourceSpans` per line. The JSON reader is fast but refuses a
    file with a line it cannot read; reading line by line numbers blank lines too and sets
    aside broken ones."""
    path = literal(str(readable))
    columns = literal(sql_type(TRACES_DATA["resourceSpans"]))
    if not lines:
        row = "row_number() OVER ()" if numbered else "NULL::BIGINT"
        return f"""SELECT {row} AS __row, NULL::VARCHAR AS __bad,
                          NULL::VARCHAR AS __raw, resourceSpans
                   FROM read_json({path}, format = 'newline_delimited',
                                  columns = {{'resourceSpans': {columns}}},
                                  maximum_object_size = {JSON_READER_MAX_OBJECT})"""
    shape = literal(json.dumps(TRACES_DATA))
    return f"""SELECT __row, __bad, CASE WHEN __bad IS NOT NULL THEN line END AS __raw,
                      __doc.resourceSpans AS resourceSpans
               FROM (SELECT __row, line, __doc,
                            CASE WHEN __doc IS NULL AND json_valid(line) THEN 'not a JSON object'
                                 WHEN __doc IS NULL THEN 'broken JSON' END AS __bad
                     FROM (SELECT __row, line, TRY(json_transform(line, {shape})) AS __doc
                           FROM (SELECT row_number() OVER () AS __row, line
                                 FROM {lines_sql(readable)})
                           WHERE line IS NOT NULL AND trim(line, ' \t\r') <> ''))"""


def _spans_sql(section: dict[str, str]) -> str:
    """One row per span (and one per line that holds no spans): ids, times, status, and
    for LLM and root spans their attributes as a list of {k, v (text), t (OTLP type)}."""
    rs, scope, span = (
        sql_type(TRACES_DATA["resourceSpans"][0]),
        sql_type(TRACES_DATA["resourceSpans"][0]["scopeSpans"][0]),
        sql_type(_SPAN),
    )
    llm = (
        f"(__keys_all[list_position(__keys_all, 'gen_ai.operation.name')] IS NOT NULL AND "
        f"coalesce(sp.attributes[list_position(__keys_all, 'gen_ai.operation.name')]"
        f".value.stringValue, '') NOT IN ({', '.join(literal(o) for o in NOT_MODEL_CALLS)}) "
        "OR sp.attributes[list_position(__keys_all, 'openinference.span.kind')]"
        ".value.stringValue = 'LLM')"
    )
    typed = (
        "lambda a: {'k': a.key, 'v': rd_otlp_text(a.value), 't': CASE "
        "WHEN a.value.stringValue IS NOT NULL THEN 's' WHEN a.value.intValue IS NOT NULL "
        "THEN 'i' WHEN a.value.doubleValue IS NOT NULL THEN 'd' "
        "WHEN a.value.boolValue IS NOT NULL THEN 'b' ELSE 's' END}"
    )
    evals = f"list_filter(sp.events, lambda e: e.name = {literal(EVALUATION_EVENT)})"
    feedback_name = literal(section.get("feedback", FEEDBACK_EVALUATION))
    if "quality_score" in section:
        quality_pick = (
            f"rd_otlp_get(e.attributes, 'gen_ai.evaluation.name') = {literal(section['quality_score'])}"
        )
    else:
        quality_pick = f"coalesce(rd_otlp_get(e.attributes, 'gen_ai.evaluation.name'), '') <> {feedback_name}"

    def score(pick: str) -> str:
        return (
            f"rd_otlp_get(list_filter({evals}, lambda e: {pick})[1].attributes, "
            "'gen_ai.evaluation.score.value')"
        )

    wanted = "(__llm OR __parent IS NULL)"
    resource = "".join(
        f"CASE WHEN {wanted} THEN rd_otlp_get(__resource, {literal(attr)}) END AS r_{name}, "
        for name, attr in _mapped(section).items()
    )
    return f"""
        SELECT __row, __bad, __raw, __trace, __span, __parent, __llm, sp.name AS __name,
               sp.startTimeUnixNano AS __start, sp.endTimeUnixNano AS __end,
               TRY_CAST(nullif(sp.startTimeUnixNano, '0') AS BIGINT) AS __start_ns,
               TRY_CAST(nullif(sp.endTimeUnixNano, '0') AS BIGINT) AS __end_ns,
               rd_otlp_status(sp.status.code) AS __status, sp.status.message AS __status_message,
               CASE WHEN {wanted} THEN rd_otlp_get(__resource, 'service.name') END AS __service,
               CASE WHEN {wanted} THEN list_transform(sp.attributes, {typed}) END AS __attrs,
               {resource}
               CASE WHEN __llm AND len(sp.events) > 0 THEN rd_otlp_get(list_filter(sp.events,
                      lambda e: e.name = 'exception')[1].attributes, 'exception.type') END
                 AS __exception,
               CASE WHEN __llm AND len(sp.events) > 0 THEN {score(quality_pick)} END AS __quality,
               CASE WHEN __llm AND len(sp.events) > 0
                    THEN {score(f"rd_otlp_get(e.attributes, 'gen_ai.evaluation.name') = {feedback_name}")}
                    END AS __feedback
        FROM (SELECT *, rd_otlp_id(sp.traceId) AS __trace, rd_otlp_id(sp.spanId) AS __span,
                     rd_otlp_id(sp.parentSpanId) AS __parent,
                     CASE WHEN sp IS NULL THEN true ELSE coalesce({llm}, false) END AS __llm
              FROM (SELECT *, list_transform(sp.attributes, lambda a: a.key) AS __keys_all
                    FROM (SELECT __row, __bad, __raw, __resource,
                                 unnest(CASE WHEN __none THEN [NULL::{span}]
                                             ELSE __scope.spans END) AS sp
                          FROM (SELECT __row, __bad, __raw, __none,
                                       __rs.resource.attributes AS __resource,
                                       unnest(CASE WHEN __none THEN [NULL::{scope}]
                                                   ELSE __rs.scopeSpans END) AS __scope
                                FROM (SELECT __row, __none,
                                             CASE WHEN __none THEN coalesce(__bad,
                                               'not an OTLP TracesData object (no resourceSpans)')
                                             END AS __bad, __raw,
                                             unnest(CASE WHEN __none THEN [NULL::{rs}]
                                                         ELSE resourceSpans END) AS __rs
                                      FROM (SELECT *, (resourceSpans IS NULL OR __bad IS NOT NULL)
                                                        AS __none
                                            FROM rd_otlp_read))))))"""


def _mapped(section: dict[str, str]) -> dict[str, str]:
    """Canonical field -> attribute the mapping names (evaluation names and files aside)."""
    return {k: v for k, v in section.items() if k not in ("scores_file", "quality_score", "feedback")}


def _requests_sql(section: dict[str, str], extras: list[str]) -> str:
    """One row per LLM span (and per line that held none), with the canonical fields."""

    def get(side: str, name: str) -> str:
        return _get(f"{side}.__attrs", f"{side}.__keys", name)

    def first(side: str, names: tuple[str, ...]) -> str:
        return _first(f"{side}.__attrs", f"{side}.__keys", names)

    def traced(names: tuple[str, ...]) -> str:
        return f"coalesce({first('s', names)}, r.__t_{'_'.join(n.replace('.', '_') for n in names)})"

    mapped_attrs = _mapped(section)

    def mapped(name: str, fallback: str | None) -> str:
        if name in mapped_attrs:
            attr = mapped_attrs[name]
            m = f"coalesce({get('s', attr)}, r.__m_{name}, s.r_{name})"
            return f"coalesce({m}, {fallback})" if fallback else m
        return fallback or "NULL::VARCHAR"

    a = {name: first("s", names) for name, names in ATTRIBUTES.items()}
    model = (
        "coalesce("
        + a["model"]
        + ", json_extract_string("
        + get("s", "llm.invocation_parameters")
        + ", '$.model'), "
        + get("s", "llm.model_name")
        + ")"
    )
    response_model = f"coalesce({a['response_model']}, {get('s', 'llm.model_name')})"
    feature = (
        f"coalesce({traced(TRACE_ATTRIBUTES['feature'])}, "
        "CASE WHEN NOT r.__llm THEN r.__name END, s.__service)"
    )
    error_type = get("s", "error.type")
    error = (
        f"CASE WHEN s.__status = 2 OR {error_type} IS NOT NULL THEN coalesce({error_type}, "
        "s.__exception, nullif(s.__status_message, ''), 'error') END"
    )
    span = "'span ' || coalesce(s.__span, '(no id)')"
    bad = (
        f"CASE WHEN s.__start IS NULL OR s.__start = '0' THEN {span} || ' has no start time' "
        f"WHEN s.__start_ns IS NULL THEN {span} || ' start time ' || to_json(s.__start) "
        "|| ' is not a time' "
        f"WHEN s.__end_ns < s.__start_ns THEN {span} || ' ends before it starts (' "
        "|| ((s.__end_ns - s.__start_ns) / 1e6) || ' ms)' END"
    )
    derived = [
        ("provider", first("s", PROVIDER)),
        ("trace_id", "s.__trace"),
        ("span_id", "s.__span"),
        ("service.name", "s.__service"),
        ("status_message", "CASE WHEN s.__status = 2 THEN nullif(s.__status_message, '') END"),
    ]
    pairs = [f"{literal(json.dumps(k) + ':')} || CAST(to_json({e}) AS VARCHAR)" for k, e in derived]
    for key in extras:
        at = f"s.__attrs[list_position(s.__keys, {literal(key)})]"
        pairs.append(
            f"CASE WHEN {at} IS NOT NULL THEN CAST(to_json({literal(key)}) AS VARCHAR) "
            f"|| ':' || rd_otlp_render({at}) END"
        )
    columns = {
        "timestamp": "make_timestamp(s.__start_ns // 1000)",
        "feature": mapped("feature", feature),
        "request_id": mapped("request_id", f"coalesce({a['request_id']}, s.__span)"),
        "model": mapped("model", model),
        "response_model": mapped("response_model", response_model),
        "prompt_version": mapped("prompt_version", a["prompt_version"]),
        "variant": mapped("variant", None),
        "user_id": mapped("user_id", traced(TRACE_ATTRIBUTES["user_id"])),
        "segment": mapped("segment", None),
        "region": mapped("region", None),
        "latency_ms": "(s.__end_ns - s.__start_ns) / 1e6",
        "input_tokens": mapped("input_tokens", a["input_tokens"]),
        "output_tokens": mapped("output_tokens", a["output_tokens"]),
        "cost_usd": mapped("cost_usd", a["cost_usd"]),
        "error": mapped("error", error),
        "quality_score": "s.__quality",
        "feedback": "s.__feedback",
        "__extra": f"CAST('{{' || concat_ws(',', {', '.join(pairs)}) || '}}' AS JSON)",
    }
    select = ", ".join(f'{expr} AS "{name}"' for name, expr in columns.items())
    root_cols = ["any_value(__llm) AS __llm", "any_value(__name) AS __name"]
    for names in TRACE_ATTRIBUTES.values():
        col = "__t_" + "_".join(n.replace(".", "_") for n in names)
        root_cols.append(f"any_value({first('x', names)}) AS {col}")
    for name, attr in mapped_attrs.items():
        root_cols.append(f"any_value(coalesce({get('x', attr)}, x.r_{name})) AS __m_{name}")
    keyed = "SELECT *, list_transform(__attrs, lambda a: a.k) AS __keys FROM " + _SPANS
    return f"""
        SELECT s.__row, coalesce(s.__bad, {bad}) AS __bad,
               CASE WHEN s.__span IS NULL AND s.__name IS NULL THEN s.__raw
                    ELSE json_object('traceId', s.__trace, 'spanId', s.__span, 'name', s.__name,
                                     'startTimeUnixNano', s.__start,
                                     'endTimeUnixNano', s.__end)::VARCHAR END AS __raw,
               s.__trace AS __trace, {select}
        FROM ({keyed} WHERE __llm) s
        LEFT JOIN (SELECT x.__trace, {", ".join(root_cols)}
                   FROM ({keyed} WHERE __parent IS NULL AND __trace IS NOT NULL) x
                   GROUP BY x.__trace) r
          USING (__trace)"""


def extra_keys(con, section: dict[str, str]) -> list[str]:
    """The attributes of the file's LLM spans that go to `extra`: all but those read into
    fields and those holding prompt or response text."""
    keys = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT u.k FROM (SELECT unnest(__attrs) AS u FROM {_SPANS} WHERE __llm) "
            "WHERE u.k IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    consumed = _CONSUMED | set(_mapped(section).values())
    return [k for k in keys if k not in consumed and not k.startswith(CONTENT_PREFIXES)]


def define_macros(con) -> None:
    for macro in _MACROS:
        con.execute(macro)


def convert(
    con, source: SourceFile, readable: Path, mapping: Mapping | None, numbered: bool = True
) -> Converted:
    """Read an OTLP JSON file into CONVERTED_TABLE: one row per LLM span and one per line
    that is not a TracesData object, numbered by line. Numbering keeps the read on one
    thread: `numbered=False` leaves `__row` NULL (a gzipped file is numbered anyway)."""
    define_macros(con)
    section = mapping.otlp if mapping else {}
    lines = source.gzipped  # blank lines in a gzipped file cannot be counted from its bytes
    for attempt in ("json", "lines"):
        if attempt == "lines":
            lines = True
        try:
            read = _read_sql(source, readable, lines, numbered)
            con.execute(f"CREATE OR REPLACE TEMP VIEW rd_otlp_read AS {read}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_SPANS} AS {_spans_sql(section)}")
            break
        except duckdb.Error:
            if lines:
                raise
    extras = extra_keys(con, section)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CONVERTED_TABLE} AS {_requests_sql(section, extras)}")
    other = con.execute(f"SELECT count(*) FILTER (WHERE NOT __llm) FROM {_SPANS}").fetchone()[0]
    con.execute(f"DROP TABLE IF EXISTS {_SPANS}")
    scores = mapping.scores_file("otlp") if mapping else None
    if scores is not None:  # quality_score and feedback name the scores to take
        load_scores(con, scores)
        apply_scores(con, CONVERTED_TABLE, section.get("quality_score"), section.get("feedback"))
    if numbered and not lines:
        number_past_blank_lines(con, readable)
    return Converted(layout=converted_layout(con), other_spans=int(other))


def number_past_blank_lines(con, readable: Path) -> None:
    """The JSON reader counts objects, not lines: a bad row's number skips blank lines."""
    bad = con.execute(f"SELECT count(*) FROM {CONVERTED_TABLE} WHERE __bad IS NOT NULL").fetchone()[0]
    if not bad:
        return
    blanks = blank_lines(readable)
    if not blanks:
        return
    steps = [(q - i, i + 1) for i, q in enumerate(sorted(blanks))]
    con.execute("CREATE OR REPLACE TEMP TABLE rd_otlp_shift (t BIGINT, n BIGINT)")
    con.executemany("INSERT INTO rd_otlp_shift VALUES (?, ?)", steps)
    con.execute(f"""UPDATE {CONVERTED_TABLE} SET __row = __row + coalesce(
                        (SELECT max(n) FROM rd_otlp_shift WHERE t <= {CONVERTED_TABLE}.__row), 0)""")


def converted_layout(con) -> Layout:
    rows = con.execute(f"DESCRIBE {CONVERTED_TABLE}").fetchall()
    return Layout(columns=[(r[0], r[1]) for r in rows if not r[0].startswith("__")] + [("__extra", "JSON")])


def reader_sql(layout: Layout, ordered: bool = False) -> str:
    """The converted rows as the pipeline reads a file: `__row, __bad, __raw, <columns>`;
    `ordered`: in file order (the rows were numbered)."""
    cols = ", ".join(f'"{c}"' for c, _ in layout.columns)
    order = " ORDER BY __row" if ordered else ""
    return f"SELECT __row, __bad, __raw, {cols} FROM {CONVERTED_TABLE}{order}"
