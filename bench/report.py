#!/usr/bin/env python3
"""Gathers what the benches stored (bench/results/raw/*.json) into one summary.

Prints every goal of issue 15 with its figures and met / NOT MET (or how to get
a missing one), and writes bench/results/results.md (a table of workloads x
tools, then the goals), bench/results/results.png (matplotlib, Agg) and the
table into README.md between its bench markers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goals import RESULTS, Goal, load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ("startup", "link", "copy", "many", "million", "wan")
# Every goal of issue 15, and where it comes from when it is missing.
EXPECTED = {
    "1a": "bench/startup_bench.py", "1b": "bench/startup_bench.py", "2a": "bench/copy_bench.py",
    "2b": "bench/run.py, then bench/copy_bench.py", "3a": "bench/copy_bench.py", "3b": "bench/many_files.py",
    "3b-rss": "bench/many_files.py",
    "3c": "make bench-million (root, ~10 min)", "4a": "make bench-wan (root, ~15 min)", "4b": "make bench-wan (root)",
    "5a": "bench/copy_bench.py", "5b": "bench/copy_bench.py",
}
TOOLS = ("rcp", "scp", "rsync", "cp")
README_BEGIN = "<!-- bench results: written by bench/report.py -->"
README_END = "<!-- end of bench results -->"


def gather() -> tuple[list[dict], list[Goal], list[str]]:  # type: ignore[type-arg]
    rows: list[dict] = []  # type: ignore[type-arg]
    goals: list[Goal] = []
    notes: list[str] = []
    for bench in BENCHES:
        doc = load(bench)
        if doc is None:
            continue
        notes.append(f"{bench}: {doc['when']}, {doc['machine']}")
        notes += [f"{bench}: {n}" for n in doc["notes"]]
        rows += doc["rows"]
        goals += [Goal(**g) for g in doc["goals"]]
    return rows, goals, notes


def cell(row: dict) -> str:  # type: ignore[type-arg]
    s = row["seconds"]
    if "note" in row:
        return f"{s:.3f} s ({row['note']})"
    if row["files"] > 1:
        return f"{s:.2f} s ({row['files'] / s:,.0f} files/s)"
    if row["nbytes"] > 1 << 20:
        return f"{s:.2f} s ({row['nbytes'] / s / 1e6:.0f} MB/s)"
    return f"{s:.3f} s"


def normalized(row: dict) -> dict:  # type: ignore[type-arg]
    """Into the four columns: the bare link under rcp (its datagram size in the workload), scp -3 under scp."""
    if row["tool"].startswith("QUIC"):
        return {**row, "workload": f"{row['workload']}, {row['tool']}", "tool": "rcp"}
    if row["tool"] == "scp -3":
        return {**row, "tool": "scp", "note": "scp -3"}
    return row


def table(rows: list[dict]) -> list[str]:  # type: ignore[type-arg]
    rows = [normalized(r) for r in rows]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    others = [t for t in dict.fromkeys(r["tool"] for r in rows) if t not in TOOLS]
    tools = list(TOOLS) + others
    by = {(r["workload"], r["tool"]): r for r in rows}
    used = [t for t in tools if any((w, t) in by for w in workloads)]
    out = ["| workload | " + " | ".join(used) + " |", "|---|" + "---|" * len(used)]
    for w in workloads:
        out.append(f"| {w} | " + " | ".join(cell(by[w, t]) if (w, t) in by else "" for t in used) + " |")
    return out


def goal_lines(goals: list[Goal]) -> list[str]:
    have = {g.key for g in goals}
    lines = [g.line() for g in sorted(goals, key=lambda g: g.key)]
    lines += [f"goal {k}: not measured in these results: run {src}" for k, src in EXPECTED.items() if k not in have]
    return sorted(lines, key=lambda line: line.split(":")[0].split()[1])


def write_markdown(rows: list[dict], goals: list[Goal], notes: list[str],  # type: ignore[type-arg]
                   note: str) -> list[str]:
    md = ["# rcp bench results", "", "Medians in seconds (and throughput), written by `make bench` "
          "(bench/report.py). Issue 15's goals follow the table." + (f" {note}" if note else ""), ""]
    md += table(rows)
    md += ["", "## Goals", ""] + [f"- {line}" for line in goal_lines(goals)]
    md += ["", "## Runs", ""] + [f"- {n}" for n in notes] + ["", "![rcp against scp, rsync and cp](results.png)", ""]
    (RESULTS / "results.md").write_text("\n".join(md))
    return md


def write_png(rows: list[dict]) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [normalized(r) for r in rows]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    cols = 3
    nrows = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 2.4 * nrows + 0.5), squeeze=False)
    colors = {"rcp": "tab:blue", "scp": "tab:orange", "rsync": "tab:green", "cp": "tab:gray"}
    for ax, w in zip(axes.flat, workloads):
        mine = [r for r in rows if r["workload"] == w]
        bars = ax.barh([r["tool"] for r in mine], [r["seconds"] for r in mine],
                       color=[colors.get(r["tool"], "tab:purple") for r in mine])
        ax.bar_label(bars, fmt="%.2f s", fontsize=7, padding=2)
        ax.margins(x=0.2)
        ax.invert_yaxis()
        ax.set_title(w, fontsize=9)
        ax.set_xlabel("seconds (less is better)", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(workloads):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(RESULTS / "results.png", dpi=90)
    plt.close(fig)


def update_readme(lines: list[str]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        print(f"report: README.md has no '{README_BEGIN}' section; table not copied", file=sys.stderr)
        return
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(head + README_BEGIN + "\n\n" + "\n".join(lines) + "\n\n" + README_END + tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-readme", dest="readme", action="store_false", help="leave README.md as it is")
    parser.add_argument("--note", default="", help="a sentence on the run (the machine, its load) for both tables")
    args = parser.parse_args()
    rows, goals, notes = gather()
    print("\nissue 15 goals (every figure from bench/results/raw/, written by the benches just run):")
    for line in goal_lines(goals):
        print("  " + line)
    write_markdown(rows, goals, notes, args.note)
    write_png(rows)
    print(f"wrote {RESULTS / 'results.md'} and {RESULTS / 'results.png'}")
    if args.readme:
        update_readme(([args.note, ""] if args.note else []) + table(rows) + ["", "Issue 15's goals in that run:", ""]
                      + [f"- {line}" for line in goal_lines(goals)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
