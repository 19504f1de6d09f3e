"""A local user who can write in the source tree races the source rcpd:
swaps a directory for a symlink or a file for a FIFO after the walk saw
them, or rewrites a file while it is read. The destination rcpd is stopped
(SIGSTOP) at the right moment, so the race is won every time."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import rcp
from rcp.model import CopyResult
from test_faults import rcpd_pids
from treeutil import leftovers, temporaries

WAIT = 30.0
# The source is paced so a race set up a few tenths of a second into the copy
# always comes before it reads the victim: unpaced, a loaded machine saw the
# pause land late and the source read the whole tree within QUIC's (auto-tuned,
# up to 256 MiB) window while the destination was stopped.
PACE = 40 << 20


@contextmanager
def copy_in_background(src: Path, dst: Path) -> Iterator[Callable[[], CopyResult]]:
    """rcp.copy(src, dst) paced at PACE on a thread; yields a function that joins it (bounded)."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = rcp.copy(str(src), str(dst), bandwidth_limit=PACE)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join() -> CopyResult:
        t.join(timeout=WAIT)
        assert not t.is_alive(), "the copy hung"
        if "error" in out:
            raise out["error"]  # type: ignore[misc]
        return out["result"]  # type: ignore[return-value]

    try:
        yield join
    finally:
        t.join(timeout=WAIT)


@contextmanager
def destination_paused(dst_dir: Path) -> Iterator[None]:
    """Stops the destination rcpd once it has started writing (a temporary
    file exists in `dst_dir`), for the body's duration."""
    deadline = time.monotonic() + WAIT
    pids: list[int] = []
    # The one writing into dst_dir: an earlier test's rcpd still exiting under
    # load may be about too (it once made this wait run out).
    while len(pids) != 1:
        assert time.monotonic() < deadline, "the copy never started writing"
        time.sleep(0.002)
        pids = [p for p in rcpd_pids("destination") if temporaries(p, dst_dir, below=True)]
    os.kill(pids[0], signal.SIGSTOP)
    pid = pids[0]
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _tree_with_a_late_victim(tmp_path: Path) -> tuple[Path, Path, Path]:
    """src has 24 × 4 MiB files (work enough to keep a victim queued) and
    z/secret.txt; private/ holds a secret the copy must never read."""
    src, dst, private = tmp_path / "src", tmp_path / "dst", tmp_path / "private"
    (src / "z").mkdir(parents=True)
    dst.mkdir()
    private.mkdir(mode=0o700)
    block = os.urandom(4 << 20)
    for i in range(24):
        (src / f"f{i:02d}").write_bytes(block)
    (src / "z" / "secret.txt").write_text("decoy\n")
    (private / "secret.txt").write_text("TOP-SECRET\n")
    os.chmod(private / "secret.txt", 0o600)
    return src, dst, private


def test_a_directory_swapped_for_a_symlink_leaks_nothing(tmp_path: Path) -> None:
    src, dst, private = _tree_with_a_late_victim(tmp_path)
    with copy_in_background(src, dst) as join:
        with destination_paused(dst):
            time.sleep(0.5)  # the walk is over; z/secret.txt waits in the queue
            (src / "z").rename(src / "z.orig")
            (src / "z").symlink_to(private)
        result = join()
    # The file is read through the directory the walk opened, which the swap
    # cannot redirect: what the walk saw is copied, nothing from outside.
    assert result.failed == 0, result.errors
    assert (dst / "src" / "z" / "secret.txt").read_text() == "decoy\n"
    assert oct((dst / "src" / "z" / "secret.txt").stat().st_mode & 0o777) == oct(0o644)
    assert "TOP-SECRET" not in "".join(p.read_text(errors="replace") for p in dst.rglob("*") if p.is_file())
    assert leftovers(dst) == []


def test_a_file_swapped_for_a_fifo_does_not_hang_the_copy(tmp_path: Path) -> None:
    src, dst, _ = _tree_with_a_late_victim(tmp_path)
    with copy_in_background(src, dst) as join:
        with destination_paused(dst):
            time.sleep(0.5)
            (src / "z" / "secret.txt").unlink()
            os.mkfifo(src / "z" / "secret.txt")
        started = time.monotonic()
        result = join()
    assert time.monotonic() - started < 20
    assert result.failed == 1, result.errors
    assert "changed during copy" in result.errors[0][1], result.errors
    assert result.files_copied == 24
    assert not (dst / "src" / "z" / "secret.txt").exists()
    assert leftovers(dst) == []


def _make_deep(top: Path, names: list[str]) -> None:
    """top/n0/n1/.../n24, each level with a file: built one level at a time
    from directory fds, because the full path is too long for open()."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i, name in enumerate(names):
            os.mkdir(name, dir_fd=fd)
            new = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = new
            f = os.open(f"file{i}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(f, f"level {i}\n".encode())
            os.close(f)
    finally:
        os.close(fd)


def _read_deep(top: Path, names: list[str]) -> list[bytes]:
    out = []
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i, name in enumerate(names):
            new = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = new
            f = os.open(f"file{i}", os.O_RDONLY, dir_fd=fd)
            out.append(os.read(f, 100))
            os.close(f)
    finally:
        os.close(fd)
    return out


def test_a_deep_tree_beyond_path_max_copies_completely(tmp_path: Path) -> None:
    """25 levels of 200-byte names: ~5 KiB relative paths, past PATH_MAX."""
    names = [chr(ord("a") + i % 26) * 200 for i in range(25)]
    _make_deep(tmp_path / "src", names)
    (tmp_path / "dst").mkdir()
    result = rcp.copy(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert result.failed == 0, result.errors
    assert (result.files_copied, result.dirs_created) == (25, 26)
    assert _read_deep(tmp_path / "dst" / "src", names) == [f"level {i}\n".encode() for i in range(25)]


def _big_file(path: Path, mib: int) -> None:
    with open(path, "wb") as f:
        f.write(b"A" * (mib << 20))
    os.utime(path, (1_600_000_000, 1_600_000_000))


def test_a_file_rewritten_while_read_is_sent_again(tmp_path: Path) -> None:
    src, dst = tmp_path / "big.bin", tmp_path / "copy.bin"
    _big_file(src, 130)
    with copy_in_background(src, dst) as join:
        with destination_paused(tmp_path):
            time.sleep(0.3)
            with open(src, "r+b") as f:  # the tail changes while rcp is mid-copy...
                f.seek(120 << 20)
                f.write(b"B" * (1 << 20))
            os.utime(src, (1_600_000_000, 1_600_000_000))  # ...and the writer even puts mtime back
        result = join()
    assert result.failed == 0 and result.files_copied == 1, result.errors
    assert dst.read_bytes() == src.read_bytes()  # the new content, never a torn mix
    assert leftovers(tmp_path) == []


def test_a_file_that_keeps_changing_fails_and_is_not_written(tmp_path: Path) -> None:
    src, dst = tmp_path / "busy.bin", tmp_path / "copy.bin"
    _big_file(src, 96)
    stop = threading.Event()

    def writer() -> None:
        n = 0
        with open(src, "r+b") as f:
            while not stop.is_set() and n < 20_000:
                f.seek((n * 7919) % (96 << 20))
                f.write(b"C")
                f.flush()
                n += 1
                time.sleep(0.002)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    try:
        result = rcp.copy(str(src), str(dst))
    finally:
        stop.set()
        w.join(timeout=10)
    assert result.failed == 1 and result.files_copied == 0, result
    assert "changed during copy" in result.errors[0][1], result.errors
    assert not dst.exists()
    assert leftovers(tmp_path) == []


class _ResendWatch:
    """A progress sink that pauses the destination (and truncates the file)
    as soon as the source says it is sending a file again."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim
        self.done = threading.Event()

    def start(self) -> None: ...
    def update(self, p: object) -> None: ...
    def finish(self, result: object) -> None: ...

    def log(self, role: str, level: str, text: str) -> None:
        if "sending it again" not in text or self.done.is_set():
            return
        (pid,) = rcpd_pids("destination")
        os.kill(pid, signal.SIGSTOP)
        try:
            os.truncate(self.victim, 70 << 20)  # attempt 2 planned 3 chunks; two of them now end early
        finally:
            os.kill(pid, signal.SIGCONT)
            self.done.set()


def test_a_file_that_fails_during_its_second_attempt_fails_alone(tmp_path: Path) -> None:
    """The resend's chunks each still get their stream, so the destination
    settles the file as failed and the rest of the copy completes."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _big_file(src / "big.bin", 130)
    (src / "other").write_text("fine")
    watch = _ResendWatch(src / "big.bin")
    out: dict[str, CopyResult] = {}
    t = threading.Thread(
        target=lambda: out.setdefault(
            "r", rcp.copy(str(src), str(dst), progress=watch, verbose=1, bandwidth_limit=PACE)),
        daemon=True)
    t.start()
    with destination_paused(tmp_path):
        time.sleep(0.3)
        with open(src / "big.bin", "r+b") as f:  # the first attempt sees a change...
            f.seek(100 << 20)
            f.write(b"B")
    t.join(timeout=WAIT)  # (the destination's own stall timeout is 60 s: a hang fails here first)
    assert not t.is_alive(), "the copy hung"
    assert watch.done.is_set(), "the source never sent the file again"
    result = out["r"]
    assert result.failed == 1 and result.files_copied == 1, result
    assert "shrank" in result.errors[0][1], result.errors
    assert (dst / "other").read_text() == "fine"
    assert not (dst / "big.bin").exists()
    assert leftovers(tmp_path) == []
