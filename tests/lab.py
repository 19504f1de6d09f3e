"""A multi-host test lab in network namespaces, for the 3-node tests and bench/.

    master (this process, root namespace)
       | veth 198.18.N.0/30             | veth 198.18.N.4/30
    rcp-src-<id> (sshd, rcpd)         rcp-dst-<id> (sshd, rcpd)
       wan0 198.19.N.1, fd52:6370:0:N::1    wan0 198.19.N.2, fd52:6370:0:N::2
            \\__ TUN ── rcp-wanem (root namespace, user space) ── TUN __/

Each host namespace has only its veth to the master and its TUN end of the
WAN link, and no default route, so source and destination reach each other
only through the emulator (the root namespace has nothing to forward for them
either way), and the master's links carry only SSH and control traffic.
198.18.0.0/15 is the range set aside for benchmarking (RFC 2544) and the IPv6
prefix is a unique-local one; the root namespace gets "unreachable" routes for
the WAN subnets so nothing addressed there can leave this machine.

Each sshd also listens on its host's WAN address, so either host can be the
other's jump host: `dst.via_alias` reaches the destination's sshd through the
source's (ProxyJump), over the WAN link.

Firewall rules (nftables) go into a host's own namespace, in one table
`inet rcp_lab` that `LabHost.nft` replaces and `LabHost.nft_clear` removes;
`Lab.firewall` does both around a block, and `Lab.close` clears every host.

Everything is created as root and removed by `Lab.close()` (context manager,
and atexit as a backstop), also after failures. A state file per lab under
/run/rcp-lab records what was made and by which process; a later lab removes
leftovers of crashed runs whose owner process is gone (and prefix-named
namespaces without a state file only when no process lives in them).

    with Lab() as lab:
        lab.wan(WanConditions(delay_ms=15, rate_mbit=10))
        result = lab.copy("/path/on/src", "/path/on/dst")
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import rcp
from rcp.daemon import rcpd_path
from sshd import Sshd, public_key, start_sshd, stop_sshd

PREFIX = "rcp"
STATE_DIR = Path("/run/rcp-lab")
HOST_IF = "veth0"  # each host's end of its master link
WAN_IF = "wan0"  # each host's TUN end of the WAN link
REPO = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 30.0
WANEM_TIMEOUT = 5.0
SSH_PORT = 2222  # every lab sshd's port (start_sshd in a namespace)
NFT_TABLE = "rcp_lab"  # family inet: one rule set for IPv4 and IPv6


def wanem_path() -> Path:
    """The rcp-wanem built by `make cpp` (override with RCP_WANEM)."""
    return Path(os.environ.get("RCP_WANEM", REPO / "build" / "cpp" / "cpp" / "wanem" / "rcp-wanem"))


def _run(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", *(["-n", netns] if netns else []), *args], check=check)


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (tells a live owner from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    return start is not None and _start_time(pid) == start


def netns_pids(netns: str) -> list[int]:
    proc = _ip("netns", "pids", netns, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _family(addr: str) -> str:
    return "ip6" if ":" in addr else "ip"


@dataclass(frozen=True)
class Rule:
    """One nftables rule in a host's `inet rcp_lab` table. `match` is nft
    syntax (e.g. "ip saddr 198.18.0.1 meta l4proto udp"); every rule counts
    what it matched, under `name`, so a test can tell the rule was hit."""

    name: str
    chain: str  # "input" or "output"
    match: str
    verdict: str = "drop"

    def text(self) -> str:
        if self.chain not in ("input", "output"):
            raise ValueError(f"chain {self.chain!r}: expected input or output")
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"rule name {self.name!r}: letters, digits, - and _ only")
        return f"{self.match} counter {self.verdict} comment \"{self.name}\""


def drop_between(name: str, peers: Sequence[str], match: str = "") -> list[Rule]:
    """Drops packets (of `match`, e.g. "meta l4proto udp"; all if empty) to
    and from each of `peers`: the rules go on one host and cover both ways."""
    rules = []
    for addr in peers:
        fam = _family(addr)
        rules.append(Rule(f"{name}-in", "input", f"{fam} saddr {addr} {match}".strip()))
        rules.append(Rule(f"{name}-out", "output", f"{fam} daddr {addr} {match}".strip()))
    return rules


def drop_tcp_to_port(name: str, peer: str, port: int) -> list[Rule]:
    """Drops TCP from `peer` to this host's `port` (e.g. the master to sshd)."""
    return [Rule(name, "input", f"{_family(peer)} saddr {peer} tcp dport {port}")]


def reset_tcp_port(name: str, port: int) -> list[Rule]:
    """Answers every TCP segment to or from `port` with a reset, both ways:
    established connections die at their next segment and new ones are refused."""
    verdict = "reject with tcp reset"
    # Resets themselves pass (a reset's reset is never sent, and these rules
    # would drop the one they send, as it carries the same ports).
    not_rst = "tcp flags & rst == 0"
    return [Rule(f"{name}-{short}", chain, f"tcp {end} {port} {not_rst}", verdict)
            for chain, short in (("input", "in"), ("output", "out")) for end in ("dport", "sport")]


@dataclass
class LabHost:
    role: str  # "src" or "dst"
    netns: str
    root_if: str  # the master's end of this host's veth (root namespace)
    master_addr: str  # the master's address on that link
    addr: str  # this host's address on that link (its sshd listens here)
    wan4: str  # this host's addresses on the WAN link
    wan6: str
    alias: str  # Host alias in the lab's ssh config
    via_alias: str  # the same sshd reached through the other host's (ProxyJump), over the WAN link
    sshd: Sshd | None = None

    def exec(self, *command: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """Runs a command inside this host's namespace."""
        proc = subprocess.run(["ip", "netns", "exec", self.netns, *command], capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.netns}: {' '.join(command)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def processes(self, comm: str) -> list[int]:
        """Pids in this namespace whose command name is `comm` (e.g. rcpd)."""
        return [p for p in netns_pids(self.netns) if _comm(p) == comm]

    def nft(self, rules: Sequence[Rule]) -> None:
        """Replaces this host's rule table with `rules` (atomically: one nft
        transaction, so no packet meets half a rule set)."""
        script = [f"table inet {NFT_TABLE} {{}}", f"delete table inet {NFT_TABLE}", f"table inet {NFT_TABLE} {{"]
        for chain in ("input", "output"):
            script += [f"  chain {chain} {{", f"    type filter hook {chain} priority 0; policy accept;"]
            script += [f"    {r.text()}" for r in rules if r.chain == chain]
            script.append("  }")
        script.append("}")
        proc = subprocess.run(["ip", "netns", "exec", self.netns, "nft", "-f", "-"], input="\n".join(script) + "\n",
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.netns}: nft: exit {proc.returncode}: {proc.stderr.strip()}")

    def nft_clear(self) -> None:
        """Removes this host's rule table (nothing to do when there is none)."""
        if self.exec("nft", "list", "table", "inet", NFT_TABLE, check=False).returncode == 0:
            self.exec("nft", "delete", "table", "inet", NFT_TABLE)

    def nft_tables(self) -> list[str]:
        """Every nftables table in this host's namespace, as "family name"."""
        out = self.exec("nft", "list", "tables").stdout
        return [line.removeprefix("table ").strip() for line in out.splitlines() if line.startswith("table ")]

    def nft_counts(self) -> dict[str, int]:
        """Packets each named rule matched so far (rules sharing a name add up)."""
        out = json.loads(self.exec("nft", "-j", "list", "table", "inet", NFT_TABLE).stdout)
        counts: dict[str, int] = {}
        for item in out.get("nftables", []):
            rule = item.get("rule")
            if not rule or "comment" not in rule:
                continue
            packets = sum(e["counter"]["packets"] for e in rule.get("expr", []) if "counter" in e)
            counts[rule["comment"]] = counts.get(rule["comment"], 0) + packets
        return counts

    def ssh_sessions(self) -> list[int]:
        """sshd processes serving connections (everything but the listener)."""
        listener = self.sshd.proc.pid if self.sshd else -1
        return [p for p in self.processes("sshd") if p != listener]


@dataclass
class WanConditions:
    """Settings of the emulated source<->destination link, per direction alike
    (extra_flags for anything direction-specific, as rcp-wanem takes them)."""

    delay_ms: float = 0.0  # one way
    jitter_ms: float = 0.0
    loss: float = 0.0
    loss_burst: int = 0  # longest run of lost packets (0: no cap)
    loss_handshake_only: bool = False  # lose only QUIC long-header packets
    rate_mbit: float = 0.0  # 0: unlimited
    queue_bytes: int = 1 << 20
    corrupt: float = 0.0
    corrupt_first: int = 50
    seed: int = 1
    extra_flags: list[str] = field(default_factory=list)

    def flags(self) -> list[str]:
        out = ["--seed", str(self.seed), "--delay", f"{self.delay_ms:g}", "--jitter", f"{self.jitter_ms:g}",
               "--loss", f"{self.loss:g}", "--loss-burst", str(self.loss_burst),
               "--rate", f"{self.rate_mbit:g}", "--queue", str(self.queue_bytes),
               "--corrupt", f"{self.corrupt:g}", "--corrupt-first", str(self.corrupt_first)]
        if self.loss_handshake_only:
            out.append("--loss-handshake-only")
        return out + list(self.extra_flags)


class WanProcess:
    """A running rcp-wanem between the two hosts' TUN devices (a = source)."""

    def __init__(self, src: LabHost, dst: LabHost, conditions: WanConditions) -> None:
        binary = wanem_path()
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `make cpp` first")
        self.conditions = conditions
        self.proc = subprocess.Popen(
            [str(binary), "--a", f"{src.netns}:{WAN_IF}", "--b", f"{dst.netns}:{WAN_IF}", *conditions.flags()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._read_line(WANEM_TIMEOUT)
        if line != "ready":
            self.stop()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"rcp-wanem did not start: {line!r} {err.strip()}")

    def _read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"rcp-wanem did not answer within {timeout:g} s")
            chunk = os.read(fd, 1)  # byte by byte: never read past the answer line
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace").strip()

    def command(self, line: str) -> str:
        """Sends one control command (see cpp/wanem/wan_emulator.h); returns the answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._read_line(WANEM_TIMEOUT)
        if answer.startswith("error"):
            raise RuntimeError(f"rcp-wanem: {line}: {answer}")
        return answer

    def stats(self) -> dict:
        return json.loads(self.command("stats"))

    def blackhole(self, seconds: float, direction: str = "both") -> None:
        self.command(f"blackhole {direction} {seconds * 1000:g}")

    def set(self, *flags: str) -> None:
        self.command("set " + " ".join(flags))

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # it exits when its control input closes
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


class Lab:
    """Two hosts in network namespaces, their sshds, and the WAN emulator."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(3)
        self.dir = Path(tempfile.mkdtemp(prefix=f"rcp-lab-{self.id}-"))
        self.index = -1
        self.src: LabHost | None = None
        self.dst: LabHost | None = None
        self.wan_process: WanProcess | None = None
        self.ssh_config = self.dir / "ssh_config"
        self.small_disk = self.dir / "small"  # a 4 MiB tmpfs, for full-disk tests
        self._state: dict = {"owner": os.getpid(), "owner_start": _start_time(os.getpid()), "netns": [],
                             "root_ifs": [], "routes": [], "mounts": [], "dir": str(self.dir)}
        self._closed = False

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> Lab:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self) -> None:
        if os.geteuid() != 0:
            raise PermissionError("the test lab needs root (network namespaces, veth, TUN)")
        atexit.register(self.close)
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        try:
            with open(STATE_DIR / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # parallel labs pick distinct subnets
                remove_stale_labs()
                self.index = self._free_index()
                self._save()
                self._build_network()
            self._build_hosts()
        except BaseException:
            self.close()
            raise

    def _free_index(self) -> int:
        used = set()
        for f in STATE_DIR.glob("*.json"):
            try:
                used.add(json.loads(f.read_text())["index"])
            except (OSError, ValueError, KeyError):
                pass
        addrs = _ip("-o", "addr", "show").stdout
        free = [n for n in range(256) if n not in used and f"198.18.{n}." not in addrs]
        if not free:
            raise RuntimeError("no free lab subnet in 198.18.0.0/16")
        return secrets.choice(free)

    def _save(self) -> None:
        self._state["index"] = self.index
        (STATE_DIR / f"{self.id}.json").write_text(json.dumps(self._state))

    def _add_namespace(self, h: LabHost) -> None:
        """h's namespace and its veth to the master (recorded as made, for cleanup)."""
        _ip("netns", "add", h.netns)
        self._state["netns"].append(h.netns)
        self._save()
        _ip("link", "add", h.root_if, "type", "veth", "peer", "name", HOST_IF, "netns", h.netns)
        self._state["root_ifs"].append(h.root_if)
        self._save()
        _ip("addr", "add", f"{h.master_addr}/30", "dev", h.root_if)
        _ip("link", "set", h.root_if, "up")
        _ip("link", "set", "lo", "up", netns=h.netns)
        _ip("addr", "add", f"{h.addr}/30", "dev", HOST_IF, netns=h.netns)
        _ip("link", "set", HOST_IF, "up", netns=h.netns)

    def _build_network(self) -> None:
        n = self.index
        hosts = []
        for k, role in enumerate(("src", "dst")):
            netns = f"{PREFIX}-{role}-{self.id}"
            base = 4 * k
            hosts.append(LabHost(role=role, netns=netns, root_if=f"{PREFIX}{role}{self.id}",
                                 master_addr=f"198.18.{n}.{base + 1}", addr=f"198.18.{n}.{base + 2}",
                                 wan4=f"198.19.{n}.{k + 1}", wan6=f"fd52:6370:0:{n:x}::{k + 1}",
                                 alias=f"lab{role}", via_alias=f"lab{role}-via-{'dst' if k == 0 else 'src'}"))
        self.src, self.dst = hosts
        for h in hosts:
            self._add_namespace(h)
            # The WAN end: a persistent TUN that rcp-wanem attaches to.
            _ip("tuntap", "add", "dev", WAN_IF, "mode", "tun", netns=h.netns)
            _ip("link", "set", WAN_IF, "mtu", "1500", "up", netns=h.netns)
            _ip("addr", "add", f"{h.wan4}/24", "dev", WAN_IF, netns=h.netns)
            _ip("-6", "addr", "add", f"{h.wan6}/64", "dev", WAN_IF, "nodad", netns=h.netns)
        # Nothing for the WAN subnets may leave through the root namespace's default route.
        for route in ([f"198.19.{n}.0/24"], ["-6", f"fd52:6370:0:{n:x}::/64"]):
            _ip(*route[:-1], "route", "add", "unreachable", route[-1])
            self._state["routes"].append(route)
            self._save()

    def _build_hosts(self) -> None:
        assert self.src and self.dst
        self.small_disk.mkdir()
        # Mounted before the sshds start, so their mount namespaces (ip netns exec) have it too.
        _run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "rcp-lab", str(self.small_disk)])
        self._state["mounts"].append(str(self.small_disk))
        self._save()
        configs = []
        for h in (self.src, self.dst):
            d = self.dir / f"sshd-{h.role}"
            d.mkdir()
            # Also on the WAN address, where the other host (as a jump host) reaches it.
            h.sshd = start_sshd(d, h.addr, netns=h.netns, alias=h.alias, extra_config=[f"ListenAddress {h.wan4}"])
            with open(h.sshd.known_hosts, "a") as known:
                known.write(f"[{h.wan4}]:{h.sshd.port} {public_key(h.sshd.host_key)}\n")
            configs.append(h.sshd.config.read_text())
        for h, jump in ((self.src, self.dst), (self.dst, self.src)):
            assert h.sshd
            configs.append(h.sshd.config.read_text().replace(f"Host {h.alias}\n", f"Host {h.via_alias}\n")
                           .replace(f"HostName {h.addr}\n", f"HostName {h.wan4}\n") + f"  ProxyJump {jump.alias}\n")
        self.ssh_config.write_text("\n".join(configs))
        self.wan(WanConditions())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.wan_process:
            self.wan_process.stop()
            self.wan_process = None
        for h in (self.src, self.dst):
            if h and Path(f"/run/netns/{h.netns}").exists():
                try:
                    h.nft_clear()  # the namespace takes its tables along anyway: this is for the record
                except (RuntimeError, subprocess.TimeoutExpired):
                    pass
            if h and h.sshd:
                stop_sshd(h.sshd)
        _destroy(self._state)
        (STATE_DIR / f"{self.id}.json").unlink(missing_ok=True)
        atexit.unregister(self.close)

    # -- using it --------------------------------------------------------

    def wan(self, conditions: WanConditions) -> WanProcess:
        """(Re)starts the WAN emulator with these conditions."""
        assert self.src and self.dst
        if self.wan_process:
            self.wan_process.stop()
            self.wan_process = None
        self.wan_process = WanProcess(self.src, self.dst, conditions)
        self._state["wanem"] = [self.wan_process.proc.pid, _start_time(self.wan_process.proc.pid)]
        self._save()
        return self.wan_process

    @contextmanager
    def firewall(self, rules: dict[str, Sequence[Rule]]) -> Iterator[None]:
        """nftables rules on hosts ("src", "dst") for the duration of a block,
        removed afterwards however the block ends."""
        hosts = {"src": self.src, "dst": self.dst}
        try:
            for role, host_rules in rules.items():
                host = hosts[role]
                assert host
                host.nft(host_rules)
            yield
        finally:
            for role in rules:
                host = hosts[role]
                assert host
                host.nft_clear()

    def copy(self, src_path: str | list[str], dst_path: str, *, ipv6: bool = False, dst_alias: str | None = None,
             **options: object) -> rcp.CopyResult:
        """rcp from the source host to the destination host, driven from here;
        the destination reaches the source over the WAN link. `dst_alias`
        names the destination another way (e.g. `dst.via_alias`)."""
        assert self.src and self.dst
        paths = [src_path] if isinstance(src_path, str) else src_path
        options.setdefault("source_addresses", [self.src.wan6 if ipv6 else self.src.wan4])
        return rcp.copy([f"{self.src.alias}:{p}" for p in paths], f"{dst_alias or self.dst.alias}:{dst_path}",
                        ssh_config=str(self.ssh_config), rcpd_path=str(rcpd_path()), **options)

    def master_link_bytes(self) -> int:
        """Bytes both ways on the master's two veth links so far."""
        total = 0
        for h in (self.src, self.dst):
            assert h
            stats = Path(f"/sys/class/net/{h.root_if}/statistics")
            total += int((stats / "rx_bytes").read_text()) + int((stats / "tx_bytes").read_text())
        return total

    def host_dir(self, name: str) -> Path:
        """A fresh directory (the hosts share this machine's file system)."""
        d = self.dir / name
        d.mkdir(parents=True)
        return d


def _destroy(state: dict) -> None:
    """Removes what a state record lists; each step tolerates what is already gone."""
    wanem = state.get("wanem")
    if wanem and _alive(wanem[0], wanem[1]):
        _kill_all([wanem[0]])
    for netns in state.get("netns", []):
        # sshd, its sessions, rcpds: nothing may survive the namespace.
        for _ in range(3):
            pids = netns_pids(netns)
            if not pids:
                break
            _kill_all(pids)
            time.sleep(0.1)
    for mount in state.get("mounts", []):
        _run(["umount", "-l", mount], check=False)
    for netns in state.get("netns", []):
        _ip("netns", "del", netns, check=False)
    for root_if in state.get("root_ifs", []):
        if Path(f"/sys/class/net/{root_if}").exists():
            _ip("link", "del", root_if, check=False)
    for route in state.get("routes", []):
        _ip(*route[:-1], "route", "del", "unreachable", route[-1], check=False)
    if state.get("dir"):
        shutil.rmtree(state["dir"], ignore_errors=True)


def remove_stale_labs() -> list[str]:
    """Removes leftovers of labs whose owner process is gone; returns their ids."""
    removed = []
    known: set[str] = set()
    for f in STATE_DIR.glob("*.json"):
        try:
            state = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        known.update(state.get("netns", []))
        if _alive(int(state.get("owner", 0)), state.get("owner_start")):
            continue
        _destroy(state)
        f.unlink(missing_ok=True)
        removed.append(f.stem)
    # Prefix-named namespaces no state file claims: only when nothing runs in them.
    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith((f"{PREFIX}-src-", f"{PREFIX}-dst-")) and name not in known and not netns_pids(name):
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed
