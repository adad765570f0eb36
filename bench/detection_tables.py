"""Write the independent suite's last results into docs/detection.md.

    .venv/bin/python bench/detection_independent_bench.py   # writes bench/out/detection_independent.json
    .venv/bin/python bench/detection_tables.py

The table is the independent benchmark's own (`table`), placed between the
`bench-independent` markers of docs/detection.md; `bench/detection_bench.py` writes the first
suite's table between the `bench` markers itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.detection_independent_bench import OUT, table  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "detection.md"
MARK_START, MARK_END = "<!-- bench-independent:start -->", "<!-- bench-independent:end -->"


def main() -> int:
    results = OUT / "detection_independent.json"
    if not results.exists():
        print(f"{results} not found: run bench/detection_independent_bench.py first", file=sys.stderr)
        return 1
    text = table(json.loads(results.read_text())["summary"])
    doc = DOC.read_text()
    head, rest = doc.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    DOC.write_text(f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
