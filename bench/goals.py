"""Issue 15's goals as the benches print and store them.

Each bench prints one line per goal (`goal 3a: ... met` / `NOT MET`) and saves
its goals and its table rows (workload, tool, seconds, bytes) as JSON under
bench/results/raw/, from which bench/report.py writes results.md, results.png
and the README's table.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RAW = RESULTS / "raw"


@dataclass(frozen=True)
class Goal:
    key: str  # "3a"
    what: str  # "10k x 4 KiB"
    figures: str  # "rcp 0.94 s  rsync 0.88 s  ratio 0.94x"
    target: str  # ">= 2x"
    met: bool | None  # None: report only, no target

    def line(self) -> str:
        verdict = "report only" if self.met is None else ("met" if self.met else "NOT MET")
        target = f"  (goal {self.target})" if self.target else ""
        return f"goal {self.key}: {self.what}  {self.figures}{target}  {verdict}"


@dataclass(frozen=True)
class Row:
    workload: str
    tool: str
    seconds: float
    nbytes: int
    files: int


def ratio_goal(key: str, what: str, figures: str, ratio: float, at_least: float) -> Goal:
    """A goal on `ratio` (the other tool's time over rcp's, or a share), met when >= at_least."""
    return Goal(key, what, f"{figures}  ratio {ratio:.2f}x", f">= {at_least:g}x", ratio >= at_least)


def limit_goal(key: str, what: str, value: float, unit: str, at_most: float) -> Goal:
    return Goal(key, what, f"{value:.1f} {unit}", f"<= {at_most:g} {unit}", value <= at_most)


def save(bench: str, goals: list[Goal], rows: list[Row], notes: list[str] | None = None) -> None:
    """Prints the goal lines and stores them with the rows as raw/<bench>.json."""
    if goals:
        print(f"\n{bench}: goals")
        for goal in goals:
            print("  " + goal.line())
    RAW.mkdir(parents=True, exist_ok=True)
    doc = {"bench": bench, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": f"{platform.node()}, {platform.machine()}, load {open('/proc/loadavg').read().split()[0]}",
           "goals": [asdict(g) for g in goals], "rows": [asdict(r) for r in rows], "notes": notes or []}
    (RAW / f"{bench}.json").write_text(json.dumps(doc, indent=1) + "\n")


def load(bench: str) -> dict | None:  # type: ignore[type-arg]
    path = RAW / f"{bench}.json"
    return json.loads(path.read_text()) if path.exists() else None
