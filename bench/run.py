#!/usr/bin/env python3
"""Loopback QUIC stream benchmark: 1 GiB from memory over one pinned link.

Runs build/cpp/rcp-quic-bench several times and prints each run and the
median MB/s, with the UDP payload size used. No threshold here:
copy_bench.py sets the copy beside the fastest (goal 2b).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from goals import Row, save  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=1 << 30)
    parser.add_argument("--payload", type=int, nargs="*", default=[1452, 8952])
    parser.add_argument("--cc", default="cubic")
    args = parser.parse_args()
    exe = ROOT / "build" / "cpp" / "rcp-quic-bench"
    rows = []
    for payload in args.payload:
        rates = []
        for _ in range(args.runs):
            out = subprocess.run([str(exe), "--bytes", str(args.bytes), "--payload", str(payload), "--cc", args.cc],
                                 capture_output=True, text=True, timeout=600)
            print(out.stdout.strip() or out.stderr.strip())
            if out.returncode != 0:
                return out.returncode
            rates.append(float(re.search(r"= ([\d.]+) MB/s", out.stdout).group(1)))
        print(f"median over {args.runs} runs, udp payload {payload} B: {statistics.median(rates):.1f} MB/s")
        rows.append(Row(f"link only, {args.bytes >> 20} MiB from memory", f"QUIC, {payload} B datagrams",
                        args.bytes / (statistics.median(rates) * 1e6), args.bytes, 1))
    save("link", [], rows, ["goal 2b compares the 1 GiB copy with the fastest of these"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
