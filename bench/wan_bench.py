#!/usr/bin/env python3
"""WAN bench in the lab (tests/lab.py, needs root): a file from the source
host to the destination host over the emulated link, in issue 15's two
cases: 100 ms RTT, 200 Mbit/s, 1% loss each way (goal 4a: rcp >= 90% of the
link, end to end) and 50 ms, 1 Gbit/s, 0.5% (4b: report, with the CPU share
of the emulator and of each rcpd, to tell which one is the limit). rcp is
driven from the master as usual; scp and rsync run on the destination host
against an sshd on the source's WAN address, so all three cross the same
emulated path.

Loss-based TCP is slow on such a path, so scp and rsync get a time box: a
run that has not finished by then is stopped and its rate taken from the
bytes that arrived. Prints each run, medians, ratios, and rcp's share of the
link rate, and stores them for bench/report.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

sys.path.insert(0, str(ROOT / "bench"))

import rcp  # noqa: E402
from rcp.daemon import rcpd_path  # noqa: E402
from goals import Goal, Row, save  # noqa: E402
from lab import Lab, WanConditions, wanem_path  # noqa: E402
from measure import CpuSampler  # noqa: E402
from sshd import public_key  # noqa: E402


def bytes_under(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_tcp_tool(lab: Lab, tool: str, config: Path, src: Path, out: Path, size: int, box: float) -> float | None:
    """Seconds for `size` bytes (extrapolated from a time-boxed partial run); None if it failed."""
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
        done = bytes_under(out)
        if proc.returncode != 0 or done != size:  # reported, not fatal: rcp's figures still count
            err = proc.stderr.read().decode().strip() if proc.stderr else ""
            print(f"  {tool} failed (exit {proc.returncode}, {done} of {size} bytes): {err}", flush=True)
            return None
        return elapsed
    except subprocess.TimeoutExpired:
        elapsed = time.monotonic() - started
        done = bytes_under(out)
        proc.kill()
        proc.wait()
        return elapsed * size / max(done, 1)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def wan_ssh_config(lab: Lab, directory: Path) -> Path:
    """ssh config naming the source host's lab sshd at its WAN address ("wansrc"), for scp
    and rsync run on the destination host: the lab's sshd listens there too (port 2222)."""
    assert lab.src and lab.src.sshd
    server = lab.src.sshd
    directory.mkdir()
    known = directory / "known_hosts"
    known.write_text(f"[{lab.src.wan4}]:{server.port} {public_key(server.host_key)}\n")
    config = directory / "ssh_config"
    config.write_text("\n".join([
        "Host wansrc", f"  HostName {lab.src.wan4}", f"  Port {server.port}", f"  User {server.user}",
        f"  IdentityFile {server.key}", f"  UserKnownHostsFile {known}", "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes", "  IdentitiesOnly yes", "  BatchMode yes", ""]))
    return config


def writers_into(directory: Path) -> list[int]:
    """Pids of the processes with a file open under `directory` (this lab's destination rcpd)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd).startswith(str(directory) + "/") for fd in (proc / "fd").iterdir()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def copy_boxed(lab: Lab, src: Path, out: Path, size: int, tool: str, box: float) -> float:
    """rcp's seconds for the file; past `box` seconds the copy is stopped (its rcpd
    killed) and the time extrapolated from what the destination had written."""
    result: list[rcp.CopyResult] = []
    worker = threading.Thread(target=lambda: result.append(
        lab.copy(str(src), str(out) + "/", transport="tcp" if tool == "rcp-tcp" else "quic")), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(box)
    elapsed = time.monotonic() - started
    if worker.is_alive():
        pids = writers_into(out)
        written = max((int(line.split()[1]) for pid in pids
                       for line in Path(f"/proc/{pid}/io").read_text().splitlines() if line.startswith("wchar:")),
                      default=0)
        print(f"  {tool} not done after {elapsed:.0f} s: {written / 1e6:.0f} MB written "
              f"({written * 8 / elapsed / 1e6:.1f} Mbit/s); stopping it", flush=True)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        worker.join(60)
        return elapsed * size / max(written, 1)
    if not result or not result[0].ok:
        raise SystemExit(f"wan bench: rcp failed: {result[0].errors if result else 'no result'}")
    return elapsed


@dataclass(frozen=True)
class Scenario:
    key: str  # issue 15's goal
    rtt_ms: float
    rate_mbit: float
    loss: float
    share_goal: float | None  # rcp's share of the link rate to reach; None: report only

    @property
    def name(self) -> str:
        return f"{self.rtt_ms:g} ms, {self.rate_mbit:g} Mbit/s, {self.loss:.1%} loss"


SCENARIOS = {"4a": Scenario("4a", 100, 200, 0.01, 0.9), "4b": Scenario("4b", 50, 1000, 0.005, None),
             # Not run by default: 4a without the loss, to tell loss recovery from windows and start-up.
             "4a-lossless": Scenario("4a-lossless", 100, 200, 0.0, None)}
DEFAULT_SCENARIOS = ["4a", "4b"]


def run_scenario(lab: Lab, sc: Scenario, args: argparse.Namespace, src: Path,
                 wan_config: Path) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Times per tool, and the CPU share (of one core) of the emulator and each rcpd during rcp's runs."""
    size = args.mib << 20
    # Queue: one bandwidth-delay product, as a reasonably provisioned router has.
    bdp = int(sc.rate_mbit * 1e6 / 8 * sc.rtt_ms / 1000)
    conditions = WanConditions(delay_ms=sc.rtt_ms / 2, rate_mbit=sc.rate_mbit, loss=sc.loss,
                               queue_bytes=max(bdp, 1 << 20))
    lab.wan(conditions)
    times: dict[str, list[float]] = {t: [] for t in args.tools}
    cpu: dict[str, list[float]] = {}
    print(f"\nlab {sc.key}: {sc.name} each way, queue {conditions.queue_bytes} B; {args.mib} MiB file; "
          f"{args.runs} runs", flush=True)
    for run in range(args.runs):
        for tool in args.tools:
            out = lab.host_dir(f"wan-out-{sc.key}-{tool}-{run}")
            shutil.rmtree(out)
            if tool in ("rcp", "rcp-tcp"):  # rcp-tcp: the TCP+TLS data link beside QUIC's
                out.mkdir()
                # Only this lab's: other rcpds on the machine (tests, other benches) are not counted.
                with CpuSampler(("rcpd", "rcp-wanem"), (rcpd_path(), wanem_path()), other_netns=("rcpd",)) as sampler:
                    seconds = copy_boxed(lab, src, out, size, tool, args.rcp_time_box)
                shutil.rmtree(out)
                if tool == "rcp":
                    for name, per_proc in sampler.by_name().items():
                        for i, s in enumerate(sorted(per_proc, reverse=True)):
                            cpu.setdefault(f"{name}{'' if name != 'rcpd' else ' ' + str(i + 1)}", []).append(
                                s / seconds)
            else:
                boxed = run_tcp_tool(lab, tool, wan_config, src, out, size, args.time_box)
                if boxed is None:
                    continue
                seconds = boxed
            times[tool].append(seconds)
            print(f"  run {run + 1} {tool:<7} {seconds:8.2f} s  {size * 8 / seconds / 1e6:7.1f} Mbit/s",
                  flush=True)
    return {t: ts for t, ts in times.items() if ts}, {k: statistics.median(v) for k, v in cpu.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", nargs="*", default=DEFAULT_SCENARIOS, choices=list(SCENARIOS),
                        help="4a: 100 ms, 200 Mbit/s, 1%% loss (goal: >= 90%% of the link); "
                             "4b: 50 ms, 1 Gbit/s, 0.5%% (report); 4a-lossless: 4a without loss (report)")
    parser.add_argument("--time-box", type=float, default=60.0, help="seconds per scp/rsync run")
    parser.add_argument("--rcp-time-box", type=float, default=600.0,
                        help="seconds per rcp run, then stopped and extrapolated (a stalled copy must not hang)")
    parser.add_argument("--tools", nargs="*", default=["rcp", "scp", "rsync"],
                        help="rcp (over QUIC), rcp-tcp (over TCP+TLS), scp, rsync")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the lab needs root (network namespaces, TUN)")
    if "rcp" not in args.tools:
        parser.error("--tools must include rcp")
    os.environ.pop("SSH_AUTH_SOCK", None)
    size = args.mib << 20
    goals: list[Goal] = []
    rows: list[Row] = []
    with Lab() as lab:
        assert lab.src and lab.dst
        src = lab.host_dir("wan-src") / "payload.bin"
        with open(src, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        wan_config = wan_ssh_config(lab, lab.dir / "ssh-wan")
        for key in args.scenarios:
            sc = SCENARIOS[key]
            times, cpu = run_scenario(lab, sc, args, src, wan_config)
            base = statistics.median(times["rcp"])
            print(f"\n{sc.name}\n{'tool':<7} {'median s':>9} {'Mbit/s':>8} {'vs rcp':>8}")
            for tool, ts in times.items():
                med = statistics.median(ts)
                print(f"{tool:<7} {med:9.2f} {size * 8 / med / 1e6:8.1f} {med / base:7.2f}x")
                rows.append(Row(f"{args.mib} MiB, lab WAN {sc.name}", tool, med, size, 1))
            share = size * 8 / base / 1e6 / sc.rate_mbit
            load = "  ".join(f"{k} {v:.0%}" for k, v in sorted(cpu.items()))
            print(f"CPU during rcp's copy (share of one core): {load}")
            others = "  ".join(f"{t} {size * 8 / statistics.median(ts) / 1e6:.0f} Mbit/s"
                               for t, ts in times.items() if t != "rcp")
            figures = (f"rcp {base:.1f} s = {share:.0%} of the link  {others}  "
                       f"(CPU, share of a core: {load})")
            goals.append(Goal(sc.key, f"lab WAN {sc.name}, {args.mib} MiB end to end", figures,
                              f">= {sc.share_goal:.0%} of the link" if sc.share_goal else "",
                              None if sc.share_goal is None else share >= sc.share_goal))
    print("(runs that hit their time box are extrapolated from the bytes that arrived; "
          "rcp's time counts SSH logins and rcpd start-up)")
    # Only the default cases make the stored WAN figures the report shows; others are printed only.
    save("wan" if args.scenarios == DEFAULT_SCENARIOS and args.mib == 1024 else "wan-extra", goals, rows,
         [f"{args.runs} runs per tool, medians; scp/rsync time-boxed at {args.time_box:g} s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
