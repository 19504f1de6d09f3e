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
from pathlib import Path

import pytest

from lab import SSH_PORT, Lab, LabHost, WanConditions, drop_between, drop_tcp_to_port, reset_tcp_port
from test_lab import MiB, assert_no_rcpd_left, copy, digest, lab, make_file, temp_files

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
