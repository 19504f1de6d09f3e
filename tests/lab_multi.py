"""A lab of N source and M destination hosts for sharded copies (tests/lab.py
has the two-host lab with the WAN emulator, whose machinery this reuses).

    master (this process, root namespace)
       | veth 198.18.N.4k/30, one per host (SSH and control only)
    rcp-src-<id>-0 .. rcp-dst-<id>-M   (sshd, rcpd)
       | wan0 198.19.N.(k+1)/24
    rcp-sw-<id>: one bridge joining every host's wan0 (the "data network")

rcp-wanem joins exactly two TUN devices, so it cannot stand between N hosts;
here each host's data link is a veth into a bridge, capped at `rate_mbit` in
both directions by tc's token bucket filter (tbf) on both ends of the veth
(host egress, and the bridge port's egress = the host's ingress), as a NIC
would be. Any source reaches any destination (a shard may rerun on another
pair); nothing but the master's veths reaches the master.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab import PREFIX, STATE_DIR, WAN_IF, Lab, LabHost, _ip, _run
from sshd import start_sshd, stop_sshd

SWITCH_BR = "br0"


@dataclass
class HostBytes:
    """Bytes a host's data link carried (both ways) and its master link."""

    data: int
    master: int


class MultiLab(Lab):
    """`sources` source hosts and `destinations` destination hosts; each data link capped at `rate_mbit` (0: not)."""

    def __init__(self, sources: int = 2, destinations: int = 2, rate_mbit: float = 100.0,
                 data_mib: int = 0) -> None:
        super().__init__()
        # data_mib > 0: the hosts' shared storage (host_dir) is a tmpfs of that
        # size: a loaded machine's disk would time the disk, not the copy, and
        # the lab's removal is an unmount.
        self.data_mib = data_mib
        self.data = self.dir / "data"
        self.counts = (sources, destinations)
        self.rate_mbit = rate_mbit
        self.sources: list[LabHost] = []
        self.destinations: list[LabHost] = []
        self.switch = f"{PREFIX}-sw-{self.id}"

    @property
    def hosts(self) -> list[LabHost]:
        return self.sources + self.destinations

    def _build_network(self) -> None:
        n = self.index
        _ip("netns", "add", self.switch)
        self._state["netns"].append(self.switch)
        self._save()
        _ip("link", "add", SWITCH_BR, "type", "bridge", netns=self.switch)
        _ip("link", "set", SWITCH_BR, "up", netns=self.switch)
        k = 0
        for role, count, out in (("src", self.counts[0], self.sources), ("dst", self.counts[1], self.destinations)):
            for i in range(count):
                h = LabHost(role=role, netns=f"{PREFIX}-{role}-{self.id}-{i}", root_if=f"{PREFIX}{role}{self.id}{i}",
                            master_addr=f"198.18.{n}.{4 * k + 1}", addr=f"198.18.{n}.{4 * k + 2}",
                            wan4=f"198.19.{n}.{k + 1}", wan6="", alias=f"lab{role}{i}", via_alias="")
                self._add_host(h, k)
                out.append(h)
                k += 1
        self.src, self.dst = self.sources[0], self.destinations[0]
        _ip("route", "add", "unreachable", f"198.19.{n}.0/24")
        self._state["routes"].append([f"198.19.{n}.0/24"])
        self._save()

    def _add_host(self, h: LabHost, k: int) -> None:
        self._add_namespace(h)
        port = f"p{k}"
        _ip("link", "add", WAN_IF, "netns", h.netns, "type", "veth", "peer", "name", port, "netns", self.switch)
        _ip("addr", "add", f"{h.wan4}/24", "dev", WAN_IF, netns=h.netns)
        _ip("link", "set", WAN_IF, "up", netns=h.netns)
        _ip("link", "set", port, "master", SWITCH_BR, "up", netns=self.switch)
        if self.rate_mbit > 0:
            for netns, dev in ((h.netns, WAN_IF), (self.switch, port)):
                # burst: room for a GSO super-packet, else tbf drops it whole.
                _run(["ip", "netns", "exec", netns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                      f"{self.rate_mbit:g}mbit", "burst", "256kb", "latency", "50ms"])

    def _build_hosts(self) -> None:
        self.data.mkdir()
        if self.data_mib > 0:
            # Mounted before the sshds start, so their mount namespaces have it too.
            _run(["mount", "-t", "tmpfs", "-o", f"size={self.data_mib}m,mode=0755", "rcp-lab-data", str(self.data)])
            self._state["mounts"].append(str(self.data))
            self._save()
        configs = []
        for h in self.hosts:
            d = self.dir / f"sshd-{h.alias}"
            d.mkdir()
            h.sshd = start_sshd(d, h.addr, netns=h.netns, alias=h.alias)
            configs.append(h.sshd.config.read_text())
        self.ssh_config.write_text("\n".join(configs))

    def close(self) -> None:
        if self._closed:
            return
        for h in self.hosts:
            if h.sshd:
                stop_sshd(h.sshd)
                h.sshd = None
        self.sources, self.destinations = [], []
        self.src = self.dst = None
        super().close()

    def host_dir(self, name: str) -> Path:
        """A fresh directory on the hosts' shared storage."""
        d = self.data / name
        d.mkdir(parents=True)
        return d

    def source_hosts(self) -> list[str]:
        """--source-hosts for the sharded copy: each alias with its data-link address."""
        return [f"{h.alias}={h.wan4}" for h in self.sources]

    def destination_hosts(self) -> list[str]:
        return [h.alias for h in self.destinations]

    def host_bytes(self) -> dict[str, HostBytes]:
        """Each host's bytes so far (rx + tx) on its data link and its master link."""
        out = {}
        for h in self.hosts:
            data = json.loads(h.exec("ip", "-s", "-j", "link", "show", WAN_IF).stdout)[0]["stats64"]
            master = json.loads(_ip("-s", "-j", "link", "show", h.root_if).stdout)[0]["stats64"]
            out[h.alias] = HostBytes(data["rx"]["bytes"] + data["tx"]["bytes"],
                                     master["rx"]["bytes"] + master["tx"]["bytes"])
        return out


__all__ = ["MultiLab", "HostBytes", "STATE_DIR"]
