"""A sharded copy in the lab (tests/lab_multi.py): two source and two
destination hosts, each in its own namespace behind its own sshd, each data
link capped at 200 Mbit/s, the shards run by a Dask LocalCluster. The hosts
share this machine's file system, so storage is shared by construction.

Needs root (CI runs as root); fails, never skips, without it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from lab_multi import MultiLab

MiB = 1 << 20
# 200 Mbit/s per host: the surviving pair carries its own 256 MiB file and
# the killed pair's again, ~530 MiB, which keeps the test near a minute.
RATE_MBIT = 200.0
SMALL_FILES = 20_000
BIG = 256 * MiB  # two of them, one per pair's shard
DATA_MIB = 1536  # the hosts' shared tmpfs: the tree twice (~1.05 GiB), and room


@pytest.fixture(scope="module")
def lab() -> Iterator[MultiLab]:
    if os.geteuid() != 0:
        pytest.fail("tests/test_lab_scaleout.py needs root (network namespaces, veth, tc): run it as root, as CI does")
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    with MultiLab(2, 2, RATE_MBIT, data_mib=DATA_MIB) as the_lab:
        yield the_lab
    # The shared storage (a tmpfs: ~1 GiB of memory while it holds the trees) is gone with the lab.
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    assert str(the_lab.data) not in mounts, "the lab's tmpfs is still mounted"
    if saved_agent is not None:
        os.environ["SSH_AUTH_SOCK"] = saved_agent


def make_tree(root: Path, small: int, big: int) -> int:
    """`small` files of 64-1087 bytes in 100 per directory, 10 directories per
    top-level one, and two `big` files in directories of their own; returns the bytes."""
    total = 0
    for i in range(small):
        p = root / f"top{i // 1000:02d}" / f"d{i // 100 % 10}" / f"f{i % 100}"
        if i % 100 == 0:
            p.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(64 + i % 1024)
        p.write_bytes(data)
        total += len(data)
    chunk = os.urandom(MiB)
    for name in ("bigA", "bigB"):
        (root / name).mkdir()
        with open(root / name / "data", "wb") as f:
            for k in range(big // MiB):  # each MiB different: no dedup or compression can help
                f.write(k.to_bytes(8, "big") + chunk[8:])
        total += big
    return total


def tree_digest(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            h = hashlib.sha256()
            with open(p, "rb") as f:
                while block := f.read(4 * MiB):
                    h.update(block)
            out[str(p.relative_to(root))] = (p.stat().st_mtime_ns, h.hexdigest())
    return out


def kill_pair_when(lab: MultiLab, index: int, carried: int, stop: threading.Event, killed: list[int]) -> None:
    """SIGKILLs the rcpds of pair `index` (its source and destination host)
    once that destination's data link carried `carried` bytes."""
    src, dst = lab.sources[index], lab.destinations[index]
    start = lab.host_bytes()[dst.alias].data
    while not stop.is_set():
        if lab.host_bytes()[dst.alias].data - start >= carried:
            pids = src.processes("rcpd") + dst.processes("rcpd")
            for pid in pids:
                os.kill(pid, 9)
            killed.extend(pids)
            return
        time.sleep(0.05)


def test_sharded_copy_over_four_hosts_with_dask(lab: MultiLab, tmp_path: Path) -> None:
    """Data from both sources to both destinations, almost none through the
    caller; one pair killed mid-copy, its shard rerun on the other pair, and
    the result complete and verified."""
    from distributed import Client, LocalCluster

    src = lab.host_dir("scale-src")
    dst = lab.host_dir("scale-dst")  # the copy lands in it, as scale-dst/scale-src
    total = make_tree(src, SMALL_FILES, BIG)
    before = lab.host_bytes()
    stop = threading.Event()
    killed: list[int] = []
    killer = threading.Thread(target=kill_pair_when, args=(lab, 1, 32 * MiB, stop, killed), daemon=True)
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            killer.start()
            t0 = time.monotonic()
            out = rcp.copy_sharded(str(src), str(dst), lab.source_hosts(), lab.destination_hosts(), client=client,
                                   ssh_config=str(lab.ssh_config), rcpd_path=str(rcp.daemon.rcpd_path()))
            seconds = time.monotonic() - t0
        after = lab.host_bytes()
        print(f"\nsharded copy of {total / MiB:.0f} MiB, {SMALL_FILES + 2} files over 2 pairs: {seconds:.1f} s "
              f"(listing {out.listing_seconds:.1f} s, shards {out.shards_seconds:.1f} s, "
              f"final pass {out.final_seconds:.1f} s)")
        assert killed, "the pair was never killed"
        assert out.ok, out.result.errors
        rerun = [s for s in out.shards if s.attempts > 1]
        assert len(rerun) == 1 and rerun[0].pair == "labsrc0->labdst0", out.shards
        carried = {alias: (after[alias].data - before[alias].data, after[alias].master - before[alias].master)
                   for alias in after}
        for alias, (data, master) in carried.items():
            print(f"  {alias}: data link {data / MiB:.1f} MiB, master link {master / MiB:.2f} MiB")
            assert data > 24 * MiB, f"{alias} carried little data: {data}"
        caller = sum(master for _, master in carried.values())
        assert caller < 0.05 * total, f"the caller's links carried {caller} bytes of {total}"
        assert tree_digest(src) == tree_digest(dst / src.name)
    finally:
        stop.set()
