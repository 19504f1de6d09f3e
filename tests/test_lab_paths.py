"""Lab tests of the ways a copy can go (issue 11): nftables rules in the hosts'
namespaces close the paths rcp would take by default, and the copy has to
find another one, or fail clearly, in bounded time (tests/lab.py): no UDP to
the master; the destination's sshd only through a jump host; no UDP between
source and destination (TCP fallback); no direct path at all (--relay); TCP
data connections reset mid-copy.

These need root (CI runs as root). They fail, never skip, without it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from lab import SSH_PORT, Lab, LabHost, Rule, WanConditions, drop_between, drop_tcp_to_port, reset_tcp_port
from rcp.errors import ConnectionFailure
from test_lab import (BASELINE, MiB, Outcome, assert_clean_failure, assert_no_rcpd_left, copy, digest, finish, lab,
                      make_file, start_copy, temp_files, wait_wan_bytes)
from treeutil import LogLines

__all__ = ["lab"]  # the module-scoped fixture of test_lab.py, a lab of this module's own

FAST = WanConditions(delay_ms=5)  # unlimited rate: these tests are about the path, not the speed
# One datagram from inside a host's namespace (argv: address, port).
# The source's listener port in the TCP reset test: outside the kernel's
# ephemeral range (32768-60999), so no SSH connection's port can be it.
DATA_PORT = 30123
SEND_UDP = "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', (sys.argv[1], 9))"


def make_tree(root: Path) -> dict[str, int]:
    """A few files, one of them large enough that where its bytes went shows."""
    files = {"big.bin": 3 * MiB, "sub/small.bin": 20_000, "sub/empty": 0}
    (root / "sub").mkdir(parents=True)
    for name, size in files.items():
        make_file(root / name, size)
    return files


def assert_same_tree(src: Path, dst: Path, files: dict[str, int]) -> None:
    for name in files:
        assert digest(dst / name) == digest(src / name), name
    assert temp_files(dst) == []


def assert_no_tables(lab: Lab) -> None:
    assert lab.src and lab.dst
    assert lab.src.nft_tables() == [] and lab.dst.nft_tables() == [], "a test left nftables rules behind"


def test_udp_dropped_between_the_hosts_and_the_master(lab: Lab) -> None:
    """Control runs over the SSH channels: no UDP to or from the master is needed."""
    assert lab.src and lab.dst
    lab.wan(FAST)
    masters = [lab.src.master_addr, lab.dst.master_addr]
    rules = drop_between("master-udp", masters, "meta l4proto udp")
    src, dst = lab.host_dir("noudp-master-src"), lab.host_dir("noudp-master-dst")
    files = make_tree(src / "tree")
    with lab.firewall({"src": rules, "dst": rules}):
        out = copy(lab, str(src / "tree"), str(dst) + "/", timeout=60)
        assert out.ok, out.describe()
        assert out.result and out.result.files_copied == len(files)
        assert_same_tree(src / "tree", dst / "tree", files)
        # The rules are live: a datagram to the master is dropped and counted.
        before = lab.src.nft_counts()["master-udp-out"]
        lab.src.exec("python3", "-c", SEND_UDP, lab.src.master_addr, check=False)  # EPERM: dropped on output
        assert lab.src.nft_counts()["master-udp-out"] == before + 1
    assert_no_tables(lab)
    assert_no_rcpd_left(lab)


def test_destination_behind_a_jump_host_data_still_direct(lab: Lab) -> None:
    """The master reaches the destination's sshd only through the source's
    (ProxyJump); the file data still goes source -> destination over the WAN."""
    assert lab.src and lab.dst and lab.dst.sshd
    wan = lab.wan(FAST)
    src, dst = lab.host_dir("jump-src"), lab.host_dir("jump-dst")
    files = make_tree(src / "tree")
    copied = sum(files.values())
    with lab.firewall({"dst": drop_tcp_to_port("master-ssh", lab.dst.master_addr, SSH_PORT)}):
        with pytest.raises(OSError):  # no direct way from here to the destination's sshd
            socket.create_connection((lab.dst.addr, SSH_PORT), timeout=1.0).close()
        assert lab.dst.nft_counts()["master-ssh"] >= 1
        jumped = f"Accepted publickey for {lab.dst.sshd.user} from {lab.src.wan4}"
        logins_before = lab.dst.sshd.log().count(jumped)
        master_before = lab.master_link_bytes()
        out = copy(lab, str(src / "tree"), str(dst) + "/", dst_alias=lab.dst.via_alias, timeout=60)
        master_bytes = lab.master_link_bytes() - master_before
        assert out.ok, out.describe()
        assert out.result and out.result.bytes_copied == copied
        assert_same_tree(src / "tree", dst / "tree", files)
        assert lab.dst.sshd.log().count(jumped) == logins_before + 1, "the login must have come through the source"
    assert wan.stats()["a2b"]["bytes_out"] >= copied, "the file data must cross the source->destination link"
    assert master_bytes < 0.05 * copied, f"master links carried {master_bytes} bytes for {copied} copied"
    assert_no_tables(lab)
    assert_no_rcpd_left(lab)


# Either end of one TCP connection (argv: "listen" or "connect", address,
# port): once it is up, and told to go on stdin, it sends until its
# connection fails, and prints how.
TCP_END = """
import socket, sys, time
if sys.argv[1] == "listen":
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((sys.argv[2], int(sys.argv[3]))); l.listen(); l.settimeout(10)
    print("listening", flush=True)
    c, _ = l.accept()
else:
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=10)
print("up", flush=True)
sys.stdin.readline()
try:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        c.sendall(b"x" * 1000); time.sleep(0.05)
    print("still open", flush=True)
except OSError as e:
    print(type(e).__name__, flush=True)
"""


def test_reset_rule_kills_an_established_connection_at_both_ends(lab: Lab) -> None:
    """What the reset test below relies on: with `reset_tcp_port` on both
    hosts, each end of a live connection over the WAN link is reset at the
    next segment it sends."""
    assert lab.src and lab.dst
    lab.wan(FAST)

    def start(host: LabHost, role: str) -> subprocess.Popen[str]:
        assert lab.dst
        return subprocess.Popen(["ip", "netns", "exec", host.netns, "python3", "-c", TCP_END, role, lab.dst.wan4,
                                 str(DATA_PORT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    ends: list[subprocess.Popen[str]] = []
    try:
        # Each waits at most 10 s for the other: these reads cannot hang past that.
        ends.append(start(lab.dst, "listen"))
        assert ends[0].stdout and ends[0].stdout.readline().strip() == "listening"
        ends.append(start(lab.src, "connect"))
        assert all(e.stdout and e.stdout.readline().strip() == "up" for e in ends)
        reset = reset_tcp_port("reset", DATA_PORT)
        with lab.firewall({"src": reset, "dst": reset}):
            said = [e.communicate("go\n", timeout=20)[0].strip() for e in ends]
            hits = [lab.src.nft_counts()["reset-out"], lab.dst.nft_counts()["reset-out"]]
        assert all(s in ("ConnectionResetError", "BrokenPipeError") for s in said), said
        assert all(h > 0 for h in hits), hits
    finally:
        for proc in ends:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
    assert_no_tables(lab)


# -- transports (issue 11 items 2 and 3: TCP fallback, relay) ----------------


def wan_rules(lab: Lab, name: str, match: str = "") -> dict[str, list[Rule]]:
    """Drops what `match` says (everything if empty) between the two hosts'
    WAN addresses, on both hosts."""
    assert lab.src and lab.dst
    return {"src": drop_between(name, [lab.dst.wan4, lab.dst.wan6], match),
            "dst": drop_between(name, [lab.src.wan4, lab.src.wan6], match)}


def failure_text(out: Outcome) -> str:
    if out.error is not None:
        return str(out.error)
    return " ".join(m for _, m in out.result.errors) if out.result else ""


def test_udp_dropped_between_source_and_destination_auto_goes_over_tcp(lab: Lab) -> None:
    assert lab.src and lab.dst
    wan = lab.wan(FAST)
    src, dst = lab.host_dir("noudp-wan-src"), lab.host_dir("noudp-wan-dst")
    files = make_tree(src / "tree")
    copied = sum(files.values())
    said = LogLines()
    with lab.firewall(wan_rules(lab, "wan-udp", "meta l4proto udp")):
        out = copy(lab, str(src / "tree"), str(dst) + "/", transport="auto", fallback_timeout=1.0, progress=said,
                   timeout=60)
        assert out.ok, out.describe()
        assert out.result and out.result.transport == "tcp" and out.result.bytes_copied == copied
        assert_same_tree(src / "tree", dst / "tree", files)
        assert lab.dst.nft_counts()["wan-udp-out"] > 0, "the destination must have tried QUIC first"
    assert len(said.matching("fall", "tcp")) == 1, f"one line should say the copy fell back to TCP: {said.lines}"
    assert wan.stats()["a2b"]["bytes_out"] >= copied, "the data must still go source -> destination"
    assert_no_tables(lab)
    assert_no_rcpd_left(lab)


def test_udp_dropped_between_source_and_destination_quic_only_fails_clearly(lab: Lab) -> None:
    assert lab.src and lab.dst
    lab.wan(FAST)
    src, dst = lab.host_dir("noudp-quic-src"), lab.host_dir("noudp-quic-dst")
    make_file(src / "f.bin", 100_000)
    with lab.firewall(wan_rules(lab, "wan-udp", "meta l4proto udp")):
        out = copy(lab, str(src / "f.bin"), str(dst) + "/", transport="quic", timeout=90)
        assert lab.dst.nft_counts()["wan-udp-out"] > 0
    assert_clean_failure(out, dst / "f.bin", dst)
    said = failure_text(out)
    assert "quic" in said.lower() and lab.src.wan4 in said, out.describe()
    assert out.seconds < 60, f"the failure took too long: {out.describe()}"
    assert_no_tables(lab)
    assert_no_rcpd_left(lab)


def test_no_direct_path_fails_clearly_naming_relay(lab: Lab) -> None:
    """Neither QUIC nor TCP between the hosts: a ConnectionFailure that says
    where it tried and how to get through anyway, never a silent relay."""
    assert lab.src and lab.dst
    wan = lab.wan(FAST)
    src, dst = lab.host_dir("nopath-src"), lab.host_dir("nopath-dst")
    make_tree(src / "tree")
    master_before = lab.master_link_bytes()
    with lab.firewall(wan_rules(lab, "wan-all")):
        out = copy(lab, str(src / "tree"), str(dst) + "/", fallback_timeout=1.0, timeout=90)
        blocked = lab.dst.nft_counts()["wan-all-out"]
    assert isinstance(out.error, ConnectionFailure), out.describe()
    why = str(out.error)
    assert lab.src.wan4 in why and "--relay" in why, why  # what was tried, and the way out
    assert out.seconds < 60, f"the failure took too long: {out.describe()}"
    assert blocked > 0, "the destination must have tried to reach the source"
    assert wan.stats()["b2a"]["bytes_out"] < 100_000  # the rules held (IPv6 neighbour traffic aside)
    assert lab.master_link_bytes() - master_before < 3 * MiB, "nothing may have been relayed"
    assert not (dst / "tree").exists() and temp_files(dst) == []
    assert_no_tables(lab)
    assert_no_rcpd_left(lab)


def test_no_direct_path_relay_works(lab: Lab) -> None:
    """The same hosts with relay=True: the data goes through the master, with a warning."""
    assert lab.src and lab.dst
    wan = lab.wan(FAST)
    src, dst = lab.host_dir("relay-src"), lab.host_dir("relay-dst")
    files = make_tree(src / "tree")
    copied = sum(files.values())
    said = LogLines()
    with lab.firewall(wan_rules(lab, "wan-all")):
        master_before = lab.master_link_bytes()
        out = copy(lab, str(src / "tree"), str(dst) + "/", relay=True, progress=said, timeout=60)
        master_bytes = lab.master_link_bytes() - master_before
        assert out.ok, out.describe()
        assert out.result and out.result.transport == "relay" and out.result.bytes_copied == copied
        assert_same_tree(src / "tree", dst / "tree", files)
    # The data crossed the master (in on one link, out on the other), not the WAN link.
    assert master_bytes >= 2 * copied, f"master links carried {master_bytes} bytes for {copied} copied"
    assert wan.stats()["a2b"]["bytes_out"] < 0.05 * copied
    assert [line for line in said.matching("master") if "] warn" in line], \
        f"a relayed copy must warn that the data crosses the master: {said.lines}"
    assert_no_tables(lab)
    assert_no_rcpd_left(lab)


def test_tcp_data_connections_reset_mid_copy_fail_cleanly(lab: Lab) -> None:
    """`reject with tcp reset` on the data port, both hosts, once the data flows."""
    assert lab.src and lab.dst
    lab.wan(BASELINE)  # 10 Mbit/s: 6 MiB take ~5 s, still running when the resets start
    src, dst = lab.host_dir("tcpreset-src"), lab.host_dir("tcpreset-dst")
    make_file(src / "f.bin", 6 * MiB)
    t, box = start_copy(lab, str(src / "f.bin"), str(dst) + "/", transport="tcp", port_range=str(DATA_PORT))
    wait_wan_bytes(lab, 1 * MiB, timeout=30)
    reset = reset_tcp_port("data-reset", DATA_PORT)
    with lab.firewall({"src": reset, "dst": reset}):
        reset_at = time.monotonic()
        out = finish(t, box, timeout=60)
        took = time.monotonic() - reset_at
        hits = sum(lab.src.nft_counts().values()) + sum(lab.dst.nft_counts().values())
    assert hits > 0, "the data connections must have met the resets"
    assert_clean_failure(out, dst / "f.bin", dst)
    assert took < 30, f"the failure took {took:.1f} s after the resets: {out.describe()}"
    assert_no_tables(lab)
    assert_no_rcpd_left(lab)
