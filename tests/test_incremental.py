"""Incremental copies (issue 12): the source announces each file, the
destination decides per file, and only what it asks for is sent. Real rcpds,
real filesystems; the sshd fixture where the remote side matters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp.errors import EXIT_OK, EXIT_PARTIAL, UsageError
from rcp.model import CopyResult, Progress
from rcp.progress import NullProgress
from sshd import Sshd
from test_faults import Watch, rcpd_pids
from treeutil import assert_same_tree, leftovers

RCPD = str(rcp.daemon.rcpd_path())
OLD = 1_000_000_000  # an mtime long ago (2001)
NEW = 1_700_000_000  # ...and a later one (2023)


class Received(NullProgress):
    """Keeps the destination's last progress: the bytes that arrived on its data streams."""

    def __init__(self) -> None:
        self.bytes = 0
        self.files = 0

    def update(self, p: Progress) -> None:
        if p.role == "destination":
            self.bytes, self.files = p.bytes_done, p.files_done


def ssh_opts(sshd: Sshd, **extra: object) -> dict[str, object]:
    return {"ssh_config": str(sshd.config), "rcpd_path": RCPD, **extra}


def rcp_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run([sys.executable, "-m", "rcp.cli", "--no-progress", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def write(path: Path, data: bytes, mtime: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def copy(src: Path | str, dst: Path | str, **options: object) -> tuple[CopyResult, Received]:
    seen = Received()
    return rcp.copy(str(src), str(dst), progress=seen, **options), seen


def test_rerun_of_an_unchanged_large_file_sends_nothing(sshd: Sshd, tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        for _ in range(192):
            f.write(os.urandom(1 << 20))
    dst = f"{sshd.alias}:{tmp_path / 'big.copy'}"
    try:
        t0 = time.monotonic()
        first, got = copy(big, dst, **ssh_opts(sshd))
        first_s = time.monotonic() - t0
        assert first.ok and first.files_copied == 1 and got.bytes == 192 << 20
        tiny = write(tmp_path / "tiny", b"x", OLD)
        t0 = time.monotonic()
        assert copy(tiny, f"{sshd.alias}:{tmp_path / 'tiny.copy'}", **ssh_opts(sshd))[0].ok
        tiny_s = time.monotonic() - t0
        t0 = time.monotonic()
        again, got = copy(big, dst, **ssh_opts(sshd))
        again_s = time.monotonic() - t0
        assert again.ok, again.errors
        assert (again.files_copied, again.unchanged, again.kept, again.bytes_copied) == (0, 1, 0, 0)
        assert got.bytes == 0, "the destination received data for an unchanged file"
        print(f"192 MiB: first copy {first_s:.2f} s, re-run {again_s:.2f} s, a 1-byte copy {tiny_s:.2f} s")
        assert again_s < tiny_s + 0.5, (again_s, tiny_s)
    finally:
        big.unlink()
        (tmp_path / "big.copy").unlink(missing_ok=True)


@pytest.mark.parametrize("direction", ["local->remote", "remote->local"])
def test_one_changed_file_in_a_tree_is_the_only_one_sent(sshd: Sshd, tmp_path: Path, direction: str) -> None:
    src = tmp_path / "tree"
    for d in range(20):
        for i in range(100):
            write(src / f"d{d:02d}" / f"f{i:03d}", os.urandom(1000 + i), OLD + i)
    os.symlink("d00/f000", src / "link")
    into = tmp_path / "into"
    into.mkdir()
    remote = f"{sshd.alias}:"
    s = (remote if direction.startswith("remote") else "") + str(src)
    d = (remote if direction.endswith("remote") else "") + str(into)
    first, _ = copy(s, d, **ssh_opts(sshd))
    assert first.ok and first.files_copied == 2000 and first.symlinks_copied == 1
    write(src / "d07" / "f042", os.urandom(5000), NEW)
    # It differs: a plain re-run keeps it (exit 1) and sends nothing...
    kept, got = copy(s, d, **ssh_opts(sshd))
    assert (kept.files_copied, kept.unchanged, kept.kept) == (0, 2000, 1) and got.bytes == 0
    assert kept.kept_paths == [f"{into}/tree/d07/f042"]
    # ...and with --update (the source's is newer) it alone is sent.
    again, got = copy(s, d, **ssh_opts(sshd, update=True))
    assert again.ok, again.errors
    assert (again.files_copied, again.unchanged, again.kept) == (1, 2000, 0)
    assert_same_tree(src, into / "tree")
    assert got.bytes == 5000 and got.files == 1
    assert not leftovers(into)


def test_rerun_without_options_keeps_what_differs_and_exits_1(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(8):
        write(src / f"f{i}", b"new %d" % i, NEW)
    into = tmp_path / "into"
    dst = into / "src"  # where `src` lands when copied into `into`
    for i in range(6):  # f0..f5 differ (older mtime, or size); f6, f7 are new
        write(dst / f"f{i}", b"old %d" % i if i % 2 else b"older %d" % i, OLD)
    write(dst / "f0", (src / "f0").read_bytes(), NEW)  # ...but f0 is the same
    out = rcp_cli(str(src), str(into))
    assert out.returncode == EXIT_PARTIAL, out.stderr
    lines = [line for line in out.stderr.splitlines() if "kept" in line]
    assert len(lines) == 1, out.stderr
    head = "rcp: 5 files exist and differ; kept (use --overwrite, --update or --ignore-existing): "
    assert lines[0].startswith(head) and lines[0].endswith(" and 2 more"), lines[0]
    names = lines[0][len(head):-len(" and 2 more")].split(", ")  # the first three, in walk order
    assert len(names) == 3 and set(names) <= {f"{dst}/f{i}" for i in range(1, 6)}, names
    assert "not replaced" not in out.stderr
    assert (dst / "f1").read_bytes() == b"old 1" and (dst / "f6").read_bytes() == b"new 6"
    # -v names every one of them.
    out = rcp_cli("-v", str(src), str(into))
    assert out.returncode == EXIT_PARTIAL
    for i in range(1, 6):
        assert f"{dst}/f{i}: exists and differs; kept" in out.stderr, out.stderr
    # Nothing differs any more after --overwrite: a re-run is silent and exits 0.
    assert rcp_cli("--overwrite", str(src), str(into)).returncode == EXIT_OK
    out = rcp_cli("--summary", str(src), str(into))
    assert out.returncode == EXIT_OK, out.stderr
    assert "0 files" in out.stderr and "8 unchanged, 0 kept, 0 failed" in out.stderr, out.stderr


def test_update_replaces_only_what_is_older(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "newer-at-source", b"source", NEW)
    write(src / "older-at-source", b"source", OLD)
    into = tmp_path / "into"
    dst = into / "src"  # where `src` lands when copied into `into`
    write(dst / "newer-at-source", b"dest", OLD)
    write(dst / "older-at-source", b"dest", NEW)
    result, got = copy(src, into, update=True)
    assert result.ok, result.errors
    assert (result.files_copied, result.ignored, result.kept) == (1, 1, 0)
    assert (dst / "newer-at-source").read_bytes() == b"source"
    assert (dst / "older-at-source").read_bytes() == b"dest"
    out = rcp_cli("--update", str(src), str(into))
    assert out.returncode == EXIT_OK and out.stderr == "", out.stderr


def test_ignore_existing_never_touches_an_existing_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "a", b"source a", NEW)
    write(src / "b", b"source b", NEW)
    into = tmp_path / "into"
    dst = into / "src"  # where `src` lands when copied into `into`
    write(dst / "a", b"old", OLD)
    result, got = copy(src, into, ignore_existing=True)
    assert result.ok and (result.files_copied, result.ignored) == (1, 1)
    assert (dst / "a").read_bytes() == b"old" and (dst / "b").read_bytes() == b"source b"
    assert got.bytes == len(b"source b")
    assert rcp_cli("--ignore-existing", str(src), str(into)).returncode == EXIT_OK


def test_checksum_compares_content(sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "same", b"x" * 70000, NEW)
    write(src / "differs", b"y" * 70000, NEW)
    write(src / "other-mtime", b"z" * 100, NEW)
    into = tmp_path / "into"
    dst = into / "src"  # where `src` lands when copied into `into`
    write(dst / "same", b"x" * 70000, NEW)
    write(dst / "differs", b"Y" * 70000, NEW)  # same size and mtime, other content
    write(dst / "other-mtime", b"z" * 100, OLD)  # same content, other mtime
    remote = f"{sshd.alias}:{into}"
    # Size and mtime say "unchanged" for `differs`; only --checksum sees it.
    plain, _ = copy(src, remote, **ssh_opts(sshd))
    assert plain.unchanged == 2 and plain.kept == 1 and plain.kept_paths == [str(dst / "other-mtime")]
    summed, got = copy(src, remote, **ssh_opts(sshd, checksum=True))
    assert (summed.unchanged, summed.kept) == (2, 1) and summed.kept_paths == [str(dst / "differs")]
    assert got.bytes == 0 and not summed.ok
    fixed, got = copy(src, remote, **ssh_opts(sshd, checksum=True, overwrite=True))
    assert fixed.ok and (fixed.files_copied, fixed.unchanged) == (1, 2) and got.bytes == 70000
    assert (dst / "differs").read_bytes() == b"y" * 70000


def test_symlinks_compare_by_target(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.symlink("target-a", src / "same")
    os.symlink("target-b", src / "differs")
    into = tmp_path / "into"
    dst = into / "src"  # where `src` lands when copied into `into`
    dst.mkdir(parents=True)
    os.symlink("target-a", dst / "same")
    os.symlink("elsewhere", dst / "differs")
    result, _ = copy(src, into)
    assert (result.unchanged, result.kept, result.symlinks_copied) == (1, 1, 0)
    result, _ = copy(src, into, overwrite=True)
    assert result.ok and (result.unchanged, result.symlinks_copied) == (1, 1)
    assert os.readlink(dst / "differs") == "target-b"


def test_mtimes_compare_at_the_coarser_precision(tmp_path: Path) -> None:
    src = write(tmp_path / "f", b"data", NEW)
    os.utime(src, ns=(NEW * 10**9 + 123456789, NEW * 10**9 + 123456789))
    dst = write(tmp_path / "g", b"data", NEW)  # as a filesystem keeping seconds stores it
    result, _ = copy(src, dst)
    assert result.ok and result.unchanged == 1
    os.utime(dst, ns=(NEW * 10**9 + 123000000, NEW * 10**9 + 123000000))  # ...or milliseconds
    assert copy(src, dst)[0].unchanged == 1
    os.utime(dst, ns=(NEW * 10**9 + 124000000, NEW * 10**9 + 124000000))  # a millisecond later: differs
    result, _ = copy(src, dst)
    assert result.kept == 1 and not result.ok


def test_options_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at most one"):
        rcp.copy(str(tmp_path), str(tmp_path / "x"), update=True, ignore_existing=True)
    out = rcp_cli("--overwrite", "--update", str(tmp_path), str(tmp_path / "x"))
    assert out.returncode == 2 and "not allowed with" in out.stderr


def test_missing_source_is_reported_once_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "no such thing"
    out = rcp_cli(str(missing), str(tmp_path / "x"))
    assert out.returncode == EXIT_PARTIAL
    errors = [line for line in out.stderr.splitlines() if "No such file" in line]
    assert len(errors) == 1 and str(missing) in errors[0], out.stderr
    result, _ = copy(missing, tmp_path / "x")
    assert not result.ok and result.failed == 1 and len(result.errors) == 1


def test_killed_destination_leaves_no_temporary_files_in_a_many_file_copy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for d in range(8):
        for i in range(250):
            write(src / f"d{d}" / f"f{i:03d}", os.urandom(64 << 10), OLD)
    into = tmp_path / "into"
    into.mkdir()
    watch = Watch()
    done: dict[str, object] = {}
    t = threading.Thread(target=lambda: done.setdefault("r", rcp.copy(str(src), str(into), progress=watch)))
    t.start()
    assert watch.flowing.wait(timeout=60), "the copy never started"
    deadline = time.monotonic() + 60
    while len(list(into.rglob("f*"))) < 50 and time.monotonic() < deadline:  # some in place, many in flight
        time.sleep(0.01)
    pids = rcpd_pids("destination")
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    t.join(timeout=60)
    assert not t.is_alive()
    result = done.get("r")
    assert isinstance(result, CopyResult) and not result.ok
    assert not leftovers(into), leftovers(into)[:5]
    # The re-run sends only what is missing, and completes the copy.
    again, got = copy(src, into)
    assert again.ok, again.errors
    assert again.unchanged + again.files_copied == 2000 and again.unchanged > 0
    # (Directories the killed run made keep its private mode: an existing
    # directory is never opened up. The files are all there and complete.)
    for f in src.rglob("f*"):
        assert (into / "src" / f.relative_to(src)).read_bytes() == f.read_bytes(), f


def test_interrupted_master_leaves_no_temporary_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for d in range(8):
        for i in range(250):
            write(src / f"d{d}" / f"f{i:03d}", os.urandom(64 << 10), OLD)
    into = tmp_path / "into"
    into.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    proc = subprocess.Popen([sys.executable, "-m", "rcp.cli", "--no-progress", str(src), str(into)],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while len(list(into.rglob("f*"))) < 50 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 10
    while (rcpd_pids("source") or rcpd_pids("destination")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers(into), leftovers(into)[:5]
    again, _ = copy(src, into)
    assert again.ok and again.unchanged + again.files_copied == 2000 and again.unchanged >= 50
