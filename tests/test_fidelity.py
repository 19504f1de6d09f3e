"""What of a file besides its bytes, mode and mtime survives a copy (issue 13
items 4-8): holes of sparse files, hard links, owners, extended attributes,
ACLs, symlinks followed with -L. Real rcpds, real filesystems, the real sshd."""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import struct
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp.model import CopyResult
from sshd import Sshd

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root): chown, trusted.*, mount")

RCPD = str(rcp.daemon.rcpd_path())
MiB = 1 << 20
GiB = 1 << 30


def ssh_opts(sshd: Sshd, **extra: object) -> dict[str, object]:
    return {"ssh_config": str(sshd.config), "rcpd_path": RCPD, **extra}


def sparse_image(path: Path, size: int, pieces: int, piece: int, seed: int = 13) -> list[tuple[int, bytes]]:
    """A file of `size` bytes with `pieces` random pieces of data scattered in holes."""
    rng = random.Random(seed)
    written = []
    with open(path, "wb") as f:
        f.truncate(size)
        for i in range(pieces):
            offset = (size // pieces) * i + rng.randrange(0, size // pieces - piece) // 4096 * 4096
            data = rng.randbytes(piece)
            f.seek(offset)
            f.write(data)
            written.append((offset, data))
    return written


def same_content(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(8 * MiB), fb.read(8 * MiB)
            if x != y:
                return False
            if not x:
                return True


def test_a_sparse_image_keeps_its_holes_through_sshd(sshd: Sshd, tmp_path: Path) -> None:
    # 1 GiB with 1 MiB of data in 64 pieces of 16 KiB, one of them at the very
    # end of a chunk and the file ending in a hole.
    image = tmp_path / "disk.img"
    sparse_image(image, GiB, 64, 16 << 10)
    with open(image, "r+b") as f:
        f.seek(64 * MiB - 4096)
        f.write(b"\xff" * 8192)  # across the first chunk boundary
    src_blocks = os.stat(image).st_blocks * 512
    assert src_blocks < 2 * MiB
    dst = tmp_path / "out" / "disk.img"
    dst.parent.mkdir()
    t0 = time.monotonic()
    result: CopyResult = rcp.copy(str(image), f"{sshd.alias}:{dst}", **ssh_opts(sshd))
    took = time.monotonic() - t0
    assert result.ok, result.errors
    assert result.files_copied == 1 and result.bytes_copied == GiB
    # Only the data travelled: the holes were neither sent nor written.
    assert GiB - 2 * MiB < result.sparse_bytes <= GiB - MiB
    st = os.stat(dst)
    assert st.st_size == GiB
    assert st.st_blocks * 512 <= src_blocks + 256 * 1024, (st.st_blocks * 512, src_blocks)
    assert same_content(image, dst)
    assert took < 8, took  # here: about 1 s (a 1-byte copy 0.8 s); as zeros (--no-sparse) 11.5 s
    # --no-sparse (sparse=False): the zeros travel and are written.
    dense = tmp_path / "out" / "dense.img"
    small = tmp_path / "small.img"
    sparse_image(small, 64 * MiB, 4, 4096)
    result = rcp.copy(str(small), f"{sshd.alias}:{dense}", **ssh_opts(sshd, sparse=False))
    assert result.ok and result.sparse_bytes == 0
    assert os.stat(dense).st_blocks * 512 >= 64 * MiB
    assert same_content(small, dense)


def test_sparse_chunks_are_verified_and_small_files_bundle(tmp_path: Path) -> None:
    # Many small sparse files travel bundled (records of one stream), each
    # with its extents; a file of only a hole has none at all.
    src = tmp_path / "src"
    src.mkdir()
    expect = {}
    for i in range(40):
        p = src / f"f{i}"
        with open(p, "wb") as f:
            f.truncate(128 << 10)
            if i % 4:
                f.seek((i % 30) * 4096)
                f.write(bytes([i]) * 100)
        expect[p.name] = p.read_bytes()
    result = rcp.copy(str(src), str(tmp_path / "dst"))
    assert result.ok, result.errors
    for name, data in expect.items():
        out = tmp_path / "dst" / name
        assert out.read_bytes() == data
        assert os.stat(out).st_blocks * 512 <= 8192
    assert result.sparse_bytes > 40 * (100 << 10)


def test_hard_links_share_one_inode_and_the_data_crosses_once(sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    big = src / "a"
    big.write_bytes(os.urandom(3 * MiB))
    os.link(big, src / "sub" / "b")
    os.link(big, src / "z")
    (src / "g1").write_bytes(b"small")
    os.link(src / "g1", src / "sub" / "g2")
    (src / "lone").write_bytes(b"one name")
    dst = tmp_path / "out"
    dst.mkdir()
    result = rcp.copy(str(src), f"{sshd.alias}:{dst}", **ssh_opts(sshd, hard_links=True))
    assert result.ok, result.errors
    assert result.hard_links == 3
    assert result.files_copied == 3 and result.bytes_copied == 3 * MiB + 5 + 8  # each inode's data once
    out = dst / "tree"
    assert os.stat(out / "a").st_ino == os.stat(out / "sub" / "b").st_ino == os.stat(out / "z").st_ino
    assert os.stat(out / "a").st_nlink == 3
    assert os.stat(out / "g1").st_ino == os.stat(out / "sub" / "g2").st_ino
    assert os.stat(out / "lone").st_nlink == 1
    assert (out / "z").read_bytes() == big.read_bytes()
    assert os.stat(out / "sub" / "b").st_mtime_ns == os.stat(big).st_mtime_ns
    # Again: nothing to do, nothing sent.
    again = rcp.copy(str(src), f"{sshd.alias}:{dst}", **ssh_opts(sshd, hard_links=True))
    assert again.ok and again.files_copied == 0 and again.hard_links == 0 and again.unchanged == 6
    # Without -H each name is a file of its own.
    plain = rcp.copy(str(src), f"{sshd.alias}:{tmp_path / 'plain'}", **ssh_opts(sshd))
    assert plain.ok and plain.hard_links == 0 and plain.files_copied == 6
    assert os.stat(tmp_path / "plain" / "a").st_nlink == 1


@contextlib.contextmanager
def mounted(tmp_path: Path, fstype: str, size_mib: int = 0) -> Iterator[Path]:
    """A fresh file system for the test: ext4 on a loop device (an image file
    in tmp_path), or ramfs; unmounted and removed at the end, even on failure."""
    mnt = tmp_path / f"mnt-{fstype}"
    mnt.mkdir()
    image = tmp_path / f"{fstype}.img"
    if fstype == "ext4":
        subprocess.run(["truncate", "-s", f"{size_mib}M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    else:
        subprocess.run(["mount", "-t", fstype, "none", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
        image.unlink(missing_ok=True)


def lowners(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def acl_xattr(entries: list[tuple[int, int, int]]) -> bytes:
    """A system.posix_acl_* value as the kernel keeps it: version 2, then (tag, perm, id) entries."""
    undefined = 0xFFFFFFFF
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, undefined if uid is None else uid)
                                           for tag, perm, uid in entries)


# ACL tags (linux/posix_acl.h) and an ACL: owner rw-, user 1234 rwx, group r--, mask rwx, other ---.
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 1, 2, 4, 8, 0x10, 0x20
ACL = acl_xattr([(USER_OBJ, 6, None), (USER, 7, 1234), (GROUP_OBJ, 4, None), (MASK, 7, None), (OTHER, 0, None)])
DEFAULT_ACL = acl_xattr([(USER_OBJ, 7, None), (GROUP_OBJ, 5, None), (GROUP, 5, 4321), (MASK, 5, None),
                         (OTHER, 0, None)])
# security.capability, revision 2: cap_net_bind_service permitted.
CAPABILITY = struct.pack("<IIIII", 0x02000000, 1 << 10, 0, 0, 0)


@root_only
def test_owners_by_name_and_number_as_root(sshd: Sshd, tmp_path: Path) -> None:
    daemon = pwd.getpwnam("daemon")
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    for name in ("named", "numeric", "suid"):
        (src / name).write_bytes(name.encode())
    os.chown(src / "named", daemon.pw_uid, daemon.pw_gid)
    os.chown(src / "numeric", 12345, 23456)  # in nobody's /etc/passwd: by number
    os.chmod(src / "suid", 0o4755)
    os.chown(src / "suid", 12345, 23456)
    os.chmod(src / "suid", 0o4755)
    os.chown(src / "sub", 4242, 4343)
    os.symlink("named", src / "link")
    os.lchown(src / "link", 777, 888)
    out = tmp_path / "out"
    out.mkdir()
    # As root the destination keeps owners by default, as rsync -a and cp -a do.
    result = rcp.copy(str(src), f"{sshd.alias}:{out}", **ssh_opts(sshd))
    assert result.ok, result.errors
    got = out / "tree"
    assert lowners(got / "named") == (daemon.pw_uid, daemon.pw_gid)
    assert lowners(got / "numeric") == (12345, 23456)
    assert lowners(got / "sub") == (4242, 4343)
    assert lowners(got / "link") == (777, 888)
    assert lowners(got) == lowners(src)
    # The setuid bit is never recreated, owner or not.
    assert lowners(got / "suid") == (12345, 23456) and os.stat(got / "suid").st_mode & 0o7777 == 0o755
    # --no-owner --no-group: the rcpd's own.
    mine = rcp.copy(str(src), f"{sshd.alias}:{tmp_path / 'mine'}", **ssh_opts(sshd, owner=False, group=False))
    assert mine.ok and lowners(tmp_path / "mine" / "numeric") == (0, 0)
    assert lowners(tmp_path / "mine" / "link") == (0, 0)
    # --numeric-ids: the same ids here, where names and ids agree.
    ids = rcp.copy(str(src), f"{sshd.alias}:{tmp_path / 'ids'}", **ssh_opts(sshd, numeric_ids=True))
    assert ids.ok and lowners(tmp_path / "ids" / "named") == (daemon.pw_uid, daemon.pw_gid)


@root_only
def test_xattrs_acls_and_capabilities_through_sshd(sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "dir").mkdir(parents=True)
    f = src / "f"
    f.write_bytes(b"data")
    os.setxattr(f, "user.note", b"hello")
    os.setxattr(f, "user.binary", bytes(range(256)) * 3)
    os.setxattr(f, "trusted.t", b"root only")
    os.setxattr(src / "dir", "user.d", b"on a dir")
    os.setxattr(f, "system.posix_acl_access", ACL)
    os.setxattr(src / "dir", "system.posix_acl_default", DEFAULT_ACL)
    cap = src / "prog"
    cap.write_bytes(b"#!/bin/sh\n")
    os.setxattr(cap, "security.capability", CAPABILITY)
    plain = rcp.copy(str(src), f"{sshd.alias}:{tmp_path / 'plain'}", **ssh_opts(sshd))
    assert plain.ok and os.listxattr(tmp_path / "plain" / "f") == []
    out = tmp_path / "out"
    out.mkdir()
    result = rcp.copy(str(src), f"{sshd.alias}:{out}", **ssh_opts(sshd, xattrs=True, acls=True))
    assert result.ok, result.errors
    got = out / "tree"
    assert os.getxattr(got / "f", "user.note") == b"hello"
    assert os.getxattr(got / "f", "user.binary") == bytes(range(256)) * 3
    assert os.getxattr(got / "f", "trusted.t") == b"root only"
    assert os.getxattr(got / "dir", "user.d") == b"on a dir"
    assert os.getxattr(got / "f", "system.posix_acl_access") == ACL
    assert os.getxattr(got / "dir", "system.posix_acl_default") == DEFAULT_ACL
    assert os.stat(got / "f").st_mode & 0o777 == os.stat(f).st_mode & 0o777
    # File capabilities grant privilege, like setuid: only when asked for.
    assert "security.capability" not in os.listxattr(got / "prog")
    caps = rcp.copy(str(cap), f"{sshd.alias}:{tmp_path / 'prog'}", **ssh_opts(sshd, keep_capabilities=True))
    assert caps.ok and os.getxattr(tmp_path / "prog", "security.capability") == CAPABILITY


@root_only
def test_an_existing_directory_never_takes_the_sources_attributes(sshd: Sshd, tmp_path: Path) -> None:
    """A directory that was there is the user's: even with --overwrite or
    --update a source's ACL or attributes must not land on it (an ACL could
    open ~/Documents to another user where the mode only ever narrows)."""
    src = tmp_path / "Documents"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    os.setxattr(src, "user.d", b"from the source")
    os.setxattr(src, "system.posix_acl_access", ACL)
    os.setxattr(src, "system.posix_acl_default", DEFAULT_ACL)
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True, mode=0o700)
    for how in ({"overwrite": True}, {"update": True}):
        result = rcp.copy(str(src), f"{sshd.alias}:{home}/", **ssh_opts(sshd, xattrs=True, acls=True, **how))
        assert result.ok, result.errors
        assert (home / "Documents" / "f").read_bytes() == b"x"
        assert os.listxattr(home / "Documents") == [], how
        assert os.stat(home / "Documents").st_mode & 0o077 == 0  # its mode may narrow, never open up


@root_only
def test_a_destination_without_xattrs_warns_once(tmp_path: Path) -> None:
    src = tmp_path / "tree"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}").write_bytes(b"x")
        os.setxattr(src / f"f{i}", "user.n", str(i).encode())
    with mounted(tmp_path, "ramfs") as mnt:
        run = subprocess.run([sys.executable, "-m", "rcp.cli", "--no-progress", "-X", str(src), f"{mnt}/"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stderr.count("takes no extended attributes") == 1, run.stderr
        assert sorted(p.name for p in (mnt / "tree").iterdir()) == sorted(f"f{i}" for i in range(20))


def test_dereference_copies_targets_and_reports_loops(sshd: Sshd, tmp_path: Path) -> None:
    """-L from a remote source (its rcpd walks and follows the links) through the real sshd."""
    outside = tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    (outside / "d" / "inner").write_bytes(b"inner")
    (outside / "file").write_bytes(b"target")
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    os.symlink(outside / "file", src / "to_file")
    os.symlink(outside / "d", src / "to_dir")
    os.symlink("..", src / "sub" / "up")  # a loop: tree/sub/up/sub/up/...
    os.symlink("self", src / "self")  # ELOOP
    os.symlink("missing", src / "dangling")
    t0 = time.monotonic()
    result = rcp.copy(f"{sshd.alias}:{src}", str(tmp_path / "out"), dereference=True, ssh_config=str(sshd.config),
                      rcpd_path=RCPD)
    assert time.monotonic() - t0 < 60
    got = tmp_path / "out"
    assert not (got / "to_file").is_symlink() and (got / "to_file").read_bytes() == b"target"
    assert not (got / "to_dir").is_symlink() and (got / "to_dir" / "inner").read_bytes() == b"inner"
    assert not (got / "sub" / "up").exists() and not (got / "self").exists()
    assert result.failed == 3, result.errors
    text = " | ".join(f"{p}: {m}" for p, m in result.errors)
    assert text.count("symlink loop") == 2 and "points to nothing" in text, text
    # Without -L the links are links.
    plain = rcp.copy(str(src), str(tmp_path / "plain"))
    assert plain.ok and os.readlink(tmp_path / "plain" / "sub" / "up") == ".."


def hard_cases(root: Path) -> None:
    """The tree of awkward entries of issue 13's fidelity test."""
    root.mkdir()
    (root / ("n" * 255)).write_bytes(b"long name")
    (root / ("\u00e9" * 127)).write_bytes(b"254 bytes of UTF-8")
    os.mkdir(os.fsencode(root) + b"/not-utf8-\xff\xfe")
    with open(os.fsencode(root) + b"/not-utf8-\xff\xfe/caf\xe9", "wb") as f:
        f.write(b"latin-1 name")
    deep = root / "deep"
    for i in range(60):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "bottom").write_bytes(b"60 levels down")
    zero = root / "mode000"
    zero.write_bytes(b"nobody may read this")
    zero.chmod(0)
    modes = root / "modes"
    for mode in (0o700, 0o751, 0o555, 0o1777):
        d = modes / f"{mode:o}"
        d.mkdir(parents=True)
        (d / "f").write_bytes(b"x")
        d.chmod(mode)
    os.symlink("/etc/hostname", root / "absolute")
    os.symlink("no/such/target", root / "dangling")
    (root / "linked").write_bytes(os.urandom(100_000))
    os.link(root / "linked", root / "modes" / "also-linked")
    sparse_image(root / "sparse.img", 64 * MiB, 8, 64 << 10)
    x = root / "xattrs"
    x.write_bytes(b"with attributes")
    os.setxattr(x, "user.a", b"1")
    os.setxattr(x, "user.empty", b"")
    os.setxattr(x, "trusted.b", b"2")
    os.setxattr(root / "modes", "user.dir", b"3")
    acl = root / "acl"
    acl.write_bytes(b"with an ACL")
    os.setxattr(acl, "system.posix_acl_access", ACL)
    os.setxattr(root / "deep", "system.posix_acl_default", DEFAULT_ACL)
    owned = root / "owned"
    owned.write_bytes(b"someone else's")
    os.chown(owned, 12345, 23456)
    os.lchown(root / "dangling", 777, 888)
    # mtimes last, deepest first, directories included.
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(1_500_000_000_123_456_789,) * 2, follow_symlinks=False)
    os.utime(root, ns=(1_400_000_000_000_000_001,) * 2)


@root_only
def test_fidelity_against_rsync_on_ext4(sshd: Sshd, tmp_path: Path) -> None:
    """The standard library and a tree of hard cases, copied with the flags of
    rsync -aHAX through the real sshd onto ext4: rsync -aHAXn --checksum
    finds nothing to change, and the sparse image stays sparse."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with mounted(tmp_path, "ext4", 512) as mnt:
        src = mnt / "src"
        src.mkdir()
        hard_cases(src / "hard")
        dst = mnt / "dst"
        dst.mkdir()
        t0 = time.monotonic()
        result = rcp.copy([str(stdlib), str(src / "hard")], f"{sshd.alias}:{dst}/",
                          **ssh_opts(sshd, hard_links=True, xattrs=True, acls=True))
        took = time.monotonic() - t0
        assert result.ok, result.errors[:5]
        assert result.hard_links >= 1 and result.sparse_bytes > 60 * MiB
        for tree, copied in ((stdlib, dst / stdlib.name), (src / "hard", dst / "hard")):
            check = subprocess.run(["rsync", "-aHAXn", "--checksum", "--itemize-changes", f"{tree}/", f"{copied}/"],
                                   capture_output=True, text=True, timeout=600)
            assert check.returncode == 0, check.stderr
            assert check.stdout == "", check.stdout[:3000]
        # rsync does not compare allocation: the holes stayed holes (a little slack for ext4's own choices).
        blocks = os.stat(dst / "hard" / "sparse.img").st_blocks, os.stat(src / "hard" / "sparse.img").st_blocks
        assert blocks[0] <= blocks[1] + 64, blocks
        files = sum(len(f) for _, _, f in os.walk(stdlib))
        print(f"fidelity: {files} stdlib files + hard cases in {took:.1f} s")
        shutil.rmtree(dst)
