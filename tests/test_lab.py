"""3-node tests in the lab (tests/lab.py): the master here, the source and the
destination in their own network namespaces behind their own sshds, the file
data over an emulated WAN link (rcp-wanem) between them.

These need root (CI runs as root). They fail, never skip, without it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import rcp
from lab import Lab, LabHost, WanConditions

MiB = 1 << 20
BASELINE = WanConditions(delay_ms=15, rate_mbit=10, queue_bytes=100_000)
COPY_TIMEOUT = 120.0  # no single copy here should come near it


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("tests/test_lab.py needs root (network namespaces, veth, TUN): run it as root, as CI does")
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    with Lab() as the_lab:
        yield the_lab
    if saved_agent is not None:
        os.environ["SSH_AUTH_SOCK"] = saved_agent


@dataclass
class Outcome:
    result: rcp.CopyResult | None
    error: BaseException | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    def describe(self) -> str:
        return f"result={self.result!r} error={self.error!r} after {self.seconds:.1f} s"


def make_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".rcp-*.tmp")]


def start_copy(lab: Lab, *args: object, **kwargs: object) -> tuple[threading.Thread, list[Outcome]]:
    """lab.copy in a thread, so a test can act mid-transfer and bound the wait."""
    box: list[Outcome] = []

    def run() -> None:
        t0 = time.monotonic()
        try:
            box.append(Outcome(lab.copy(*args, **kwargs), None, time.monotonic() - t0))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the test judges it
            box.append(Outcome(None, exc, time.monotonic() - t0))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def finish(t: threading.Thread, box: list[Outcome], timeout: float = COPY_TIMEOUT) -> Outcome:
    t.join(timeout)
    if t.is_alive() or not box:
        pytest.fail(f"the copy did not finish within {timeout:.0f} s")
    print(box[0].describe())  # shown with -s, and for failing tests
    return box[0]


def copy(lab: Lab, *args: object, timeout: float = COPY_TIMEOUT, **kwargs: object) -> Outcome:
    return finish(*start_copy(lab, *args, **kwargs), timeout=timeout)


def wait_until(what: str, check: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def wait_wan_bytes(lab: Lab, nbytes: int, timeout: float = 60.0) -> None:
    """Until the WAN link has carried `nbytes` from source to destination."""
    assert lab.wan_process
    wan = lab.wan_process
    wait_until(f"{nbytes} bytes over the WAN link", lambda: wan.stats()["a2b"]["bytes_out"] >= nbytes, timeout)


def assert_no_rcpd_left(lab: Lab, timeout: float = 15.0) -> None:
    hosts: list[LabHost] = [lab.src, lab.dst]  # type: ignore[list-item]
    wait_until("every rcpd to exit", lambda: not any(h.processes("rcpd") for h in hosts), timeout, 0.1)


def assert_clean_failure(out: Outcome, final: Path, dst: Path) -> None:
    assert not out.ok, f"the copy should have failed: {out.describe()}"
    assert not final.exists(), f"partial file under its final name after {out.describe()}"
    assert temp_files(dst) == [], f"temporary files left: {temp_files(dst)}"


# -- topology -------------------------------------------------------------


def test_hosts_reach_each_other_only_over_the_wan_link(lab: Lab) -> None:
    assert lab.src and lab.dst
    lab.wan(BASELINE)
    for a, b in ((lab.src, lab.dst), (lab.dst, lab.src)):
        # No route to the other host's master link, in either direction...
        assert a.exec("ip", "route", "get", b.addr, check=False).returncode != 0
        # ...but the WAN link works, for IPv4 and IPv6.
        assert "dev wan0" in a.exec("ip", "route", "get", b.wan4).stdout
        assert "dev wan0" in a.exec("ip", "-6", "route", "get", b.wan6).stdout
    assert lab.src.exec("ip", "route", "show", "default").stdout.strip() == ""


def test_three_node_copy_goes_source_to_destination(lab: Lab) -> None:
    lab.wan(BASELINE)
    src, dst = lab.host_dir("3node-src"), lab.host_dir("3node-dst")
    (src / "tree" / "sub").mkdir(parents=True)
    files = {"tree/big.bin": 3 * MiB, "tree/sub/small.bin": 10_000, "tree/sub/empty": 0}
    for name, size in files.items():
        make_file(src / name, size)
    copied = sum(files.values())
    master_before = lab.master_link_bytes()
    out = copy(lab, str(src / "tree"), str(dst) + "/")
    assert out.ok, out.describe()
    assert out.result and out.result.files_copied == len(files) and out.result.bytes_copied == copied
    for name in files:
        assert digest(dst / name) == digest(src / name), name
    assert temp_files(dst) == []
    master_bytes = lab.master_link_bytes() - master_before
    assert lab.wan_process
    wan = lab.wan_process.stats()
    assert wan["a2b"]["bytes_out"] >= copied, "the file data must cross the source->destination link"
    assert master_bytes < 0.05 * copied, f"master links carried {master_bytes} bytes for {copied} copied"
    assert_no_rcpd_left(lab)


# -- network conditions ---------------------------------------------------


def test_750ms_rtt(lab: Lab) -> None:
    lab.wan(WanConditions(delay_ms=375, rate_mbit=10, queue_bytes=1_000_000))
    src, dst = lab.host_dir("rtt-src"), lab.host_dir("rtt-dst")
    make_file(src / "f.bin", 2 * MiB)
    out = copy(lab, str(src / "f.bin"), str(dst) + "/")
    assert out.ok, out.describe()
    assert digest(dst / "f.bin") == digest(src / "f.bin")


def test_handshake_loss_30_percent_twenty_copies_in_a_row(lab: Lab) -> None:
    wan = lab.wan(WanConditions(delay_ms=15, rate_mbit=10, queue_bytes=100_000, loss=0.30, loss_burst=3,
                                loss_handshake_only=True, seed=30))
    src, dst = lab.host_dir("hsloss-src"), lab.host_dir("hsloss-dst")
    make_file(src / "f.bin", 64 * 1024)
    for i in range(20):
        out = copy(lab, str(src / "f.bin"), str(dst / f"copy{i}.bin"), timeout=60)
        assert out.ok, f"copy {i}: {out.describe()}"
        assert digest(dst / f"copy{i}.bin") == digest(src / "f.bin")
    stats = wan.stats()
    assert stats["a2b"]["lost"] + stats["b2a"]["lost"] > 0, "the handshakes must have met loss"


def test_two_percent_loss_during_transfer(lab: Lab) -> None:
    wan = lab.wan(WanConditions(delay_ms=15, rate_mbit=10, queue_bytes=100_000, loss=0.02, seed=2))
    src, dst = lab.host_dir("loss-src"), lab.host_dir("loss-dst")
    make_file(src / "f.bin", 2 * MiB)
    out = copy(lab, str(src / "f.bin"), str(dst) + "/")
    assert out.ok, out.describe()
    assert digest(dst / "f.bin") == digest(src / "f.bin")
    assert wan.stats()["a2b"]["lost"] > 0


@pytest.mark.parametrize("rate", [0.02, 0.30])
def test_corruption_never_reaches_the_disk(lab: Lab, rate: float) -> None:
    wan = lab.wan(WanConditions(delay_ms=15, rate_mbit=10, queue_bytes=100_000, corrupt=rate, corrupt_first=50,
                                seed=int(rate * 100)))
    src, dst = lab.host_dir(f"corrupt{rate}-src"), lab.host_dir(f"corrupt{rate}-dst")
    make_file(src / "a.bin", 1 * MiB)
    make_file(src / "b.bin", 300_000)
    out = copy(lab, [str(src / "a.bin"), str(src / "b.bin")], str(dst) + "/")
    assert wan.stats()["a2b"]["corrupted"] > 0
    # Success or a clean failure; whatever sits under a final name is exact.
    for name in ("a.bin", "b.bin"):
        if (dst / name).exists():
            assert digest(dst / name) == digest(src / name), f"{name} corrupted on disk"
    if out.ok:
        assert (dst / "a.bin").exists() and (dst / "b.bin").exists()
    else:
        assert temp_files(dst) == [], out.describe()


def test_two_second_blackhole_is_survived(lab: Lab) -> None:
    wan = lab.wan(BASELINE)
    src, dst = lab.host_dir("bh-src"), lab.host_dir("bh-dst")
    make_file(src / "f.bin", 4 * MiB)
    t, box = start_copy(lab, str(src / "f.bin"), str(dst) + "/")
    wait_wan_bytes(lab, 1 * MiB)
    wan.blackhole(2.0)
    out = finish(t, box)
    assert out.ok, out.describe()
    assert digest(dst / "f.bin") == digest(src / "f.bin")
    assert wan.stats()["a2b"]["blackholed"] > 0


def test_outage_longer_than_idle_timeout_fails_cleanly(lab: Lab) -> None:
    wan = lab.wan(BASELINE)
    src, dst = lab.host_dir("outage-src"), lab.host_dir("outage-dst")
    make_file(src / "f.bin", 6 * MiB)
    t, box = start_copy(lab, str(src / "f.bin"), str(dst) + "/")
    wait_wan_bytes(lab, 1 * MiB)
    wan.blackhole(120.0)  # far past rcpd's 30 s idle timeout
    out = finish(t, box, timeout=90.0)
    assert_clean_failure(out, dst / "f.bin", dst)
    assert out.seconds < 80, f"the failure took too long: {out.describe()}"
    assert_no_rcpd_left(lab)


def test_ipv6_only_link(lab: Lab) -> None:
    assert lab.src and lab.dst
    wan = lab.wan(BASELINE)
    hosts = (lab.src, lab.dst)
    for h in hosts:  # take IPv4 off the WAN link for this test
        h.exec("ip", "addr", "del", f"{h.wan4}/24", "dev", "wan0")
    try:
        src, dst = lab.host_dir("v6-src"), lab.host_dir("v6-dst")
        make_file(src / "f.bin", 2 * MiB)
        out = copy(lab, str(src / "f.bin"), str(dst) + "/", ipv6=True)
        assert out.ok, out.describe()
        assert digest(dst / "f.bin") == digest(src / "f.bin")
        assert wan.stats()["a2b"]["bytes_out"] > 2 * MiB
    finally:
        for h in hosts:
            h.exec("ip", "addr", "add", f"{h.wan4}/24", "dev", "wan0", check=False)


# -- faults ---------------------------------------------------------------


@pytest.mark.parametrize("victim", ["source-rcpd", "destination-rcpd", "source-ssh-session"])
def test_killed_mid_transfer_is_reported_in_bounded_time(lab: Lab, victim: str) -> None:
    assert lab.src and lab.dst
    lab.wan(BASELINE)
    src, dst = lab.host_dir(f"kill-{victim}-src"), lab.host_dir(f"kill-{victim}-dst")
    make_file(src / "f.bin", 8 * MiB)  # ~7 s at 10 Mbit/s: still running when killed
    t, box = start_copy(lab, str(src / "f.bin"), str(dst) + "/")
    wait_wan_bytes(lab, 1 * MiB)
    host = lab.dst if victim.startswith("destination") else lab.src
    pids = host.ssh_sessions() if victim.endswith("ssh-session") else host.processes("rcpd")
    assert pids, f"nothing to kill for {victim}"
    killed_at = time.monotonic()
    for pid in pids:
        os.kill(pid, 9)
    out = finish(t, box, timeout=60.0)
    print(f"{victim} killed; the master returned {time.monotonic() - killed_at:.1f} s later")
    assert not out.ok, out.describe()
    assert time.monotonic() - killed_at < 45, f"the master took too long to notice: {out.describe()}"
    assert not (dst / "f.bin").exists() or digest(dst / "f.bin") == digest(src / "f.bin")
    assert_no_rcpd_left(lab)
    if victim != "destination-rcpd":  # a SIGKILLed destination can't remove its temporaries
        wait_until("the destination to remove its temporary files", lambda: temp_files(dst) == [], 10)


def test_full_destination_disk_fails_cleanly(lab: Lab) -> None:
    lab.wan(BASELINE)
    src = lab.host_dir("full-src")
    dst = lab.small_disk  # a 4 MiB tmpfs
    make_file(src / "f.bin", 6 * MiB)
    out = copy(lab, str(src / "f.bin"), str(dst) + "/")
    assert_clean_failure(out, dst / "f.bin", dst)
    assert out.result is None or out.result.failed or out.result.errors
    said = " ".join(m for _, m in out.result.errors) if out.result else str(out.error)
    assert "No space left on device" in said, said  # the cause, not a stale errno
    assert_no_rcpd_left(lab)
