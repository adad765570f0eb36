"""The demo data directory's `slos.yaml`: objectives for four of the five features (the
fifth, search-answers, has none, so the review shows what a feature without objectives
looks like)."""

from __future__ import annotations

from pathlib import Path

from app.review.slos import SLOS_FILE

DEMO_SLOS = """\
# Service-level objectives of the demo features (docs/review.md describes every key).
window_days: 28
min_requests: 100
failure_horizon_hours: 24
features:
  support-reply:
    objectives:
      - {name: availability, sli: success_rate, objective: 0.985}
      - {name: fast, sli: latency, threshold_ms: 3000, objective: 0.95}
      - {name: good-answers, sli: quality, threshold: 0.7, objective: 0.88}
      - {name: happy-users, sli: feedback, objective: 0.8}
    cost: {per_request_usd: 0.002, per_day_usd: 20}
  doc-summarizer:
    objectives:
      - {name: availability, sli: success_rate, objective: 0.985}
      - {name: fast, sli: latency, threshold_ms: 8000, objective: 0.95}
    cost: {per_request_usd: 0.008}
  code-assistant:
    objectives:
      - {name: availability, sli: success_rate, objective: 0.985}
      - {name: good-answers, sli: quality, threshold: 0.6, objective: 0.9}
  ticket-triage-agent:
    objectives:
      - {name: availability, sli: success_rate, objective: 0.98}
    cost: {per_day_usd: 12}
"""


def write_demo_slos(data_dir: Path) -> Path:
    path = Path(data_dir) / SLOS_FILE
    path.write_text(DEMO_SLOS)
    return path
