"""Peak RSS and CPU seconds of the processes a copy runs, for the benches.

- rcpd (both sides): started through a wrapper, `/usr/bin/time` around the real
  rcpd, given as --rcpd-path (remote sides) and RCP_RCPD (the local side).
  Each rcpd leaves one line: peak RSS (KiB), user and system seconds.
- the master: run under a prelude that writes its own getrusage at exit.
- sshd: the private test sshd reaps each session, so the growth of its
  children's CPU time (/proc/<pid>/stat cutime + cstime) over one copy is what
  its sessions (and what they ran: scp -t, a remote rcpd) spent.
- a client (scp and its ssh): getrusage(RUSAGE_CHILDREN) of this process
  before and after it.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Usage:
    peak_kib: int
    cpu_s: float
    role: str = ""  # an rcpd's --role (source, destination)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def _read_usage_files(paths: list[Path]) -> list[Usage]:
    out = []
    for path in paths:
        last = path.read_text().strip().splitlines()[-1].split()  # "Command exited with ..." may come first
        role = path.name.split(".")[1] if path.name.startswith("usage.") else ""
        out.append(Usage(int(last[0]), float(last[1]) + float(last[2]), role))
        path.unlink()
    return out


class RcpdMeter:
    """Wraps rcpd with /usr/bin/time; `take()` returns what the rcpds of one copy used."""

    def __init__(self, directory: Path, real_rcpd: Path) -> None:
        if shutil.which(TIME) is None:
            raise SystemExit(f"bench: {TIME} is needed (Debian package 'time')")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.wrapper = directory / "rcpd-measured"
        # rcpd's command line starts `--role ROLE`; exec: the wrapper's pid is time's, one file per rcpd.
        self.wrapper.write_text(f'#!/bin/sh\nexec {TIME} -f "%M %U %S" -o "{directory}/usage.$2.$$" {real_rcpd} "$@"\n')
        self.wrapper.chmod(0o755)

    def env(self) -> dict[str, str]:
        return {"RCP_RCPD": str(self.wrapper)}

    def take(self, expected: int, timeout: float = 10.0) -> list[Usage]:
        deadline = time.monotonic() + timeout
        while True:  # a remote rcpd may finish a moment after the master returns
            files = sorted(self.dir.glob("usage.*"))  # by role: destination, then source
            complete = [p for p in files if p.read_text().strip()]
            if len(complete) >= expected or time.monotonic() > deadline:
                time.sleep(0.05)  # time writes its line in one go; let the last one land
                return _read_usage_files(complete)
            time.sleep(0.05)


# As the `rcp` command (rcp.cli:run), which leaves through os._exit, so no
# atexit hook would run: the usage is taken after main() returns.
MASTER_PRELUDE = (
    "import os, resource, sys\n"
    "path = sys.argv.pop(1)\n"
    "sys.argv[0] = 'rcp'\n"
    "from rcp.cli import main\n"
    "code = main()\n"
    "u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "open(path, 'w').write(f'{u.ru_maxrss} {u.ru_utime} {u.ru_stime}\\n')\n"
    "sys.stdout.flush()\n"
    "sys.stderr.flush()\n"
    "os._exit(code)\n"
)


def master_command(usage_file: Path) -> list[str]:
    """The start of a command line running rcp's master that leaves its own usage in usage_file."""
    return [sys.executable, "-c", MASTER_PRELUDE, str(usage_file)]


def master_usage(usage_file: Path) -> Usage:
    return _read_usage_files([usage_file])[0]


def children_cpu(pid: int) -> float:
    """CPU seconds of pid's reaped children (cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def wait_no_children(pid: int, timeout: float = 10.0) -> None:
    """Until pid (sshd) has reaped every session, so children_cpu counts them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = "".join(Path(t, "children").read_text() for t in Path(f"/proc/{pid}/task").iterdir())
        if not kids.strip():
            return
        time.sleep(0.02)


def own_children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


class CpuSampler:
    """CPU seconds of every process with one of `names` (its comm), sampled every
    `period` s from /proc while running: what each used, up to its last sample."""

    def __init__(self, names: tuple[str, ...], exes: tuple[Path, ...] = (), period: float = 0.25,
                 other_netns: tuple[str, ...] = ()) -> None:
        import threading

        # other_netns: names counted only outside this network namespace (a lab's hosts, not loopback copies)
        self.other_netns = other_netns
        self.own_netns = os.readlink("/proc/self/ns/net")
        self.names = names
        self.exes = {str(e.resolve()) for e in exes}  # if given, only processes running one of these
        self.period = period
        self.cpu: dict[tuple[int, str], float] = {}
        self._baseline: dict[tuple[int, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        # What a process already used counts against it: a long-lived one (the lab's
        # emulator) must show only its CPU while this sampler runs, not since it started.
        self._baseline = self._scan()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for key, seconds in self._scan().items():
                self.cpu[key] = seconds - self._baseline.get(key, 0.0)

    def _scan(self) -> dict[tuple[int, str], float]:
        """CPU seconds so far of each matching process."""
        ticks = os.sysconf("SC_CLK_TCK")
        found: dict[tuple[int, str], float] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                head, rest = (proc / "stat").read_text().rsplit(")", 1)
            except OSError:
                continue
            comm = head.split("(", 1)[1]
            if comm in self.names and (not self.exes or self._exe(proc) in self.exes) and (
                    comm not in self.other_netns or self._netns(proc) not in ("", self.own_netns)):
                fields = rest.split()
                found[int(proc.name), comm] = (int(fields[11]) + int(fields[12])) / ticks
        return found

    @staticmethod
    def _exe(proc: Path) -> str:
        try:
            return os.readlink(proc / "exe")
        except OSError:
            return ""

    @staticmethod
    def _netns(proc: Path) -> str:
        try:
            return os.readlink(proc / "ns" / "net")
        except OSError:
            return ""

    def by_name(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for (_, comm), seconds in sorted(self.cpu.items()):
            out.setdefault(comm, []).append(seconds)
        return out
