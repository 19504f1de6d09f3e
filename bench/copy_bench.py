#!/usr/bin/env python3
"""rcp against scp, rsync -e ssh and cp, all through one private sshd on loopback.

Datasets: one 1 GiB file, and 10,000 files of 4 KiB in 100 directories.
Each run copies local -> `alias:<fresh dir>` (cp: a local copy), tools take
turns within a run so the page cache and the disk treat them alike, and every
copy is checked (sizes and a sample of contents) before its time counts. One
uncounted warm-up run per tool comes first. As root the data lives on a fresh
loop-mounted ext4, so earlier deletions on the machine don't skew inode costs.
Prints each time, the medians, and each tool's median over rcp's.

Then "re-run, nothing changed": rcp and rsync -a copy each dataset once more
into a target that already holds it (first copy untimed), as one re-runs a
finished or interrupted copy; only what changed should move (nothing here).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import rcp.daemon  # noqa: E402
from goals import Goal, Row, load, ratio_goal, save  # noqa: E402
from measure import RcpdMeter, children_cpu, master_command, master_usage, own_children_cpu  # noqa: E402
from measure import wait_no_children  # noqa: E402
from sshd import Sshd, env_without_agent, start_sshd, stop_sshd  # noqa: E402


@dataclass
class Dataset:
    name: str
    path: Path
    files: int
    nbytes: int
    times: dict[str, list[float]] = field(default_factory=dict)
    again: dict[str, list[float]] = field(default_factory=dict)  # re-runs, nothing changed
    usage: dict[str, list[Resources]] = field(default_factory=dict)  # measured runs (rcp, scp)


@dataclass(frozen=True)
class Resources:
    """One copy's peak RSS per rcpd (MiB) and CPU seconds: the rcpds, and all the tool's processes."""
    rcpd_peaks: tuple[tuple[str, float], ...]  # (role, MiB)
    rcpd_cpu: float
    total_cpu: float


def make_big(path: Path, mib: int) -> Dataset:
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    return Dataset(f"{mib} MiB file", path, 1, mib << 20)


def make_small(root: Path, dirs: int, per_dir: int, size: int) -> Dataset:
    for d in range(dirs):
        sub = root / f"d{d:03d}"
        sub.mkdir(parents=True)
        for i in range(per_dir):
            (sub / f"f{i:04d}").write_bytes(os.urandom(size))
    return Dataset(f"{dirs * per_dir} x {size // 1024} KiB", root, dirs * per_dir, dirs * per_dir * size)


def commands(tool: str, server: Sshd, src: Path, dst: Path, meter: RcpdMeter | None = None) -> list[str]:
    remote = f"{server.alias}:{dst}"
    ssh = f"ssh -F {server.config}"
    if tool in ("rcp", "rcp-tcp"):  # rcp-tcp: the TCP+TLS data link, to set beside QUIC's
        start = master_command(meter.dir / "master") if meter else [sys.executable, "-m", "rcp.cli"]
        rcpd = meter.wrapper if meter else rcp.daemon.rcpd_path()
        return [*start, "--no-progress", "--ssh-config", str(server.config),
                "--rcpd-path", str(rcpd), "--transport", "tcp" if tool == "rcp-tcp" else "quic",
                str(src), remote]
    if tool == "scp":
        return ["scp", "-q", "-r", "-p", "-F", str(server.config), str(src), remote]
    if tool == "rsync":
        return ["rsync", "-a", "-e", ssh, str(src), remote]
    if tool == "cp":
        return ["cp", "-a", str(src), str(dst)]
    raise ValueError(tool)


def check_copy(ds: Dataset, dst: Path) -> None:
    """The copy is complete: same number of files and bytes, first and last file equal."""
    if ds.path.is_file():
        got = [dst]
        want = [ds.path]
    else:
        got = sorted(p for p in dst.rglob("*") if p.is_file())
        want = sorted(p for p in ds.path.rglob("*") if p.is_file())
    if len(got) != ds.files or sum(p.stat().st_size for p in got) != ds.nbytes:
        raise SystemExit(f"bench: incomplete copy in {dst}")
    for a, b in ((want[0], got[0]), (want[-1], got[-1])):
        if a.read_bytes() != b.read_bytes():
            raise SystemExit(f"bench: {b} differs from {a}")


def run_once(tool: str, server: Sshd, ds: Dataset, out: Path, meter: RcpdMeter | None = None) -> float:
    """Seconds for one copy; with a meter (rcp and scp only), its resources go into ds.usage."""
    dst = out / f"{tool}-{time.monotonic_ns()}"
    subprocess.run(["sync"], check=True)
    measured = meter is not None and tool in ("rcp", "scp")
    env = env_without_agent() | (meter.env() if meter and measured else {})
    wait_no_children(server.proc.pid)
    sshd_before, own_before = children_cpu(server.proc.pid), own_children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(commands(tool, server, ds.path, dst, meter if measured else None), capture_output=True,
                          text=True, env=env, timeout=900)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench: {tool} failed ({proc.returncode}): {proc.stderr.strip()}")
    if meter and measured:
        rcpds = meter.take(2) if tool == "rcp" else []
        if tool == "rcp":
            master_usage(meter.dir / "master")
        wait_no_children(server.proc.pid)
        total = own_children_cpu() - own_before + children_cpu(server.proc.pid) - sshd_before
        ds.usage.setdefault(tool, []).append(Resources(tuple((u.role, u.peak_mib) for u in rcpds),
                                                       sum(u.cpu_s for u in rcpds), total))
    check_copy(ds, dst)
    # Small-file trees stay until the end: deleting 10,000 inodes makes the
    # next run's inode allocation slower (ext4), which would tax whoever is next.
    if dst.is_file():
        dst.unlink()
    return elapsed


RERUN_TOOLS = ("rcp", "rsync")  # those that skip what is already there


def run_again(tool: str, server: Sshd, ds: Dataset, out: Path, runs: int) -> list[float]:
    """Copies once (untimed), then times `runs` re-runs of the same command onto that copy."""
    target = out / f"{tool}-again-{'tree' if ds.path.is_dir() else 'file'}"  # one per dataset
    if ds.path.is_dir():
        target.mkdir()  # both tools then copy into it every time (rcp would make a first copy *as* it)
    times = []
    for run in range(runs + 1):
        subprocess.run(["sync"], check=True)
        started = time.perf_counter()
        proc = subprocess.run(commands(tool, server, ds.path, target), capture_output=True, text=True,
                              env=env_without_agent(), timeout=900)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"bench: {tool} re-run failed ({proc.returncode}): {proc.stderr.strip()}")
        if run:
            times.append(elapsed)
    check_copy(ds, target / ds.path.name if ds.path.is_dir() else target)
    return times


def report(ds: Dataset, tools: list[str]) -> None:
    print(f"\n{ds.name}: {ds.files} files, {ds.nbytes / 1e6:.0f} MB")
    base = statistics.median(ds.times["rcp"])
    print(f"  {'tool':<7} {'median s':>9} {'MB/s':>8} {'vs rcp':>8}   runs")
    for tool in tools:
        med = statistics.median(ds.times[tool])
        runs = " ".join(f"{t:.2f}" for t in ds.times[tool])
        print(f"  {tool:<7} {med:9.2f} {ds.nbytes / med / 1e6:8.0f} {med / base:7.2f}x   {runs}")
    print("  (vs rcp = the tool's median time over rcp's: above 1 means rcp is faster)")
    if ds.again:
        print("  re-run, nothing changed:")
        base = statistics.median(ds.again["rcp"])
        for tool, times in ds.again.items():
            med = statistics.median(times)
            print(f"  {tool:<6} {med:9.2f} {'':>8} {med / base:7.2f}x   {' '.join(f'{t:.2f}' for t in times)}")


def goals(datasets: list[Dataset]) -> list[Goal]:
    """Issue 15's goals 2 (1 GiB against scp and the bare link), 3a (10k files against rsync) and 5 (resources)."""
    out: list[Goal] = []
    for ds in datasets:
        rcp_s = statistics.median(ds.times["rcp"])
        if ds.path.is_file():
            if "scp" in ds.times:
                scp_s = statistics.median(ds.times["scp"])
                out.append(ratio_goal("2a", f"{ds.name} vs scp", f"rcp {rcp_s:.2f} s  scp {scp_s:.2f} s",
                                      scp_s / rcp_s, 2.0))
            link = load("link")
            if link and link["rows"]:
                link_mbs = max(r["nbytes"] / r["seconds"] for r in link["rows"]) / 1e6
                rcp_mbs = ds.nbytes / rcp_s / 1e6
                out.append(Goal("2b", f"{ds.name} vs the bare link (bench/run.py, {link['when']})",
                                f"rcp {rcp_mbs:.0f} MB/s  link {link_mbs:.0f} MB/s  share {rcp_mbs / link_mbs:.0%}",
                                ">= 60%", rcp_mbs >= 0.6 * link_mbs))
            else:
                out.append(Goal("2b", f"{ds.name} vs the bare link", "no figure: run bench/run.py first", ">= 60%",
                                False))
            out += resource_goals(ds)
        elif "rsync" in ds.times:
            rsync_s = statistics.median(ds.times["rsync"])
            out.append(ratio_goal("3a", ds.name, f"rcp {rcp_s:.2f} s  rsync {rsync_s:.2f} s", rsync_s / rcp_s, 2.0))
    return out


def resource_goals(ds: Dataset) -> list[Goal]:
    rcp_runs, scp_runs = ds.usage.get("rcp", []), ds.usage.get("scp", [])
    if not rcp_runs:
        return []
    gib = ds.nbytes / (1 << 30)
    peaks: dict[str, float] = {}
    for r in rcp_runs:
        for role, mib in r.rcpd_peaks:
            peaks[role] = max(peaks.get(role, 0.0), mib)
    sides = "  ".join(f"{role} {mib:.1f} MiB" for role, mib in sorted(peaks.items(), reverse=True))
    out = [Goal("5a", f"rcpd peak RSS, {ds.name}", f"{sides} (max over {len(rcp_runs)} runs)",
                "<= 64 MiB per side", len(peaks) == 2 and max(peaks.values()) <= 64)]
    rcpd = statistics.median(r.rcpd_cpu for r in rcp_runs) / gib
    total = statistics.median(r.total_cpu for r in rcp_runs) / gib
    if scp_runs:
        scp = statistics.median(r.total_cpu for r in scp_runs) / gib
        out.append(ratio_goal("5b", "CPU s/GiB, both rcpds vs scp (scp + ssh + sshd + scp -t)",
                              f"rcpds {rcpd:.2f}  scp {scp:.2f}  (rcp all processes {total:.2f})", scp / rcpd, 1.0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small-files", type=int, default=10_000, help="spread over 100 directories")
    parser.add_argument("--tools", nargs="*", default=["rcp", "scp", "rsync", "cp"],
                        help="rcp (over QUIC), rcp-tcp (over TCP+TLS), scp, rsync, cp")
    parser.add_argument("--only", choices=["big", "small"], help="run one dataset only")
    parser.add_argument("--no-rerun", dest="rerun", action="store_false",
                        help="skip the 're-run, nothing changed' rows (rcp and rsync)")
    parser.add_argument("--dir", help="where to put the data (default: a fresh ext4 file system when root, "
                                      "else a temporary dir under /tmp)")
    args = parser.parse_args()
    if "rcp" not in args.tools:
        parser.error("--tools must include rcp (ratios are against it)")
    missing = [t for t in args.tools if t not in ("rcp", "rcp-tcp") and shutil.which(t) is None]
    if missing:
        parser.error(f"not installed: {', '.join(missing)}")

    os.environ.pop("SSH_AUTH_SOCK", None)
    with contextlib.ExitStack() as stack:
        where = args.dir
        if where is None and os.geteuid() == 0:
            where = stack.enter_context(fresh_ext4(args.big_mib))
        return run(args, where)


@contextlib.contextmanager
def fresh_ext4(big_mib: int) -> Iterator[str]:
    """A new loop-mounted ext4: a file system full of recently deleted inodes
    (a test machine's /tmp) makes every inode allocation scan, and how much
    depends on luck, not on the tool."""
    image = Path(tempfile.mkdtemp(prefix="rcp-bench-fs-", dir="/var/tmp"))
    size_mib = 4 * big_mib + 2048
    subprocess.run(["truncate", "-s", f"{size_mib}M", str(image / "fs.img")], check=True)
    # Inode tables and journal zeroed now, not by a kernel thread during the runs.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image / "fs.img")],
                   check=True)
    mnt = image / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image / "fs.img"), str(mnt)], check=True)
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        shutil.rmtree(image, ignore_errors=True)


def run(args: argparse.Namespace, where: str | None) -> int:
    work = Path(tempfile.mkdtemp(prefix="rcp-bench-", dir=where))
    server = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-bench-sshd-")))
    try:
        datasets = []
        if args.only in (None, "big"):
            datasets.append(make_big(work / "big.bin", args.big_mib))
        if args.only in (None, "small"):
            datasets.append(make_small(work / "small", 100, max(1, args.small_files // 100), 4096))
        out = work / "out"
        out.mkdir()
        print(f"data in {work}; sshd on 127.0.0.1:{server.port}; {args.runs} runs per tool; {os.cpu_count()} CPUs; "
              f"scp: {subprocess.run(['ssh', '-V'], capture_output=True, text=True).stderr.strip()}")
        for ds in datasets:
            for tool in args.tools:
                ds.times[tool] = []
                run_once(tool, server, ds, out)  # warm-up, not counted: caches, first-use costs
            meter = RcpdMeter(work / "usage", rcp.daemon.rcpd_path()) if ds.path.is_file() else None
            for run in range(args.runs):
                for tool in args.tools:
                    ds.times[tool].append(run_once(tool, server, ds, out, meter))
                print(f"  {ds.name} run {run + 1}: " +
                      ", ".join(f"{t} {ds.times[t][-1]:.2f}s" for t in args.tools), flush=True)
            for tool in [t for t in args.tools if t in RERUN_TOOLS] if args.rerun else []:
                ds.again[tool] = run_again(tool, server, ds, out, args.runs)
                print(f"  {ds.name} re-runs, nothing changed, {tool}: " +
                      " ".join(f"{t:.2f}s" for t in ds.again[tool]), flush=True)
        for ds in datasets:
            report(ds, args.tools)
        save("copy", goals(datasets), [Row(ds.name, tool, statistics.median(ds.times[tool]), ds.nbytes, ds.files)
                                       for ds in datasets for tool in args.tools])
        return 0
    finally:
        stop_sshd(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
