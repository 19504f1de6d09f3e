#!/usr/bin/env python3
"""Sharded copy bench in the lab (tests/lab_multi.py, needs root): the same
tree copied with 1 pair (one source host, one destination host) and with
2 pairs (two of each), every host's data link capped (default 100 Mbit/s,
tc tbf), the shards on the caller's thread pool. Prints each run (listing,
shards, final pass), the 2-pair/1-pair speed-up, and the per-pair costs that
docs/scale-out.md models from: listing rate, caller bytes per entry, the
final pass's rate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import rcp  # noqa: E402
import rcp.daemon  # noqa: E402
from lab_multi import MultiLab  # noqa: E402
from test_lab_scaleout import make_tree  # noqa: E402

MiB = 1 << 20


def run(lab: MultiLab, src: Path, dst: Path, pairs: int, total: int) -> float:
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir()
    before = lab.host_bytes()
    t0 = time.monotonic()
    out = rcp.copy_sharded(str(src), str(dst), lab.source_hosts()[:pairs], lab.destination_hosts()[:pairs],
                           ssh_config=str(lab.ssh_config), rcpd_path=str(rcp.daemon.rcpd_path()))
    seconds = time.monotonic() - t0
    after = lab.host_bytes()
    if not out.ok:
        raise SystemExit(f"copy failed: {out.result.errors}")
    caller = sum(after[a].master - before[a].master for a in after)
    print(f"{pairs} pair{'s' if pairs > 1 else ''}: {seconds:6.1f} s  {total / MiB / seconds:6.1f} MiB/s  "
          f"listing {out.listing_seconds:.2f} s ({out.entries / max(out.listing_seconds, 1e-9):.0f} entries/s), "
          f"shards {out.shards_seconds:.1f} s, final pass {out.final_seconds:.2f} s "
          f"({out.entries / max(out.final_seconds, 1e-9):.0f} entries/s); "
          f"caller links {caller / MiB:.2f} MiB ({caller / max(out.entries, 1):.0f} B/entry, "
          f"{100 * caller / total:.2f}% of the data)", flush=True)
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000, help="small files (default 10000)")
    ap.add_argument("--big-mib", type=int, default=128, help="size of each of the two big files (default 128)")
    ap.add_argument("--rate", type=float, default=100.0, help="each host's data link, Mbit/s (default 100; 0: no cap)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("scaleout_bench.py needs root (network namespaces)", file=sys.stderr)
        return 2
    os.environ.pop("SSH_AUTH_SOCK", None)
    with MultiLab(2, 2, args.rate, data_mib=2 * args.big_mib * 3 + args.files // 100 + 256) as lab:
        src = lab.host_dir("bench-src")
        total = make_tree(src, args.files, args.big_mib * MiB)
        print(f"tree: {args.files} small files + 2 x {args.big_mib} MiB = {total / MiB:.0f} MiB; "
              f"each host's data link {args.rate:g} Mbit/s; {os.cpu_count()} cores")
        one = run(lab, src, lab.data / "bench-dst", 1, total)
        two = run(lab, src, lab.data / "bench-dst", 2, total)
        print(f"2 pairs / 1 pair speed-up: {one / two:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
