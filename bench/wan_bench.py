#!/usr/bin/env python3
"""WAN bench in the lab (tests/lab.py, needs root): a file from the source
host to the destination host over the emulated link, default 50 ms RTT,
1 Gbit/s, 0.5% loss each way. rcp is driven from the master as usual; scp and
rsync run on the destination host against an sshd on the source's WAN
address, so all three cross the same emulated path.

Loss-based TCP is slow on such a path, so scp and rsync get a time box: a
run that has not finished by then is stopped and its rate taken from the
bytes that arrived. Prints each run, medians, ratios, and rcp's share of the
link rate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lab import Lab, WanConditions  # noqa: E402
from sshd import start_sshd, stop_sshd  # noqa: E402


def bytes_under(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_tcp_tool(lab: Lab, tool: str, config: Path, src: Path, out: Path, size: int, box: float) -> float:
    """Seconds for `size` bytes (extrapolated from a time-boxed partial run)."""
    out.mkdir()
    ssh = f"ssh -F {config}"
    cmd = (["scp", "-q", "-F", str(config), f"wansrc:{src}", str(out) + "/"] if tool == "scp"
           else ["rsync", "-a", "-e", ssh, f"wansrc:{src}", str(out) + "/"])
    assert lab.dst
    started = time.monotonic()
    proc = subprocess.Popen(["ip", "netns", "exec", lab.dst.netns, *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"})
    try:
        proc.wait(timeout=box)
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"wan bench: {tool} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
        done = bytes_under(out)
        if done != size:
            raise SystemExit(f"wan bench: {tool} copied {done} of {size} bytes")
        return elapsed
    except subprocess.TimeoutExpired:
        elapsed = time.monotonic() - started
        done = bytes_under(out)
        proc.kill()
        proc.wait()
        return elapsed * size / max(done, 1)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--rate-mbit", type=float, default=1000.0)
    parser.add_argument("--loss", type=float, default=0.005)
    parser.add_argument("--time-box", type=float, default=60.0, help="seconds per scp/rsync run")
    parser.add_argument("--tools", nargs="*", default=["rcp", "scp", "rsync"],
                        help="rcp (over QUIC), rcp-tcp (over TCP+TLS), scp, rsync")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the lab needs root (network namespaces, TUN)")
    os.environ.pop("SSH_AUTH_SOCK", None)
    size = args.mib << 20
    # Queue: one bandwidth-delay product, as a reasonably provisioned router has.
    bdp = int(args.rate_mbit * 1e6 / 8 * args.rtt_ms / 1000)
    conditions = WanConditions(delay_ms=args.rtt_ms / 2, rate_mbit=args.rate_mbit, loss=args.loss,
                               queue_bytes=max(bdp, 1 << 20))
    times: dict[str, list[float]] = {t: [] for t in args.tools}
    with Lab() as lab:
        assert lab.src and lab.dst
        lab.wan(conditions)
        src = lab.host_dir("wan-src") / "payload.bin"
        with open(src, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        (lab.dir / "sshd-wan").mkdir()
        wan_sshd = start_sshd(lab.dir / "sshd-wan", lab.src.wan4, netns=lab.src.netns, alias="wansrc")
        try:
            print(f"lab: {args.rtt_ms:g} ms RTT, {args.rate_mbit:g} Mbit/s, {args.loss:.1%} loss each way, "
                  f"queue {conditions.queue_bytes} B; {args.mib} MiB file; {args.runs} runs")
            for run in range(args.runs):
                for tool in args.tools:
                    out = lab.host_dir(f"wan-out-{tool}-{run}")
                    shutil.rmtree(out)
                    if tool in ("rcp", "rcp-tcp"):  # rcp-tcp: the TCP+TLS data link beside QUIC's
                        out.mkdir()
                        started = time.monotonic()
                        result = lab.copy(str(src), str(out) + "/", transport="tcp" if tool == "rcp-tcp" else "quic")
                        seconds = time.monotonic() - started
                        if not result.ok:
                            raise SystemExit(f"wan bench: rcp failed: {result.errors}")
                        shutil.rmtree(out)
                    else:
                        seconds = run_tcp_tool(lab, tool, wan_sshd.config, src, out, size, args.time_box)
                    times[tool].append(seconds)
                    print(f"  run {run + 1} {tool:<7} {seconds:8.2f} s  {size * 8 / seconds / 1e6:7.1f} Mbit/s",
                          flush=True)
        finally:
            stop_sshd(wan_sshd)
    base = statistics.median(times["rcp"]) if "rcp" in times else None
    print(f"\n{'tool':<7} {'median s':>9} {'Mbit/s':>8} {'vs rcp':>8}")
    for tool, ts in times.items():
        med = statistics.median(ts)
        ratio = f"{med / base:7.2f}x" if base else "-"
        print(f"{tool:<7} {med:9.2f} {size * 8 / med / 1e6:8.1f} {ratio:>8}")
    if base:
        print(f"rcp reaches {size * 8 / base / 1e6 / args.rate_mbit:.0%} of the {args.rate_mbit:g} Mbit/s link "
              "(end to end, SSH logins and rcpd start-up included)")
    print("(scp/rsync runs that hit the time box are extrapolated from the bytes that arrived)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
