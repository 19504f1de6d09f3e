#!/usr/bin/env python3
"""Many files through one private sshd on loopback (issue 15, goal 3b and 3c).

- 100,000 files of 0-64 KiB (uniform sizes, fixed seed) in 1,000 directories:
  rcp against `rsync -a -e ssh` (and cp), one counted run each after a
  warm-up of the tree's metadata; rcp's rcpds are measured (peak RSS).
- 1,000,000 empty files in 1,000 directories on a loop-mounted ext4 made with
  enough inodes (`mkfs.ext4 -N`; root only): rcp, its time and the peak RSS of
  the master and of each rcpd, and rsync beside it.

As root every data set lives on its own fresh ext4 image under /var/tmp,
unmounted and removed at the end. Each copy is checked (file count and bytes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import rcp.daemon  # noqa: E402
from goals import Goal, Row, ratio_goal, save  # noqa: E402
from measure import RcpdMeter, Usage, master_command, master_usage  # noqa: E402
from sshd import Sshd, env_without_agent, start_sshd, stop_sshd  # noqa: E402


@dataclass(frozen=True)
class Tree:
    name: str
    path: Path
    files: int
    nbytes: int


@dataclass(frozen=True)
class Run:
    seconds: float
    rcpds: tuple[Usage, ...] = ()
    master: Usage | None = None


def make_tree(root: Path, name: str, files: int, dirs: int, max_bytes: int) -> Tree:
    """`files` files spread over `dirs` directories, sizes uniform in [0, max_bytes]."""
    rng = random.Random(15)
    blob = os.urandom(2 * max_bytes + 1)  # slices of one random blob: fast to write, nothing compresses
    per_dir = files // dirs
    total = 0
    for d in range(dirs):
        sub = root / f"d{d:04d}"
        sub.mkdir(parents=True)
        for i in range(per_dir):
            size = rng.randint(0, max_bytes)
            fd = os.open(sub / f"f{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            if size:
                start = rng.randint(0, max_bytes)
                os.write(fd, blob[start:start + size])
            os.close(fd)
            total += size
    return Tree(name, root, per_dir * dirs, total)


def count(root: Path) -> tuple[int, int]:
    files = nbytes = 0
    for dirpath, _, names in os.walk(root):
        files += len(names)
        for n in names:
            nbytes += os.lstat(os.path.join(dirpath, n)).st_size
    return files, nbytes


def command(tool: str, server: Sshd, src: Path, dst: Path, meter: RcpdMeter | None) -> list[str]:
    if tool == "rcp":
        assert meter is not None
        return [*master_command(meter.dir / "master"), "--no-progress", "-q", "--ssh-config", str(server.config),
                "--rcpd-path", str(meter.wrapper), str(src), f"{server.alias}:{dst}"]
    if tool == "rsync":
        return ["rsync", "-a", "-e", f"ssh -F {server.config}", str(src) + "/", f"{server.alias}:{dst}/"]
    if tool == "cp":
        return ["cp", "-a", str(src), str(dst)]
    raise ValueError(tool)


def copy(tool: str, server: Sshd, tree: Tree, dst: Path, meter: RcpdMeter | None) -> Run:
    subprocess.run(["sync"], check=True)
    env = env_without_agent() | (meter.env() if tool == "rcp" and meter else {})
    started = time.perf_counter()
    proc = subprocess.run(command(tool, server, tree.path, dst, meter), capture_output=True, text=True, env=env,
                          timeout=3600)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench: {tool} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    got = count(dst)
    if got != (tree.files, tree.nbytes):
        raise SystemExit(f"bench: {tool} copied {got[0]} files, {got[1]} bytes of {tree.files}, {tree.nbytes}")
    if tool != "rcp" or meter is None:
        return Run(elapsed)
    return Run(elapsed, tuple(meter.take(2)), master_usage(meter.dir / "master"))


@contextlib.contextmanager
def fresh_ext4(size_gib: int, inodes: int | None) -> Iterator[Path]:
    """A new loop-mounted ext4 under /var/tmp, unmounted and removed on the way out."""
    image = Path(tempfile.mkdtemp(prefix="rcp-bench-many-", dir="/var/tmp"))
    try:
        subprocess.run(["truncate", "-s", f"{size_gib}G", str(image / "fs.img")], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        *(["-N", str(inodes)] if inodes else []), str(image / "fs.img")], check=True)
        mnt = image / "mnt"
        mnt.mkdir()
        subprocess.run(["mount", "-o", "loop", str(image / "fs.img"), str(mnt)], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    finally:
        shutil.rmtree(image, ignore_errors=True)


@contextlib.contextmanager
def data_dir(size_gib: int, inodes: int | None) -> Iterator[Path]:
    if os.geteuid() == 0:
        with fresh_ext4(size_gib, inodes) as mnt:
            yield mnt
    else:
        with tempfile.TemporaryDirectory(prefix="rcp-bench-many-") as tmp:
            yield Path(tmp)


def bench_tree(server: Sshd, work: Path, tree: Tree, tools: list[str]) -> dict[str, Run]:
    count(tree.path)  # warm the source's metadata once for all tools
    runs: dict[str, Run] = {}
    meter = RcpdMeter(work / "usage", rcp.daemon.rcpd_path())
    for tool in tools:
        runs[tool] = copy(tool, server, tree, work / f"out-{tool}", meter)
        extra = ""
        master = runs[tool].master
        if master:
            extra = (f"  peak RSS {', '.join(f'{u.role} {u.peak_mib:.1f}' for u in runs[tool].rcpds)} MiB"
                     f"  master {master.peak_mib:.1f} MiB")
        print(f"  {tree.name}: {tool} {runs[tool].seconds:.2f} s{extra}", flush=True)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="goal 3b's tree (0: skip it)")
    parser.add_argument("--dirs", type=int, default=1_000)
    parser.add_argument("--tools", nargs="*", default=["rcp", "rsync", "cp"])
    parser.add_argument("--million", type=int, default=int(os.environ.get("RCP_BENCH_MILLION", "1_000_000")),
                        help="empty files for goal 3c (root; default 1,000,000 or $RCP_BENCH_MILLION; 0 skips)")
    parser.add_argument("--million-tools", nargs="*", default=["rcp", "rsync"])
    args = parser.parse_args()
    os.environ.pop("SSH_AUTH_SOCK", None)
    goals: list[Goal] = []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="rcp-bench-sshd-") as tmp:
        server = start_sshd(Path(tmp))
        try:
            if args.files:  # 0: only the million
                gib = 5 * args.files * 32 // (1 << 20) + 2  # GiB: the source and three copies, ~32 KiB a file
                with data_dir(gib, None) as where:
                    started = time.monotonic()
                    tree = make_tree(where / "src", f"{args.files:,} x 0-64 KiB", args.files, args.dirs, 64 << 10)
                    print(f"{tree.name}: {tree.files} files, {tree.nbytes / 1e6:.0f} MB in {args.dirs} directories "
                          f"(made in {time.monotonic() - started:.0f} s)", flush=True)
                    runs = bench_tree(server, where, tree, args.tools)
                rows += [Row(tree.name, tool, run.seconds, tree.nbytes, tree.files) for tool, run in runs.items()]
                if "rsync" in runs:
                    goals.append(ratio_goal("3b", tree.name, f"rcp {runs['rcp'].seconds:.2f} s  "
                                            f"rsync {runs['rsync'].seconds:.2f} s", runs["rsync"].seconds /
                                            runs["rcp"].seconds, 2.0))
                peak = max(u.peak_mib for u in runs["rcp"].rcpds)
                goals.append(Goal("3b-rss", f"{tree.name}, rcpd peak RSS",
                                  "  ".join(f"{u.role} {u.peak_mib:.1f} MiB" for u in runs["rcp"].rcpds),
                                  "<= 128 MiB", peak <= 128))
            if args.million and os.geteuid() == 0:
                n = args.million
                with data_dir(n // 200_000 + 2, 3 * n + 10_000) as where:  # the source and two copies
                    started = time.monotonic()
                    tree = make_tree(where / "src", f"{n:,} empty files", n, args.dirs, 0)
                    print(f"{tree.name} in {args.dirs} directories (made in {time.monotonic() - started:.0f} s)",
                          flush=True)
                    runs = bench_tree(server, where, tree, args.million_tools)
                million_rows = [Row(tree.name, tool, run.seconds, 0, tree.files) for tool, run in runs.items()]
                r = runs["rcp"]
                assert r.master is not None
                peaks = [r.master.peak_mib] + [u.peak_mib for u in r.rcpds]
                others = "  ".join(f"{tool} {run.seconds:.1f} s" for tool, run in runs.items() if tool != "rcp")
                save("million", [Goal("3c", tree.name, f"rcp {r.seconds:.1f} s  {others}  peak RSS master "
                                      f"{r.master.peak_mib:.1f} MiB, "
                                      + ", ".join(f"{u.role} {u.peak_mib:.1f} MiB" for u in r.rcpds),
                                      "completes, <= 512 MiB each", max(peaks) <= 512)], million_rows)
            else:  # bench/report.py shows the last stored run of it, with its date
                why = "needs root (loop-mounted ext4)" if args.million else "skipped (--million 0)"
                print(f"\ngoal 3c (1,000,000 empty files): not run now: {why}; `make bench-million` runs it (root)")
        finally:
            stop_sshd(server)
    if args.files:
        save("many", goals, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
