#!/usr/bin/env python3
"""Start-up: a 1-byte copy, where nearly all the time is getting ready.

Through one private sshd on loopback (the same server stands for both
remotes): local -> remote, rcp (QUIC and TCP data links) against scp; and
remote -> remote, rcp against `scp -3` (scp's way between two remotes, through
the local machine). Tools take turns within a run; one uncounted warm-up each.
Prints each median and the ratio to scp against issue 15's goals (local ->
remote <= 1.5x scp, remote -> remote <= 2x scp -3).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import rcp.daemon  # noqa: E402
from goals import Goal, Row, save  # noqa: E402
from sshd import Sshd, env_without_agent, start_sshd, stop_sshd  # noqa: E402

GOALS = {"local->remote": ("scp", 1.5), "remote->remote": ("scp -3", 2.0)}


def command(tool: str, server: Sshd, src: str, dst: str) -> list[str]:
    if tool.startswith("rcp"):
        return [sys.executable, "-m", "rcp.cli", "--no-progress", "-q", "--ssh-config", str(server.config),
                "--rcpd-path", str(rcp.daemon.rcpd_path()), "--transport", "tcp" if tool == "rcp-tcp" else "quic",
                src, dst]
    return ["scp", "-q", "-F", str(server.config)] + (["-3"] if tool == "scp -3" else []) + [src, dst]


def timed(cmd: list[str], target: Path, steps: dict[str, list[float]] | None = None) -> float:
    """The copy's wall time; with `steps`, rcp runs with RCP_TRACE=1 and each
    traced step's time since the launch is added there (python/rcp/trace.py)."""
    env = env_without_agent()
    if steps is not None:
        env["RCP_TRACE"] = "1"
    launched = time.time()
    start = time.monotonic()
    done = subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    if target.read_bytes() != b"x":
        raise RuntimeError(f"{cmd}: wrong copy at {target}")
    if steps is not None:
        for line in done.stderr.splitlines():
            if line.startswith("rcp-trace "):
                _, at, step = line.split(" ", 2)
                steps.setdefault(step, []).append(float(at) - launched)
        steps.setdefault("exited", []).append(elapsed)
    return elapsed


def print_steps(steps: dict[str, list[float]]) -> None:
    """Each step's median time since the launch, and since the step before."""
    before = 0.0
    for step, at in sorted(steps.items(), key=lambda kv: statistics.median(kv[1])):
        med = statistics.median(at)
        print(f"    {step:18s} at {med:6.3f} s  (+{med - before:.3f})")
        before = med


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs per tool (default 7)")
    parser.add_argument("--trace", action="store_true",
                        help="also print where rcp's time goes, step by step (RCP_TRACE)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rcp-startup-") as tmp:
        d = Path(tmp)
        (d / "sshd").mkdir()
        server = start_sshd(d / "sshd")
        try:
            one = d / "one"
            one.write_bytes(b"x")
            out = d / "out"
            out.mkdir()
            cases = {
                "local->remote": (["rcp", "rcp-tcp", "scp"], str(one)),
                "remote->remote": (["rcp", "scp -3"], f"{server.alias}:{one}"),
            }
            goals, rows = [], []
            for case, (tools, src) in cases.items():
                times: dict[str, list[float]] = {t: [] for t in tools}
                steps: dict[str, list[float]] = {}
                for i in range(args.runs + 1):
                    for tool in tools:
                        target = out / f"{case[0]}-{tool.replace(' ', '')}-{i}"
                        traced = steps if args.trace and tool == "rcp" and i else None
                        t = timed(command(tool, server, src, f"{server.alias}:{target}"), target, traced)
                        if i:  # run 0 warms up
                            times[tool].append(t)
                med = {t: statistics.median(v) for t, v in times.items()}
                base, goal = GOALS[case]
                print(f"\n1-byte copy {case} ({args.runs} runs, medians)")
                for tool in tools:
                    print(f"  {tool:8s} {med[tool]:6.3f} s   (min {min(times[tool]):.3f}, max {max(times[tool]):.3f})")
                ratio = med["rcp"] / med[base]
                print(f"  rcp / {base} = {ratio:.2f}x   goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'}")
                if steps:
                    print("  rcp's steps (medians since the launch):")
                    print_steps(steps)
                goals.append(Goal("1a" if case == "local->remote" else "1b", f"1-byte copy {case}",
                                  f"rcp {med['rcp']:.3f} s  {base} {med[base]:.3f} s  rcp/{base} {ratio:.2f}x",
                                  f"<= {goal:g}x", ratio <= goal))
                rows += [Row(f"1 byte, {case}", tool, med[tool], 1, 1) for tool in tools]
            save("startup", goals, rows)
        finally:
            stop_sshd(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
