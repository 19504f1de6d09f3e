#!/usr/bin/env python3
"""Demo: a real rcp copy through a private OpenSSH server on loopback.

Starts sshd on 127.0.0.1 (fresh host and user keys, its own known_hosts and
ssh config), makes a sample tree, copies it with the `rcp` command to
`rcpdemo:<dir>` — rcpds started over SSH, pinned QUIC back to the master,
data straight from source to destination — with live progress, then checks
every file's bytes, mode and mtime and prints the summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import rcp.daemon  # noqa: E402
from sshd import start_sshd, stop_sshd  # noqa: E402
from treeutil import assert_same_tree  # noqa: E402


def sample_tree(root: Path, big_mib: int) -> tuple[int, int]:
    """Many small files in nested dirs, a few medium ones, one big file, links, an empty dir."""
    files = total = 0
    for d in range(20):
        sub = root / f"project-{d:02d}" / "src"
        sub.mkdir(parents=True)
        for f in range(25):
            data = os.urandom(512 + 97 * f)
            (sub / f"module_{f}.py").write_bytes(data)
            files, total = files + 1, total + len(data)
    media = root / "media files"
    media.mkdir()
    for i in range(4):
        data = os.urandom((8 << 20) + i)
        (media / f"clip {i}.bin").write_bytes(data)
        files, total = files + 1, total + len(data)
    with open(root / "dataset.bin", "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(big_mib):
            f.write(block)
    files, total = files + 1, total + (big_mib << 20)
    (root / "empty dir").mkdir()
    os.symlink("dataset.bin", root / "latest")
    return files, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big-mib", type=int, default=512, help="size of the big file in MiB (default 512)")
    args = parser.parse_args()
    os.environ.pop("SSH_AUTH_SOCK", None)  # only the demo's own key
    work = Path(tempfile.mkdtemp(prefix="rcp-demo-"))
    server = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-demo-sshd-")))
    try:
        src, dst = work / "sample", work / "received"
        files, total = sample_tree(src, args.big_mib)
        print(f"sshd     127.0.0.1:{server.port} (host key pinned in {server.known_hosts})")
        print(f"source   {src}: {files} files, {total / 1e6:.0f} MB")
        cmd = [sys.executable, "-m", "rcp.cli", "--progress", "--summary", "-v",
               "--ssh-config", str(server.config), "--rcpd-path", str(rcp.daemon.rcpd_path()),
               str(src), f"{server.alias}:{dst}"]
        print("$ rcp --progress --summary -v --ssh-config ... --rcpd-path ... "
              f"{src} {server.alias}:{dst}", flush=True)
        started = time.monotonic()
        code = subprocess.run(cmd, timeout=600).returncode
        elapsed = time.monotonic() - started
        if code != 0:
            print(f"demo: rcp exited with {code}", file=sys.stderr)
            return 1
        assert_same_tree(src, dst)
        print(f"verified {files} files (bytes, modes, mtimes), the symlink and the empty dir: "
              f"{total / 1e6:.0f} MB in {elapsed:.2f} s, {total / elapsed / 1e6:.0f} MB/s end to end "
              "(including SSH logins and rcpd start-up)")
        return 0
    finally:
        stop_sshd(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
