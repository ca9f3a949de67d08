"""Summarize a pytest-benchmark JSON file as a Markdown table, one row per benchmark by group.

Usage: ``python scripts/bench_report.py .benchmarks/latest.json [OUT.md]``. Each group pairs the
project's case (``symphony``) with its same-run baselines (``baseline:<what>``); the ratio column is
the baseline's median over symphony's.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


PER_UNIT_KEYS = ("per_call_ns", "per_op_ns", "per_decision_ns", "per_transition_ns", "per_node_us")


def _unit_cost(bench: dict[str, Any]) -> float:
    """Return the cost to compare: a recorded per-unit figure, else the median round."""
    extra = bench.get("extra_info", {})
    for key in PER_UNIT_KEYS:
        if key in extra:
            return float(extra[key])
    return float(bench["stats"]["median"])


def render(data: dict[str, Any]) -> str:
    """Render the benchmarks of ``data`` (pytest-benchmark JSON) as a Markdown table."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"] or "(none)"].append(b)
    lines = [
        "| group | case | median | ops/s | vs symphony | extra |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for group in sorted(groups):
        rows = groups[group]
        sym = next(
            (
                r
                for r in rows
                if r["name"].split("[")[-1].rstrip("]") == "symphony"
                or r.get("param") == "symphony"
            ),
            None,
        )
        sym_cost = _unit_cost(sym) if sym else None
        for r in sorted(rows, key=lambda r: (r is not sym, r["name"])):
            st = r["stats"]
            cost = _unit_cost(r)
            ratio = f"{cost / sym_cost:.3g}×" if sym_cost and r is not sym else ""
            extra = ", ".join(f"{k}={v}" for k, v in sorted(r.get("extra_info", {}).items()))
            lines.append(
                f"| {group} | {r.get('param') or r['name']} | {_fmt_time(st['median'])} | "
                f"{st['ops']:.3g} | {ratio} | {extra} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    """Print the table; also write it to the second argument when given."""
    data = json.loads(Path(sys.argv[1]).read_text())
    table = render(data)
    print(table)
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
