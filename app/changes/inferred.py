"""Changes inferred from the logs: the first appearance of a model, response model or prompt
version in a feature's traffic."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.changes.declared import save_events
from app.changes.events import ChangeEvent
from app.storage.store import Store

INFERRED_DIMENSIONS = ("model", "response_model", "prompt_version")
MIN_REQUESTS_FOR_CHANGE = 3
INITIAL_WINDOW = timedelta(hours=1)


def first_appearances(store: Store, features: list[str]) -> dict[str, dict]:
    """Per feature: its first timestamp, and each model / response_model / prompt_version
    value with the time it first appeared (values seen at least MIN_REQUESTS_FOR_CHANGE
    times). Read from the rollups, which keep each combination's first timestamp and count
    per five minutes."""
    rows = store.rows(
        """SELECT feature, model, response_model, prompt_version,
                  GROUPING(model, response_model, prompt_version) AS g,
                  min(first_ts), sum(requests)
           FROM rollup_5m WHERE list_contains(?, feature)
           GROUP BY GROUPING SETS ((feature), (feature, model), (feature, response_model),
                                   (feature, prompt_version))""",
        [features],
    )
    out: dict[str, dict] = {f: {"t0": None, **{d: [] for d in INFERRED_DIMENSIONS}} for f in features}
    # GROUPING() sets a bit for every column left out: 0b011 = only model kept, and so on.
    kept = {0b011: ("model", 1), 0b101: ("response_model", 2), 0b110: ("prompt_version", 3)}
    for r in rows:
        entry = out[r[0]]
        if r[4] == 0b111:
            entry["t0"] = r[5]
        elif r[4] in kept:
            dim, col = kept[r[4]]
            if r[col] is not None and r[6] >= MIN_REQUESTS_FOR_CHANGE:
                entry[dim].append((r[col], r[5]))
    for entry in out.values():
        for dim in INFERRED_DIMENSIONS:
            entry[dim].sort(key=lambda v: v[1])
    return out


def infer_changes(store: Store, feature: str, firsts: dict | None = None) -> list[ChangeEvent]:
    """First appearance of a new model, response_model or prompt_version value.

    Values present within the first hour of a feature's data are its initial state. A new
    response_model under a model alias that was already in use is a silent provider update.
    """
    firsts = firsts or first_appearances(store, [feature])[feature]
    t0 = firsts["t0"]
    if t0 is None:
        return []
    model_first = dict(firsts["model"])
    events: list[ChangeEvent | None] = []
    with store.connect() as con:
        for dim in INFERRED_DIMENSIONS:
            for value, seen in firsts[dim]:
                if seen <= t0 + INITIAL_WINDOW:
                    continue
                events.append(_inferred_event(con, feature, dim, value, seen, model_first))
    return [e for e in events if e is not None]


def _inferred_event(
    con, feature: str, dim: str, value: str, seen: datetime, model_first: dict[str, datetime]
) -> ChangeEvent | None:
    # Both lookups read the five-minute rollups, which count requests per model,
    # response_model and prompt_version.
    def previous(where_sql: str, params: list) -> str | None:
        """The value most requests had in the last day of traffic before `seen` (the day
        before it, or before a gap in the logs)."""
        before = f"""FROM rollup_5m WHERE feature = ? AND {dim} IS NOT NULL AND {dim} <> ?
                     AND first_ts < ? {where_sql}"""
        args = [feature, value, seen, *params]
        row = con.execute(
            f"""SELECT {dim} {before}
                AND last_ts >= (SELECT max(last_ts) - INTERVAL 1 DAY {before})
                GROUP BY 1 ORDER BY sum(requests) DESC, 1 LIMIT 1""",
            args + args,
        ).fetchone()
        return row[0] if row else None

    if dim != "response_model":
        kind = "model" if dim == "model" else "prompt"
        return ChangeEvent(
            timestamp=seen,
            feature=feature,
            kind=kind,
            key=dim,
            from_value=previous("", []),
            to_value=value,
            author=None,
            description=f"first request with {dim} = {value}",
            source="inferred",
        )
    row = con.execute(
        """SELECT model FROM rollup_5m WHERE feature = ? AND response_model = ?
           AND model IS NOT NULL GROUP BY 1 ORDER BY sum(requests) DESC, 1 LIMIT 1""",
        [feature, value],
    ).fetchone()
    alias = row[0] if row else None
    if alias is not None and alias in model_first and model_first[alias] >= seen - INITIAL_WINDOW:
        return None  # the app switched models; the model event tells that story
    if alias is None:
        return ChangeEvent(
            timestamp=seen,
            feature=feature,
            kind="model",
            key="response_model",
            from_value=previous("", []),
            to_value=value,
            author=None,
            description=f"first response from {value}",
            source="inferred",
        )
    before = previous("AND model = ?", [alias])
    return ChangeEvent(
        timestamp=seen,
        feature=feature,
        kind="model",
        key=alias,
        from_value=before,
        to_value=value,
        author=None,
        source="inferred",
        silent_update=True,
        description=(
            f"silent provider model update: requests for {alias} now answered by "
            f"{value}" + (f" (was {before})" if before else "")
        ),
    )


def refresh_inferred(store: Store, features: list[str]) -> None:
    """Recompute inferred events for features whose requests changed."""
    with store.session():
        firsts = first_appearances(store, features)
        events = [e for f in features for e in infer_changes(store, f, firsts[f])]
        with store.connect() as con:  # the session's connection: one transaction
            con.execute("BEGIN TRANSACTION")
            con.execute(
                "DELETE FROM changes WHERE source = 'inferred' AND list_contains(?, feature)", [features]
            )
            save_events(store, events)
            con.execute("COMMIT")
