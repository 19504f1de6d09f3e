"""Killing an rcpd mid-copy: the master must fail fast, leave no rcpd
running and no partial file under a final name."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp.model import Progress
from treeutil import leftovers


class Watch:
    """A progress sink that records when bytes started to flow."""

    def __init__(self) -> None:
        self.flowing = threading.Event()

    def start(self) -> None: ...
    def log(self, role: str, level: str, text: str) -> None: ...
    def finish(self, result) -> None: ...

    def update(self, p: Progress) -> None:
        if p.bytes_done > 0:
            self.flowing.set()


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def status_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM), in KiB; 0 once gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rcpd_pids(role: str, ancestors: set[int] | None = None) -> list[int]:
    """rcpds of `role` descending from this test process (or from `ancestors`,
    e.g. the test's sshd), so other rcp runs on the machine don't count."""
    roots = {os.getpid()} | (ancestors or set())
    out = subprocess.run(["pgrep", "-f", f"rcpd --role {role}"], capture_output=True, text=True)
    mine = []
    for pid in (int(x) for x in out.stdout.split()):
        p, hops = pid, 0
        while p > 1 and p not in roots and hops < 64:
            p, hops = _parent(p), hops + 1
        if p in roots:
            mine.append(pid)
    return mine


def kill_mid_copy(tmp_path: Path, victim: str, wrap=lambda p: str(p), ancestors: set[int] | None = None,
                  **options: object) -> dict[str, object]:
    """Starts copying a big file, SIGKILLs the `victim` rcpd once bytes flow,
    and checks the master fails fast, no rcpd survives, and no partial file
    sits under a final name. `wrap` turns a local path into an operand.
    Returns the outcome: {"result": CopyResult} or {"error": RcpError}."""
    mine = ancestors or set()

    def strays() -> list[int]:
        return rcpd_pids("source", mine) + rcpd_pids("destination", mine)

    assert not strays(), "stray rcpd from an earlier test"
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.truncate(2 << 30)  # sparse: cheap to make, seconds to copy as zeros (sparse=False)
    dst = tmp_path / "out"
    watch = Watch()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = rcp.copy(wrap(src), wrap(dst), progress=watch, sparse=False, **options)
        except rcp.RcpError as exc:
            outcome["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    assert watch.flowing.wait(timeout=60), "the copy never started"
    pids = rcpd_pids(victim, mine)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    killed_at = time.monotonic()
    t.join(timeout=60)
    assert not t.is_alive(), "master still running 60 s after the kill"
    assert time.monotonic() - killed_at < 20
    result = outcome.get("result")
    assert "error" in outcome or (result is not None and not result.ok), outcome
    assert not dst.exists(), "partial file under its final name"
    deadline = time.monotonic() + 10
    while strays() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not strays(), "an rcpd outlived the copy"
    # A killed destination leaves nothing either: its files had no name yet (O_TMPFILE).
    assert not leftovers(tmp_path), f"temporary files left behind after killing the {victim}"
    return outcome


@pytest.mark.parametrize("victim", ["destination", "source"])
def test_killed_rcpd_fails_fast_and_cleanly(tmp_path: Path, victim: str) -> None:
    kill_mid_copy(tmp_path, victim)


def test_rcpd_is_not_dumpable() -> None:
    """rcpd holds the session key and TLS secrets: no core dump, no same-user
    ptrace. The kernel shows PR_SET_DUMPABLE 0 by making /proc/<pid> root's,
    so the rcpd runs as another user (nobody) when we are root."""
    as_other = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
    binary = str(rcp.daemon.rcpd_path())
    if as_other:
        # nobody must reach the binary: a world-readable copy in a fresh directory.
        directory = Path(tempfile.mkdtemp(prefix="rcpd-dumpable-"))
        os.chmod(directory, 0o755)
        binary = shutil.copy(binary, directory / "rcpd")
    else:
        directory = None
    proc = subprocess.Popen([*as_other, binary, "--role", "source", "--master", "127.0.0.1:9",
                             "--master-fingerprint", "ab" * 32], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        hello = proc.stdout.readline()  # it now waits for the session key on stdin
        assert hello.startswith(b"RCPD "), hello + proc.stderr.read()
        uid = int(next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                       if line.startswith("Uid:")).split()[1])
        assert uid != 0 or not as_other, "setpriv did not change the user"
        assert os.stat(f"/proc/{proc.pid}/status").st_uid == 0, "rcpd is dumpable"
    finally:
        proc.kill()
        proc.wait(timeout=5)
        if directory is not None:
            shutil.rmtree(directory)


def test_a_rerun_after_a_killed_copy_gives_directories_their_mode(tmp_path: Path) -> None:
    """A destination killed mid-copy never reaches the end, where directories
    get the source's mode; a rerun (a sharded copy's rerun shard, a user's
    retry) only narrows an existing directory's mode. So directories are made
    with the source's read and search bits at once (before, they stayed 0700)."""
    src = tmp_path / "tree"
    (src / "open" / "inner").mkdir(parents=True)
    (src / "private").mkdir()
    with open(src / "open" / "inner" / "big", "wb") as f:
        f.truncate(1 << 30)  # sparse: cheap to make, seconds to copy as zeros (sparse=False)
    os.chmod(src / "open", 0o755)
    os.chmod(src / "open" / "inner", 0o751)
    os.chmod(src / "private", 0o700)
    os.chmod(src, 0o775)
    out = tmp_path / "out"
    out.mkdir()
    dst = out / "tree"
    kill_the_destination_mid_copy(src, out)
    assert (dst / "open" / "inner").is_dir() and not (dst / "open" / "inner" / "big").exists()
    again = rcp.copy(str(src), str(out), sparse=False)
    assert again.ok, again.errors
    modes = {p: os.stat(dst / p).st_mode & 0o7777 for p in ("open", "open/inner", "private")}
    assert modes == {"open": 0o755, "open/inner": 0o751, "private": 0o700}, {k: oct(v) for k, v in modes.items()}
    # g+w is never given while a copy runs, so a rerun narrows it away: the root keeps 0755, not 0775.
    assert os.stat(dst).st_mode & 0o7777 == 0o755


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root): chown")
def test_a_new_directory_has_its_owner_before_others_may_enter_it(tmp_path: Path) -> None:
    """A new directory gets the source's read and search bits at once (above),
    so it must have the source's owner and group by then: else, until the copy
    ends, the destination's default group may list and enter a directory meant
    for another group (0750 here), e.g. to read the world-readable files in it."""
    src = tmp_path / "tree"
    (src / "team" / "inner").mkdir(parents=True)
    with open(src / "team" / "inner" / "big", "wb") as f:
        f.truncate(1 << 30)  # sparse: seconds to copy as zeros (sparse=False)
    os.chmod(src / "team", 0o750)
    os.chmod(src / "team" / "inner", 0o755)
    os.chown(src / "team", 4242, 4343)
    os.chown(src / "team" / "inner", 4242, 4343)
    out = tmp_path / "out"
    out.mkdir()
    kill_the_destination_mid_copy(src, out)
    for rel in ("team", "team/inner"):
        st = os.stat(out / "tree" / rel)
        assert st.st_mode & 0o077, f"{rel}: still {oct(st.st_mode)}"  # opened up already...
        assert (st.st_uid, st.st_gid) == (4242, 4343), rel  # ...so owned already


def kill_the_destination_mid_copy(src: Path, out: Path) -> None:
    """Copies src into out (dense, so a sparse GiB takes seconds) and SIGKILLs
    the destination rcpd once bytes flow; returns when the copy has failed."""
    watch = Watch()

    def run() -> None:
        with contextlib.suppress(rcp.RcpError):
            rcp.copy(str(src), str(out), progress=watch, sparse=False)

    t = threading.Thread(target=run)
    t.start()
    assert watch.flowing.wait(timeout=60), "the copy never started"
    pids = rcpd_pids("destination")
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    t.join(timeout=60)
    assert not t.is_alive()
