"""End-to-end copies between local paths: both rcpds are local processes,
talking real QUIC over loopback."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import rcp
from rcp.errors import UsageError
from treeutil import assert_same_tree, leftovers, make_non_utf8_tree, make_tree


def test_tree_into_existing_directory(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    result = rcp.copy(str(src), str(tmp_path / "dst"))
    assert result.ok, result.errors
    assert_same_tree(src, tmp_path / "dst" / "src")
    assert result.files_copied == 6 + 5
    assert result.symlinks_copied == 3
    assert not leftovers(tmp_path / "dst")


def test_tree_as_new_name_and_trailing_slash(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    assert rcp.copy(str(src), str(tmp_path / "copy")).ok
    assert_same_tree(src, tmp_path / "copy")
    result = rcp.copy(str(src), str(tmp_path / "missing") + "/")
    assert not result.ok
    assert "does not exist" in " ".join(m for _, m in result.errors)


def test_single_files_and_several_sources(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"alpha")
    b.write_bytes(b"beta")
    assert rcp.copy(str(a), str(tmp_path / "renamed.txt")).ok
    assert (tmp_path / "renamed.txt").read_bytes() == b"alpha"
    (tmp_path / "d").mkdir()
    assert rcp.copy([str(a), str(b)], str(tmp_path / "d")).ok
    assert (tmp_path / "d" / "b.txt").read_bytes() == b"beta"
    result = rcp.copy([str(a), str(b)], str(tmp_path / "not-a-dir"))
    assert not result.ok


def test_existing_files_need_overwrite(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"new")
    dst = tmp_path / "out"
    dst.write_bytes(b"old")
    os.utime(dst, (1_000_000_000, 1_000_000_000))  # same size, another mtime: differs
    result = rcp.copy(str(src), str(dst))
    assert result.kept == 1 and result.files_copied == 0 and not result.ok
    assert result.kept_paths == [str(dst)]
    assert dst.read_bytes() == b"old"
    result = rcp.copy(str(src), str(dst), overwrite=True)
    assert result.ok and result.files_copied == 1
    assert dst.read_bytes() == b"new"


def test_missing_source_is_reported(tmp_path: Path) -> None:
    result = rcp.copy(str(tmp_path / "nope"), str(tmp_path / "x"))
    assert not result.ok
    assert any("No such file" in m for _, m in result.errors), result.errors
    assert not (tmp_path / "x").exists()


def test_64mib_file(tmp_path: Path) -> None:
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.write(os.urandom(64 << 20))
    result = rcp.copy(str(src), str(tmp_path / "big.copy"))
    assert result.ok and result.bytes_copied == 64 << 20
    assert (tmp_path / "big.copy").read_bytes() == src.read_bytes()


def test_unknown_option_is_a_type_error(tmp_path: Path) -> None:
    """copy's keywords are typed and explicit: an unknown one is Python's
    TypeError naming it (and mypy's error before that), as for any function."""
    with pytest.raises(TypeError, match="colour"):
        rcp.copy(str(tmp_path), str(tmp_path / "x"), colour="blue")  # type: ignore[call-arg]


def test_cli_copy_and_exit_codes(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rcp.cli", *args], capture_output=True, text=True, timeout=120)

    out = run("--summary", str(src), str(tmp_path / "dst"))
    assert out.returncode == 0, out.stderr
    assert_same_tree(src, tmp_path / "dst")
    out = run(str(tmp_path / "missing"), str(tmp_path / "dst2"))
    assert out.returncode == 1
    assert "missing" in out.stderr
    out = run(str(src))
    assert out.returncode == 2


def test_special_files_fail_once_and_the_rest_is_copied(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "fifo")
    (src / "plain").write_text("kept")
    result = rcp.copy(str(src), str(tmp_path / "dst"))
    assert result.files_copied == 1 and result.failed == 1, result
    assert len(result.errors) == 1 and "not a regular file" in result.errors[0][1]
    assert (tmp_path / "dst" / "plain").read_text() == "kept"
    assert not (tmp_path / "dst" / "fifo").exists()


def _traced_copy(tmp_path: Path, *flags: str) -> tuple[Path, list[str]]:
    """A CLI copy of a small tree under strace (rcpds included): the destination
    and the trace's lines about fsync and rename."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a" / "b").mkdir(parents=True)
    for rel in ("top", "a/x", "a/b/y", "a/b/z"):
        (src / rel).write_text(rel)
    dst.mkdir()
    trace = tmp_path / "trace"
    out = subprocess.run(["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,linkat",
                          "-o", str(trace), sys.executable, "-m", "rcp.cli", *flags, str(src), str(dst) + "/"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return dst / "src", [line for line in trace.read_text().splitlines() if str(dst) in line]


def test_fsync_flushes_each_file_before_its_rename_and_each_directory_after_its_entries(tmp_path: Path) -> None:
    dst, lines = _traced_copy(tmp_path, "--fsync")
    fsynced = [(i, m.group(1)) for i, line in enumerate(lines)
               if (m := re.search(r"\bfsync\(\d+<([^>]+)>", line))]
    # A file lands by a rename of its named temporary, or (O_TMPFILE) by a
    # link of its fd: `temp` is the name, or the fd as strace shows it.
    renames = [(i, m.group(1), f"{m.group(1)}/{m.group(2)}") for i, line in enumerate(lines)
               if (m := re.search(r"renameat2?\(\d+<([^>]+)>, \"(\.rcp-[0-9a-f]+\.tmp)\"", line))]
    # ...linked by the fd itself (AT_EMPTY_PATH) or through /proc/self/fd.
    links = [(i, m.group(4), (line.split()[0], m.group(1) or m.group(2))) for i, line in enumerate(lines)
             if (m := re.search(r"linkat\((?:AT_FDCWD(?:<[^>]*>)?, \"/proc/self/fd/(\d+)\""
                                r"|(\d+)<[^>]*>(?:\(deleted\))?, \"\"), (\d+)<([^>]+)>", line))]
    fd_fsynced = [(i, (line.split()[0], m.group(1))) for i, line in enumerate(lines)
                  if (m := re.search(r"\bfsync\((\d+)<", line))]
    assert len(renames) + len(links) == 4, lines
    for at, directory, temp in renames + links:
        # The temporary file's data reached the disk before its name did...
        synced = fsynced if isinstance(temp, str) else fd_fsynced
        assert any(i < at and what == temp for i, what in synced), (directory, temp, lines)
        # ...and its directory was flushed after the rename.
        assert any(i > at and path == directory for i, path in fsynced), (directory, lines)
    for rel in ("", "a", "a/b"):
        assert any(path == str(dst / rel).rstrip("/") for _, path in fsynced), rel
    assert (dst / "a" / "b" / "y").read_text() == "a/b/y"


def test_without_fsync_nothing_waits_for_the_disk(tmp_path: Path) -> None:
    dst, lines = _traced_copy(tmp_path)
    assert not [line for line in lines if "fsync(" in line or "fdatasync(" in line], lines
    assert (dst / "a" / "b" / "z").read_text() == "a/b/z"


def test_an_operand_reached_through_a_symlinked_directory(tmp_path: Path) -> None:
    """The user's own path may pass through symlinks (only what lies below the
    operand is never followed)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("data")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "dst").mkdir()
    for operand in ("link/f", "link/"):  # the trailing '/' says: the directory the link leads to
        result = rcp.copy(f"{tmp_path}/{operand}", str(tmp_path / "dst") + "/")
        assert result.ok and result.files_copied == 1, result
    assert (tmp_path / "dst" / "f").read_text() == "data"
    assert (tmp_path / "dst" / "link" / "f").read_text() == "data"


# ---- names that are not UTF-8: bytes passed through, as cp and scp do ----

def test_non_utf8_names_copy_byte_for_byte(tmp_path: Path) -> None:
    src = make_non_utf8_tree(tmp_path / os.fsdecode(b"d\xe9p\xf4t"))  # the root operand too
    (tmp_path / "into").mkdir()
    # str with surrogates (what argv and os.listdir give), into a directory.
    result = rcp.copy(str(src), str(tmp_path / "into"))
    assert result.ok, result.errors
    assert_same_tree(src, tmp_path / "into" / src.name)
    assert b"d\xe9p\xf4t" in os.listdir(os.fsencode(tmp_path / "into"))
    assert b"\xff\xfe-raw" in os.listdir(os.fsencode(src / os.fsdecode(b"r\xe9pertoire")))
    # bytes and os.PathLike operands, as a new (non-UTF-8) name.
    result = rcp.copy([os.fsencode(src)], os.fsencode(tmp_path) + b"/copi\xe9")
    assert result.ok, result.errors
    assert_same_tree(src, tmp_path / os.fsdecode(b"copi\xe9"))
    file = src / os.fsdecode(b"caf\xe9.txt")
    result = rcp.copy(file, tmp_path / "into")  # one file as the root operand, as a Path
    assert result.ok and result.files_copied == 1, result.errors
    assert (tmp_path / "into" / file.name).read_bytes() == file.read_bytes()
    assert not leftovers(tmp_path)


def test_non_utf8_operands_on_the_command_line(tmp_path: Path) -> None:
    src = make_non_utf8_tree(tmp_path / os.fsdecode(b"s\xe9"))
    dst = os.fsencode(tmp_path) + b"/d\xe9st"
    out = subprocess.run([sys.executable, "-m", "rcp.cli", "--no-progress", os.fsencode(src), dst],
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert b"Traceback" not in out.stderr
    assert_same_tree(src, Path(os.fsdecode(dst)))


def test_operands_that_no_file_system_could_name_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a valid file name"):
        rcp.copy("a\ud800b", str(tmp_path / "x"))  # a lone surrogate that stands for no byte
    with pytest.raises(UsageError, match="operand"):
        rcp.copy([3.5], str(tmp_path / "x"))  # type: ignore[list-item]


def test_sslkeylogfile_is_owner_only_for_rcpds_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))  # inherited by both local rcpds
    (tmp_path / "f").write_bytes(b"secret")
    old_umask = os.umask(0o022)
    try:
        result = rcp.copy(str(tmp_path / "f"), str(tmp_path / "g"))
    finally:
        os.umask(old_umask)
    assert result.ok, result.errors
    text = keylog.read_text()
    # The one QUIC link, destination to source, logged by both ends (the
    # control links are the rcpds' pipes: no TLS there).
    assert text.count("CLIENT_TRAFFIC_SECRET_0") >= 1
    assert stat.S_IMODE(keylog.stat().st_mode) == 0o600


def test_each_file_gets_its_mode_exactly_whatever_the_umask(tmp_path: Path) -> None:
    """Files are made with their permission bits and chmod'ed only when those
    differ: a mode the umask narrows, or a read-only one, must still come out exact."""
    src = tmp_path / "src"
    src.mkdir()
    modes = {"m600": 0o600, "m644": 0o644, "m664": 0o664, "m777": 0o777, "m400": 0o400, "m000": 0o000}
    for name, mode in modes.items():
        (src / name).write_bytes(name.encode())
        os.chmod(src / name, mode)
    old_umask = os.umask(0o027)
    try:
        result = rcp.copy(str(src), str(tmp_path / "dst"))
    finally:
        os.umask(old_umask)
    assert result.ok and result.files_copied == len(modes), result
    for name, mode in modes.items():
        assert stat.S_IMODE((tmp_path / "dst" / name).stat().st_mode) == mode, name
    assert (tmp_path / "dst" / "m664").read_bytes() == b"m664"


def test_operands_from_any_iterable(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"A")
    (tmp_path / "b").write_bytes(b"B")
    (tmp_path / "d").mkdir()
    result = rcp.copy((p for p in [tmp_path / "a", os.fsencode(tmp_path / "b")]), tmp_path / "d")
    assert result.ok and result.files_copied == 2, result.errors
