"""Plotly figures: the stacked feature timeline with change and onset markers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from app.changes.events import ChangeEvent
from app.timestamps import display

KIND_COLOURS = {"model": "#7b3fe4", "prompt": "#e4572e", "flag": "#2e86de", "config": "#8a8a8a"}
PANELS: tuple[tuple[str, str, str], ...] = (
    ("quality_score", "Quality score (mean, 95% CI)", ".3f"),
    ("error_rate", "Error rate", ".1%"),
    ("latency_p95_ms", "p95 latency (ms)", ",.0f"),
    ("cost_per_request_usd", "Cost per request (USD)", ".4f"),
    ("requests", "Requests", ",d"),
    ("negative_feedback_rate", "Negative feedback rate", ".1%"),
)
SERIES_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)


@dataclass(frozen=True)
class OnsetMarker:
    """A detected degradation's onset, drawn as a dashed marker."""

    timestamp: datetime
    label: str
    end: datetime | None = None  # a transient's end: the episode is drawn as a shaded band


def change_hover(e: ChangeEvent) -> str:
    arrow = f"{e.from_value or '?'} → {e.to_value or '?'}"
    silent = "<br><b>silent provider update</b>" if e.silent_update else ""
    return (
        f"<b>{e.kind}</b> {e.key or ''}<br>{arrow}<br>{display(e.timestamp)}"
        f"<br>by {e.author or 'unknown'} · source {e.source}{silent}"
        + (f"<br>{e.description}" if e.description else "")
    )


def timeline_figure(
    df: pl.DataFrame, events: Sequence[ChangeEvent], onsets: Sequence[OnsetMarker] = (), title: str = ""
) -> go.Figure:
    """Six stacked panels sharing one time axis; every change is a vertical line across all
    panels, coloured by kind, with a hover marker on the top panel."""
    fig = make_subplots(
        rows=len(PANELS),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.025,
        subplot_titles=[p[1] for p in PANELS],
    )
    series = df["series"].unique(maintain_order=True).to_list() if not df.is_empty() else []
    split = series != ["all"]
    for i, name in enumerate(series):
        part = df.filter(pl.col("series") == name)
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        x = part["bucket"].to_list()
        for row, (col, label, fmt) in enumerate(PANELS, start=1):
            if row == 1 and not split:
                fig.add_trace(
                    go.Scatter(
                        x=x + x[::-1],
                        y=part["quality_hi"].to_list() + part["quality_lo"].to_list()[::-1],
                        fill="toself",
                        fillcolor="rgba(31,119,180,0.15)",
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        name="95% CI",
                    ),
                    row=1,
                    col=1,
                )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=part[col].to_list(),
                    mode="lines",
                    name=str(name),
                    legendgroup=str(name),
                    showlegend=split and row == 1,
                    line={"color": colour, "width": 1.6},
                    hovertemplate=f"{name}<br>%{{x|%Y-%m-%d %H:%M}} UTC<br>{label}: %{{y:{fmt}}}"
                    "<extra></extra>",
                ),
                row=row,
                col=1,
            )
    top_y = 1.0
    if not df.is_empty() and df["quality_score"].drop_nulls().len():
        top_y = float(df["quality_hi"].drop_nulls().max() or df["quality_score"].max())
    for e in events:
        colour = KIND_COLOURS.get(e.kind, "#444")
        fig.add_shape(
            type="line",
            x0=e.timestamp,
            x1=e.timestamp,
            xref="x",
            yref="paper",
            y0=0,
            y1=1,
            line={"color": colour, "width": 1.2, "dash": "dot" if e.silent_update else "solid"},
        )
    if events:
        for kind in sorted({e.kind for e in events}):
            group = [e for e in events if e.kind == kind]
            fig.add_trace(
                go.Scatter(
                    x=[e.timestamp for e in group],
                    y=[top_y] * len(group),
                    mode="markers",
                    marker={"symbol": "triangle-down", "size": 11, "color": KIND_COLOURS.get(kind)},
                    name=f"{kind} change",
                    hovertext=[change_hover(e) for e in group],
                    hoverinfo="text",
                    showlegend=True,
                ),
                row=1,
                col=1,
            )
    for o in onsets:
        if o.end is not None:
            fig.add_shape(
                type="rect",
                x0=o.timestamp,
                x1=o.end,
                xref="x",
                yref="paper",
                y0=0,
                y1=1,
                fillcolor="rgba(192, 57, 43, 0.12)",
                line={"width": 0},
                layer="below",
            )
    by_time: dict[datetime, list[str]] = {}
    for o in onsets:
        by_time.setdefault(o.timestamp, []).append(o.label)
    for i, (when, labels) in enumerate(sorted(by_time.items())):
        fig.add_shape(
            type="line",
            x0=when,
            x1=when,
            xref="x",
            yref="paper",
            y0=0,
            y1=1,
            line={"color": "#c0392b", "width": 2, "dash": "dash"},
        )
        fig.add_annotation(
            x=when,
            y=1.0 + 0.012 * (i % 2),
            xref="x",
            yref="paper",
            text="onset: " + "<br>".join(labels),
            showarrow=False,
            font={"color": "#c0392b", "size": 11},
            yanchor="bottom",
            xanchor="left",
            bgcolor="rgba(255,255,255,0.8)",
        )
    fig.update_layout(
        height=1150,
        margin={"l": 60, "r": 20, "t": 70, "b": 30},
        title={"text": title, "x": 1, "xanchor": "right"} if title else None,
        hovermode="closest",
        legend={"orientation": "h", "y": 1.035, "x": 0, "yanchor": "bottom"},
    )
    fig.update_yaxes(rangemode="tozero", row=2, col=1)
    return fig
