"""Links that carry a view's state: every Explore, Compare and SQL view is a URL whose query
string opens the same view for a colleague. The pages read these parameters back through
`st.query_params`; the names are the same here and there.

    explore?feature=F&since=T&until=T&where=FILTER&metric=M&order=O&page=N
    compare?feature=F&since=T&until=T&a=FILTER&b=FILTER&metric=M
    sql?q=SQL

Times are ISO 8601 UTC (`2026-11-21T14:00:00Z`). A link held by a playbook step may use
placeholders (`{feature}`, `{onset}`, `{suspect_change.from}`, ...) that the incident fills in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from app.changes.declared import parse_time
from app.detection.findings import iso_z
from app.investigate.filters import Filter, Scope

VIEWS = ("explore", "compare", "sql")


def _clean(**values: Any) -> dict[str, str]:
    clean = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        clean[key] = iso_z(value) if isinstance(value, datetime) else str(value)
    return clean


def _link(view: str, params: dict[str, str]) -> str:
    # Placeholders and filters stay readable in a template: braces and operators unescaped.
    return f"{view}?" + urlencode(params, safe="{}|,:=<>")


def explore_params(
    scope: Scope, metric: str | None = None, order: str | None = None, page: int | None = None
) -> dict[str, str]:
    return _clean(
        feature=scope.feature,
        since=scope.since,
        until=scope.until,
        where=scope.filter.text(),
        metric=metric,
        order=order,
        page=page if page and page > 1 else None,
    )


def compare_params(
    feature: str,
    a: Filter,
    b: Filter,
    since: datetime | None = None,
    until: datetime | None = None,
    metric: str | None = None,
) -> dict[str, str]:
    return _clean(feature=feature, since=since, until=until, a=a.text(), b=b.text(), metric=metric)


def explore_link(
    scope: Scope, metric: str | None = None, order: str | None = None, page: int | None = None
) -> str:
    return _link("explore", explore_params(scope, metric, order, page))


def compare_link(
    feature: str,
    a: Filter,
    b: Filter,
    since: datetime | None = None,
    until: datetime | None = None,
    metric: str | None = None,
) -> str:
    return _link("compare", compare_params(feature, a, b, since, until, metric))


def sql_link(sql: str) -> str:
    return "sql?" + urlencode({"q": sql})


def absolute(base_url: str, link: str) -> str:
    """A link under the app's address (`http://host:8501` + `/compare?...`)."""
    return base_url.rstrip("/") + "/" + link.lstrip("/")


def parse_link(link: str) -> tuple[str, dict[str, str]]:
    """(view, parameters) of a link made by this module (relative or absolute)."""
    parts = urlsplit(link)
    view = parts.path.strip("/").rsplit("/", 1)[-1]
    if view not in VIEWS:
        raise ValueError(f"{link!r} is not a link to one of the views {', '.join(VIEWS)}")
    return view, {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


def time_param(value: str | None) -> datetime | None:
    """A time from a link parameter; None when absent or not a time."""
    return parse_time(value) if value else None
