"""A small store whose answers are known: one feature, two prompt versions, two regions.

support-bot, 2026-11-20 00:00 to 2026-11-21 00:00 UTC, one request a minute per arm slot:
- prompt v7: 2000 requests, every 40th an error (50 errors, 2.5%); quality on a 0.001 grid
  around 0.80; latency 1000 + (i % 400) ms; cost 0.002 + (i % 10) * 0.0001 USD.
- prompt v8: 1000 requests, every 8th an error (125 errors, 12.5%); quality around 0.70;
  latency 1500 + (i % 500) ms; cost 0.003 + (i % 10) * 0.0001 USD.
- region: `eu` for v8 rows whose i is even, `us` otherwise; an extra column `ticket_channel`
  (`chat` or `email`) and a long `prompt_text` (500 characters) on every row.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

START = datetime(2026, 11, 20)
FEATURE = "support-bot"
N_V7, N_V8 = 2000, 1000


def known_rows() -> list[dict]:
    rows = []
    for arm, n, err_every, q_base, lat_base, lat_mod, cost_base in (
        ("v7", N_V7, 40, 0.80, 1000, 400, 0.002),
        ("v8", N_V8, 8, 0.70, 1500, 500, 0.003),
    ):
        for i in range(n):
            t = START + timedelta(seconds=(86_400 * i) // n + (0 if arm == "v7" else 7))
            rows.append(
                {
                    "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "feature": FEATURE,
                    "request_id": f"{arm}-{i:05d}",
                    "model": "gpt-4.1-2025-04-14",
                    "prompt_version": arm,
                    "region": "eu" if arm == "v8" and i % 2 == 0 else "us",
                    "latency_ms": float(lat_base + i % lat_mod),
                    "cost_usd": round(cost_base + (i % 10) * 0.0001, 6),
                    "error": "timeout" if i % err_every == 0 else None,
                    "quality_score": None if i % 3 == 0 else round(q_base + ((i * 37) % 200) / 1000, 3),
                    "feedback": -1 if i % 11 == 0 else (1 if i % 5 == 0 else None),
                    "ticket_channel": "chat" if i % 4 else "email",
                    "prompt_text": f"request {arm}-{i} " + "x" * 500,
                }
            )
    return rows


@pytest.fixture(scope="session")
def known_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.ingest.pipeline import ingest_paths
    from app.storage.store import Store

    folder = tmp_path_factory.mktemp("known")
    logs = folder / "known.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in known_rows()))
    data = folder / "data"
    result = ingest_paths(Store(data), [str(logs)])
    assert result.loaded == N_V7 + N_V8
    return data


@pytest.fixture
def known_dir(known_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(known_template, target)
    return target
