"""--partial (issue 12 item 3): an interrupted large file keeps its verified
blocks beside the target, and the next run with --partial sends only the
rest. Real rcpds through the sshd fixture, a real 1 GiB file."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import rcp
import rcp.daemon
from rcp.model import CopyResult
from sshd import Sshd
from test_faults import rcpd_pids

RCPD = str(rcp.daemon.rcpd_path())
OLD = 1_000_000_000
GIB = 1 << 30
BLOCK = 4 << 20  # wire/partial_blocks.h: a 1 GiB file has 256 blocks of 4 MiB
ENTRY = 4 + 32  # a record entry: block number, SHA-256


def make_big(path: Path, size: int = GIB) -> Path:
    """Random-ish and different in every block (a 64 MiB random pattern,
    each 4 MiB block tagged with its number), quick to write."""
    pattern = memoryview(os.urandom(64 << 20))
    with open(path, "wb") as f:
        for i in range(size // BLOCK):
            at = (i * BLOCK) % len(pattern)
            f.write(i.to_bytes(8, "big"))
            f.write(pattern[at + 8:at + BLOCK])
    os.utime(path, (OLD, OLD))
    return path


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def partial_names(target: Path) -> tuple[Path, Path]:
    """The hidden pair beside `target` (copy/partial_file.h)."""
    tag = hashlib.sha256(target.name.encode()).hexdigest()[:32]
    return target.parent / f".rcp-partial-{tag}.part", target.parent / f".rcp-partial-{tag}.rec"


def recorded(record: Path, name: str) -> dict[int, bytes]:
    """Blocks the record lists: a header (magic, size, mtime s+ns, block bytes, name) then entries."""
    data = record.read_bytes()
    header = 8 + 8 + 8 + 4 + 8 + 2 + len(name.encode())
    body = data[header:]
    return {int.from_bytes(body[i:i + 4], "big"): body[i + 4:i + ENTRY]
            for i in range(0, len(body) - len(body) % ENTRY, ENTRY)}


def wait_for_half(record: Path, alive: Callable[[], bool], blocks: int = 128) -> None:
    """Until the destination recorded `blocks` verified blocks (half of 1 GiB)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and alive():
        try:
            if record.stat().st_size >= 8 + 8 + 8 + 4 + 8 + 2 + 20 + blocks * ENTRY:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise AssertionError("the copy never got half way with a record")


def wait_rcpds_gone(sshd: Sshd) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (rcpd_pids("source", {sshd.proc.pid}) or
                                           rcpd_pids("destination", {sshd.proc.pid})):
        time.sleep(0.1)


def ssh_opts(sshd: Sshd) -> dict[str, object]:
    return {"ssh_config": str(sshd.config), "rcpd_path": RCPD}


def resume_and_check(sshd: Sshd, src: Path, target: Path) -> tuple[CopyResult, float]:
    t0 = time.monotonic()
    again = rcp.copy(str(src), f"{sshd.alias}:{target}", partial=True, **ssh_opts(sshd))
    took = time.monotonic() - t0
    assert again.ok, again.errors
    assert again.files_copied == 1 and again.bytes_copied == GIB
    # About half was kept and not sent again.
    assert GIB // 4 <= again.resumed_bytes <= GIB * 3 // 4, again.resumed_bytes
    assert again.resumed_bytes % BLOCK == 0
    assert digest(target) == digest(src)
    assert target.stat().st_mtime == OLD
    # Both hidden files are gone once the file is in place.
    assert not [p.name for p in target.parent.iterdir() if p.name.startswith(".rcp-")]
    return again, took


def test_master_interrupted_by_sigint_resumes_with_partial(sshd: Sshd, tmp_path: Path) -> None:
    src = make_big(tmp_path / "big")
    out = tmp_path / "out"
    out.mkdir()
    target = out / "big.copy"
    data, record = partial_names(target)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "rcp.cli", "--no-progress", "--partial", "--ssh-config",
                             str(sshd.config), "--rcpd-path", RCPD, str(src), f"{sshd.alias}:{target}"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for_half(record, lambda: proc.poll() is None)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = time.monotonic() - t0
    assert proc.returncode == 130, err
    wait_rcpds_gone(sshd)
    assert not target.exists()
    # What verified is kept, under hidden names.
    assert data.exists() and len(recorded(record, target.name)) >= 128
    again, took = resume_and_check(sshd, src, target)
    print(f"\n1 GiB --partial, SIGINT at half: first run {first:.2f} s, resume {took:.2f} s, "
          f"resumed {again.resumed_bytes >> 20} MiB, sent {(GIB - again.resumed_bytes) >> 20} MiB")


def test_killed_destination_resumes_and_altered_partial_files_change_nothing(sshd: Sshd, tmp_path: Path) -> None:
    src = make_big(tmp_path / "big")
    out = tmp_path / "out"
    out.mkdir()
    target = out / "big.copy"
    data, record = partial_names(target)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = rcp.copy(str(src), f"{sshd.alias}:{target}", partial=True, **ssh_opts(sshd))
        except rcp.RcpError as exc:
            outcome["error"] = exc

    t0 = time.monotonic()
    t = threading.Thread(target=run)
    t.start()
    wait_for_half(record, t.is_alive)
    pids = rcpd_pids("destination", {sshd.proc.pid})
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    t.join(timeout=60)
    first = time.monotonic() - t0
    assert not t.is_alive()
    result = outcome.get("result")
    assert "error" in outcome or (isinstance(result, CopyResult) and not result.ok), outcome
    wait_rcpds_gone(sshd)
    assert not target.exists()
    kept = recorded(record, target.name)
    assert len(kept) >= 128

    # A local user alters the kept files between the runs:
    blocks = sorted(kept)
    with open(data, "r+b") as f:
        # a byte inside a kept block (the record still has the old hash);
        f.seek(blocks[0] * BLOCK + 4096)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
        # another block rewritten, and its record entry with it, consistently;
        f.seek(blocks[1] * BLOCK)
        forged = os.urandom(BLOCK)
        f.write(forged)
    missing = next(b for b in range(256) if b not in kept)
    with open(src, "rb") as s:
        s.seek(missing * BLOCK)
        true_hash = hashlib.sha256(s.read(BLOCK)).digest()
    body = bytearray(record.read_bytes())
    header = len(body) - len(kept) * ENTRY
    for i in range(header, len(body), ENTRY):
        if int.from_bytes(body[i:i + 4], "big") == blocks[1]:
            body[i + 4:i + ENTRY] = hashlib.sha256(forged).digest()
    # and a block never written claimed with the source's true hash.
    body += missing.to_bytes(4, "big") + true_hash
    record.write_bytes(bytes(body))

    again, took = resume_and_check(sshd, src, target)
    # The altered blocks were sent again: not counted as resumed.
    assert again.resumed_bytes <= (len(kept) - 2) * BLOCK
    print(f"\n1 GiB --partial, destination SIGKILLed at half: first run {first:.2f} s, resume {took:.2f} s, "
          f"resumed {again.resumed_bytes >> 20} MiB, sent {(GIB - again.resumed_bytes) >> 20} MiB")


def test_a_record_of_another_version_of_the_file_is_not_used(tmp_path: Path) -> None:
    """The record names the file's size and mtime: after the source changed, its blocks are not offered."""
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * BLOCK + 5))
    os.utime(src, (OLD, OLD))
    out = tmp_path / "out"
    out.mkdir()
    target = out / "f"
    data, record = partial_names(target)
    # A pair as an interrupted run leaves it, for the old version of the file (another mtime).
    header = (b"RCPPART1" + (3 * BLOCK + 5).to_bytes(8, "big") + (OLD - 1).to_bytes(8, "big") + (0).to_bytes(4, "big")
              + BLOCK.to_bytes(8, "big") + len(b"f").to_bytes(2, "big") + b"f")
    old = os.urandom(BLOCK)
    data.write_bytes(old + bytes(2 * BLOCK + 5))
    record.write_bytes(header + (0).to_bytes(4, "big") + hashlib.sha256(old).digest())
    r = rcp.copy(str(src), str(target), partial=True)
    assert r.ok and r.resumed_bytes == 0
    assert target.read_bytes() == src.read_bytes()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".rcp-")]


def test_without_partial_a_large_copy_leaves_no_partial_files(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * BLOCK))
    out = tmp_path / "out"
    out.mkdir()
    r = rcp.copy(str(src), str(out / "f"))
    assert r.ok and r.resumed_bytes == 0
    assert [p.name for p in out.iterdir()] == ["f"]
