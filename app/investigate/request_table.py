"""The matching requests, one page at a time, read from DuckDB (never the whole scope).

A page is ordered newest first (ties by request_id), so the first page is DuckDB's top-N
over the scope and never sorts every row. Extra columns are spread into their own columns
(`extra.<name>`), and long text is cut to `TRUNCATE_AT` characters for the table; `request`
gives one request whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.investigate.filters import Scope, where_sql
from app.storage.schema import FIELD_NAMES
from app.storage.store import Store

PAGE_SIZE = 50
TRUNCATE_AT = 120
ORDERS = {
    "newest": "timestamp DESC, request_id",
    "oldest": "timestamp ASC, request_id",
    "worst": "(error IS NULL), quality_score ASC NULLS LAST, latency_ms DESC NULLS LAST, "
    "timestamp DESC, request_id",
}
_COLUMNS = ", ".join(f'"{n}"' for n in FIELD_NAMES) + ", extra"


@dataclass(frozen=True)
class RequestPage:
    columns: tuple[str, ...]  # canonical fields, then extra.<name> for each extra key seen
    rows: list[dict[str, Any]]
    total: int  # requests in the scope
    offset: int
    limit: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))


def truncate(value: Any, at: int = TRUNCATE_AT) -> Any:
    """Long text cut to `at` characters with an ellipsis; other values as they are."""
    if isinstance(value, str) and len(value) > at:
        return value[: at - 1] + "…"
    return value


def _spread(row: dict[str, Any], extra_keys: list[str]) -> dict[str, Any]:
    raw = row.pop("extra", None)
    extra = json.loads(raw) if isinstance(raw, str) else (raw or {})
    for key, value in (extra or {}).items():
        if key not in extra_keys:
            extra_keys.append(key)
        row[f"extra.{key}"] = value if not isinstance(value, (dict, list)) else json.dumps(value)
    return row


def count(store: Store, scope: Scope, extras: Iterable[str] = ()) -> int:
    where, params = where_sql(scope, extras)
    return int(store.scalar(f"SELECT count(*) FROM requests WHERE {where}", params) or 0)


def page(
    store: Store,
    scope: Scope,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    order: str = "newest",
    extras: Iterable[str] = (),
    total: int | None = None,
) -> RequestPage:
    """One page of the scope's requests; `total` skips the count when the caller has it."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r} is not one of {', '.join(ORDERS)}")
    extras = tuple(extras)
    where, params = where_sql(scope, extras)
    with store.session():
        rows = store.rows(
            f"""SELECT {_COLUMNS} FROM requests WHERE {where}
                              ORDER BY {ORDERS[order]} LIMIT ? OFFSET ?""",
            params + [int(limit), max(0, int(offset))],
        )
        if total is None:
            total = count(store, scope, extras)
    names = [*FIELD_NAMES, "extra"]
    keys: list[str] = []
    out = [_spread(dict(zip(names, r, strict=True)), keys) for r in rows]
    columns = (*FIELD_NAMES, *(f"extra.{k}" for k in keys))
    return RequestPage(columns, out, total, offset, limit)


def request(store: Store, feature: str, request_id: str) -> dict[str, Any] | None:
    """One request whole (no truncation), with its extra columns spread out."""
    rows = store.rows(
        f"SELECT {_COLUMNS} FROM requests WHERE feature = ? AND request_id = ? LIMIT 1", [feature, request_id]
    )
    if not rows:
        return None
    return _spread(dict(zip([*FIELD_NAMES, "extra"], rows[0], strict=True)), [])
