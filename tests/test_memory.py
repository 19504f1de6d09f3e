"""The destination's memory per file: its bookkeeping of a file is released
once the file is settled, so a copy of many files costs no more memory than a
copy of a few (the review measured ~0.37 KiB per file that stayed)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import rcp
from test_faults import rcpd_pids, status_kib


def _peak_kib(role: str, src: Path, dst: Path) -> tuple[int, rcp.CopyResult]:
    """The copy's result and the peak RSS of its `role` rcpd, sampled every 20 ms."""
    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid in rcpd_pids(role):
                peak[0] = max(peak[0], status_kib(pid, "VmHWM"))
            stop.wait(0.02)

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    try:
        result = rcp.copy(str(src), str(dst))
    finally:
        stop.set()
        w.join(timeout=5)
    return peak[0], result


def _peak_destination_kib(src: Path, dst: Path) -> int:
    peak, result = _peak_kib("destination", src, dst)
    assert result.ok and result.files_copied == len(os.listdir(src)), result
    return peak


def _empty_files(top: Path, n: int) -> Path:
    top.mkdir()
    for i in range(n):
        (top / f"f{i:06d}").touch()
    return top


def test_destination_memory_does_not_grow_with_the_number_of_files(tmp_path: Path) -> None:
    few = _peak_destination_kib(_empty_files(tmp_path / "few", 2_000), tmp_path / "dst-few")
    many = _peak_destination_kib(_empty_files(tmp_path / "many", 40_000), tmp_path / "dst-many")
    per_file = (many - few) / 38_000
    assert few > 0 and many > 0
    assert per_file < 0.1, f"{per_file:.3f} KiB per file ({few} KiB for 2k files, {many} KiB for 40k)"


def test_source_memory_stays_bounded_for_a_large_file(tmp_path: Path) -> None:
    """The source's blocks are allocated by its reader threads and freed by the
    loop thread: with a malloc arena per thread every arena kept its own
    high-water mark and the RSS grew with the file (90 MiB for this one,
    130 MiB for 1 GiB). Bounded by what is in flight, it stays well under."""
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for _ in range(512):
            f.write(block)
    peak, result = _peak_kib("source", src, tmp_path / "dst.bin")
    assert result.ok and result.files_copied == 1, result
    assert (tmp_path / "dst.bin").stat().st_size == 512 << 20
    assert 0 < peak < 80 * 1024, f"source rcpd peak RSS {peak / 1024:.1f} MiB for a 512 MiB file"
