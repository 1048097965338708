"""Compare two bench.json files (for example, from two commits), row by row and goal by goal.

    python tests/bench/compare.py OLD.json NEW.json [--threshold 0.10]

Rows are matched on (n, scenario, tool). For each: the old and new medians, new/old, and a mark
when the change is beyond the threshold (default 10%) *and* beyond both runs' min-max spread,
so noise alone is not flagged. Then the goals whose status changed. Exit 0 always: the verdict is
for a person (timings from different machines are not comparable; the machine lines are shown).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _key(row: dict[str, Any]) -> tuple[int, str, str]:
    return (row["n"], row["scenario"], row["tool"])


def _machine(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    return (
        f"{m.get('packer_commit', '?')} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"Python {m.get('python', '?')}, doit {m.get('doit', '?')} ({data.get('started', '?')})"
    )


def compare(old: dict[str, Any], new: dict[str, Any], threshold: float) -> list[str]:
    lines = [f"old: {_machine(old)}", f"new: {_machine(new)}"]
    same = ("cpu", "cores", "python", "doit", "platform")
    if any(old.get("machine", {}).get(k) != new.get("machine", {}).get(k) for k in same):
        lines.append("warning: the machines differ; timings are not comparable")
    lines.append("")
    lines.append(
        f"{'n':>7}  {'scenario':<11} {'tool':<13} {'old_s':>8} {'new_s':>8} {'new/old':>8} "
        f"{'old_rss':>8} {'new_rss':>8}"
    )
    old_rows = {_key(r): r for r in old.get("rows", [])}
    new_rows = {_key(r): r for r in new.get("rows", [])}
    for key in sorted(set(old_rows) | set(new_rows)):
        a, b = old_rows.get(key), new_rows.get(key)
        n, scenario, tool = key
        head = f"{n:>7}  {scenario:<11} {tool:<13}"
        if a is None or b is None:
            lines.append(f"{head} {'only in ' + ('new' if a is None else 'old'):>17}")
            continue
        ratio = b["median_s"] / a["median_s"] if a["median_s"] > 0 else float("inf")
        mark = ""
        if ratio > 1 + threshold and b["min_s"] > a["max_s"]:
            mark = "  slower"
        elif ratio < 1 - threshold and b["max_s"] < a["min_s"]:
            mark = "  faster"
        lines.append(
            f"{head} {a['median_s']:>8.3f} {b['median_s']:>8.3f} {ratio:>8.2f} "
            f"{a['peak_rss_mib']:>8.1f} {b['peak_rss_mib']:>8.1f}{mark}"
        )
    old_goals = {(g["goal"], g["n"], g["tool"]): g for g in old.get("goals", [])}
    changed = []
    for goal in new.get("goals", []):
        before = old_goals.get((goal["goal"], goal["n"], goal["tool"]))
        status = before["status"] if before else "absent"
        if status != goal["status"]:
            changed.append(
                f"{status:>6} -> {goal['status']:<4}  n={goal['n']} {goal['tool']}: "
                f"{goal['text']} ({before['value'] if before else '-'} -> {goal['value']})"
            )
    lines.append("")
    lines.append("goals that changed status:" if changed else "no goal changed status")
    lines.extend(changed)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--threshold", type=float, default=0.10)
    args = parser.parse_args(argv)
    for line in compare(_load(args.old), _load(args.new), args.threshold):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
