"""Print the fault tier's latest figures as a Markdown table (for the README's reliability section).

Each scenario appends one JSON line to test-artifacts/faults/results.jsonl when it runs; this keeps
the last line of each. Run `.venv/bin/python tests/faults/report.py` after `pytest tests/faults`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "faults" / "results.jsonl"


def latest(lines: list[str]) -> dict[str, dict]:
    """The last figures of each scenario, in the order scenarios first appear."""
    found: dict[str, dict] = {}
    for line in lines:
        if line.strip():
            figures = json.loads(line)
            found[figures.pop("scenario")] = figures
    return found


def table(results: dict[str, dict]) -> str:
    rows = ["| scenario | measured at | figures |", "|---|---|---|"]
    for scenario, figures in results.items():
        at = figures.pop("at", "")
        shown = ", ".join(f"{name} {value}" for name, value in figures.items())
        rows.append(f"| `{scenario}` | {at} | {shown} |")
    return "\n".join(rows)


def main() -> int:
    if not RESULTS.exists():
        print(f"no figures yet: run `pytest tests/faults` first ({RESULTS} is missing)", file=sys.stderr)
        return 1
    print(table(latest(RESULTS.read_text().splitlines())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
