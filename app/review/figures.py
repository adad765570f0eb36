"""The review's charts as plotly figures, shared by the Review page and the HTML export."""

from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go

from app.review.budget import SloStatus
from app.review.report import FeatureReview, WeeklyReview

_LAYOUT = dict(margin=dict(l=40, r=10, t=40, b=30), height=260, template="plotly_white")


def burndown(status: SloStatus, since: datetime | None = None) -> go.Figure:
    """Share of the error budget left over the SLO window; the review's week shaded."""
    xs = [t for t, _ in status.burndown]
    ys = [v for _, v in status.burndown]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", name="budget left", line=dict(color="#1f77b4")))
    fig.add_hline(y=0, line=dict(color="#d62728", dash="dot"))
    if since is not None:
        fig.add_vrect(x0=since, x1=status.until, fillcolor="#999", opacity=0.12, line_width=0)
    for a in status.alerts:
        fig.add_vline(x=a.start, line=dict(color="#ff7f0e", dash="dash"))
    o = status.objective
    fig.update_layout(
        title=f"{status.feature} · {o.name}: budget left ({o.objective:.2%} "
        f"over {status.window_days:g} days)",
        yaxis=dict(tickformat=".0%"),
        **_LAYOUT,
    )
    return fig


def sparkline(feature: FeatureReview, metric: str) -> go.Figure:
    points = feature.daily.get(metric, [])
    fig = go.Figure(
        go.Scatter(
            x=[t for t, _ in points], y=[v for _, v in points], mode="lines+markers", line=dict(width=1.5)
        )
    )
    fig.update_layout(
        height=90,
        margin=dict(l=0, r=0, t=0, b=0),
        showlegend=False,
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        template="plotly_white",
    )
    return fig


def cost_by_feature(review: WeeklyReview) -> go.Figure:
    """Cost of the week per feature, stacked by model."""
    fig = go.Figure()
    models = sorted({m for f in review.features for m, _, _ in f.cost_by_model})
    for model in models:
        fig.add_bar(
            name=model,
            x=[f.feature for f in review.features],
            y=[sum(c for m, _, c in f.cost_by_model if m == model) for f in review.features],
        )
    fig.update_layout(
        barmode="stack", title="Cost of the week per feature and model (USD)", **{**_LAYOUT, "height": 320}
    )
    return fig
