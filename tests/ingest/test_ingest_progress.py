"""Progress is reported within a large file as DuckDB reads it, not only between files."""

from __future__ import annotations

from pathlib import Path

from logfiles import big_frame

from app.ingest.pipeline import LoadProgress, ingest_paths
from app.storage.store import Store


def test_progress_moves_within_one_large_file(tmp_path: Path):
    rows = 2_500_000
    path = tmp_path / "big.parquet"
    big_frame(rows).write_parquet(path, row_group_size=50_000)
    small = tmp_path / "small.jsonl"
    small.write_text('{"timestamp": "2026-03-01T00:00:00Z", "feature": "chat"}\n')
    seen: list[LoadProgress] = []

    result = ingest_paths(Store(tmp_path / "data"), [str(path), str(small)], progress=seen.append)

    assert result.loaded == rows + 1
    within = [p.within_file for p in seen if p.path == str(path.resolve())]
    assert any(0 < share < 1 for share in within), within  # moved while the file was read
    assert within == sorted(within)
    fractions = [p.fraction for p in seen]
    assert fractions[0] == 0 and fractions[-1] == 1.0
    assert all(0 <= f <= 1 for f in fractions) and fractions == sorted(fractions)
