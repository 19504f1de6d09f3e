"""Sharded copies (rcp.scaleout, rcp.shard) over a real sshd on 127.0.0.1:
several aliases of one sshd stand for several hosts (the lab test,
tests/test_lab_scaleout.py, has really separate hosts)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rcp
import rcp.daemon
import rcp.orchestration
from rcp.errors import UsageError
from rcp.scaleout import make_pairs, parse_hosts
from rcp.shard import MAX_RULES, Shard, TreeEntry, cut, escape
from sshd import Sshd
from treeutil import assert_same_tree, leftovers

RCPD = str(rcp.daemon.rcpd_path())
MiB = 1 << 20


# -- cutting (pure) ---------------------------------------------------------


def _tree(files: dict[str, int]) -> list[TreeEntry]:
    dirs = {"/".join(p.split("/")[:k]) for p in files for k in range(1, p.count("/") + 1)}
    return [TreeEntry(d, 0) for d in sorted(dirs)] + [TreeEntry(p, s) for p, s in files.items()]


def _covered(shard: Shard, path: str) -> bool:
    return any(path == u or path.startswith(u + "/") for u in shard.units)


def test_cut_balances_bytes_and_files_and_keeps_each_file_in_one_shard() -> None:
    files = {f"d{d}/s{s}/f{f}": 1000 for d in range(4) for s in range(10) for f in range(50)}
    files.update({"big/one": 300 * MiB, "big/two": 300 * MiB})
    entries = _tree(files)
    shards = cut(entries, 4)
    assert len(shards) == 4
    for path in files:  # every file in exactly one shard
        assert sum(_covered(s, path) for s in shards) == 1, path
    share_bytes = sum(files.values()) / 4
    share_files = len(entries) / 4
    for s in shards:
        # Within one unit of an even share: the two big files cannot be split.
        assert s.bytes <= share_bytes + 300 * MiB
        assert len(s.rules()) <= MAX_RULES
    # The two big files land in different shards.
    assert [s for s in shards if _covered(s, "big/one")] != [s for s in shards if _covered(s, "big/two")]
    small = [s for s in shards if not _covered(s, "big/one") and not _covered(s, "big/two")]
    assert small and all(s.files >= share_files / 2 for s in small)


def test_cut_one_shard_and_empty_tree() -> None:
    assert cut([], 3) == []
    (only,) = cut(_tree({"a/b": 1, "c": 2}), 1)
    assert set(only.units) == {"a", "c"} and only.bytes == 3
    with pytest.raises(ValueError):
        cut(_tree({"a": 1}), 0)


def test_cut_stays_within_the_rule_budget() -> None:
    files = {f"d{d}/f{f}": 10 for d in range(2000) for f in range(2)}
    shards = cut(_tree(files), 2, rule_budget=100)
    assert len(shards) == 2
    for s in shards:  # what does not fit is left to the final pass
        assert len(s.rules()) <= 101 and len(s.units) == 100


def test_rules_escape_wildcards_and_name_parents() -> None:
    s = Shard(0, ("a/b*[x]", "c"), 0, 0)
    assert escape("a?b\\") == "a\\?b\\\\"
    assert s.rules() == ["+ /a/", "+ /a/b\\*\\[x\\]/***", "+ /c/***", "- *"]


def test_hosts_and_pairs() -> None:
    hosts = parse_hosts("u@a=10.0.0.1,b", "x")
    assert [(h.user, h.host, h.address) for h in hosts] == [("u", "a", "10.0.0.1"), (None, "b", None)]
    pairs = make_pairs(hosts, parse_hosts(["c", "d", "e"], "y"))
    assert [p.label for p in pairs] == ["u@a->c", "b->d", "u@a->e"]
    for bad in ("", "a:/x", "a/b"):
        with pytest.raises(UsageError):
            parse_hosts([bad], "x")


# -- copies over SSH -------------------------------------------------------


def aliases(sshd: Sshd, names: list[str], tmp_path: Path, broken: str | None = None) -> Path:
    """An ssh config where each of `names` is the fixture's sshd (and `broken`
    a host whose port refuses connections)."""
    text = sshd.config.read_text()
    parts = [text.replace(f"Host {sshd.alias}\n", f"Host {n}\n") for n in names]
    if broken:
        parts.append(text.replace(f"Host {sshd.alias}\n", f"Host {broken}\n").replace(f"Port {sshd.port}", "Port 1"))
    config = tmp_path / "ssh_config"
    config.write_text("\n".join(parts))
    return config


def make_shardable(root: Path) -> Path:
    for d in range(6):
        for f in range(40):
            p = root / f"dir{d}" / f"sub{f % 4}" / f"file{f}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(100 + f))
    (root / "big").write_bytes(os.urandom(3 * MiB))
    (root / "top.txt").write_text("top\n")
    (root / "empty").mkdir()
    os.symlink("top.txt", root / "link")
    os.utime(root / "dir1", (1_000_000, 1_000_000))
    return root


def test_sharded_copy_two_pairs(sshd: Sshd, tmp_path: Path) -> None:
    src = make_shardable(tmp_path / "src")
    config = aliases(sshd, ["a1", "a2", "b1", "b2"], tmp_path)
    (tmp_path / "dst").mkdir()
    out = rcp.copy_sharded(str(src), str(tmp_path / "dst"), ["a1", "a2"], ["b1", "b2"], ssh_config=str(config),
                           rcpd_path=RCPD)
    assert out.ok, out.result.errors
    assert_same_tree(src, tmp_path / "dst" / "src")  # directory times too: set once, by the final pass
    assert [s.pair for s in out.shards] == ["a1->b1", "a2->b2"]
    assert all(s.attempts == 1 and s.result.files_copied > 0 for s in out.shards)
    assert out.result.bytes_copied >= 3 * MiB and out.final is not None and out.final.files_copied == 0
    assert out.entries > 240
    assert not leftovers(tmp_path / "dst") and not list(src.parent.glob(".rcp-list-*"))
    again = rcp.copy(str(src), str(tmp_path / "dst"), source_hosts=["a1", "a2"], destination_hosts=["b1", "b2"],
                     ssh_config=str(config), rcpd_path=RCPD)
    assert again.ok and again.files_copied == 0 and again.unchanged > 240


def test_sharded_delete_runs_once_after_the_shards(sshd: Sshd, tmp_path: Path) -> None:
    src = make_shardable(tmp_path / "src")
    dst = tmp_path / "dst" / "src"
    (dst / "dir3").mkdir(parents=True)
    (dst / "dir3" / "stale").write_text("x")
    (dst / "gone").mkdir()
    config = aliases(sshd, ["a1", "b1", "b2"], tmp_path)
    result = rcp.copy(str(src), str(dst.parent), source_hosts=["a1"], destination_hosts=["b1", "b2"], shards=3,
                      delete=True, ssh_config=str(config), rcpd_path=RCPD)
    assert result.ok, result.errors
    assert result.deleted == 2
    assert_same_tree(src, dst)


def test_failed_shard_reruns_on_another_pair(sshd: Sshd, tmp_path: Path) -> None:
    src = make_shardable(tmp_path / "src")
    config = aliases(sshd, ["a1", "b1"], tmp_path, broken="b2")
    (tmp_path / "dst").mkdir()
    out = rcp.copy_sharded(str(src), str(tmp_path / "dst"), ["a1"], ["b1", "b2"], ssh_config=str(config),
                           rcpd_path=RCPD, connect_timeout=5)
    assert out.ok, out.result.errors
    rerun = [s for s in out.shards if s.attempts == 2]
    assert len(rerun) == 1 and rerun[0].pair == "a1->b1"
    assert_same_tree(src, tmp_path / "dst" / "src")


def test_a_listing_cut_short_is_listed_again_deeper(sshd: Sshd, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run's plan keeps at most MAX_PLAN_ENTRIES: a listing run cut
    short is split, and a subtree too big for one run listed one level down,
    so every entry still lands in a shard (here the cap is 20 instead of 100,000)."""
    monkeypatch.setattr(rcp.orchestration, "MAX_PLAN_ENTRIES", 20)
    src = tmp_path / "src"
    for d in range(3):  # "deep": 40 entries, each of its subdirectories 13
        (src / "deep" / f"s{d}").mkdir(parents=True)
        for f in range(12):
            (src / "deep" / f"s{d}" / f"f{f}").write_bytes(os.urandom(50 + f))
    for name in ("one", "two"):
        (src / name).write_text(name)
    (tmp_path / "dst").mkdir()
    config = aliases(sshd, ["a1", "b1", "b2"], tmp_path)
    out = rcp.copy_sharded(str(src), str(tmp_path / "dst"), ["a1"], ["b1", "b2"], ssh_config=str(config),
                           rcpd_path=RCPD)
    assert out.ok, out.result.errors
    assert out.entries == sum(1 for _ in src.rglob("*")) == 42
    assert sum(s.result.files_copied for s in out.shards) == out.result.files_copied == 38  # none left to the end
    assert_same_tree(src, tmp_path / "dst" / "src")


def test_cut_keeps_a_hard_link_group_in_one_shard() -> None:
    """Names of one inode in several units: the units join one group, which
    lands whole in one shard; past the rule budget a group stays out whole."""
    files = {f"d{d}/s{s}/f{f}": 1000 for d in range(6) for s in range(4) for f in range(10)}
    entries = [e if e.path not in ("d0/s1/f3", "d3/s2/f0", "d5/s0/f9", "d3/s2/f1") else
               TreeEntry(e.path, e.size, (1, 42) if e.path != "d3/s2/f1" else (1, 43)) for e in _tree(files)]
    entries.append(TreeEntry("d3/s3/f0", 0, (1, 43)))  # a second group, inside one unit's neighbour
    shards = cut(entries, 3)
    assert len(shards) == 3
    holders = {p: [s.index for s in shards if _covered(s, p)] for p in ("d0/s1/f3", "d3/s2/f0", "d5/s0/f9")}
    assert all(len(h) == 1 for h in holders.values()) and len({h[0] for h in holders.values()}) == 1, holders
    assert [s.index for s in shards if _covered(s, "d3/s2/f1")] == [s.index for s in shards if _covered(s, "d3/s3/f0")]
    # The same tree without inode keys spreads those names over shards (what the keys prevent).
    plain = cut(_tree(files), 3)
    assert len({s.index for p in holders for s in plain if _covered(s, p)}) > 1
    # A rule budget too small for the group's units (here d0, d3, d5: 4 rules):
    # it stays out whole, for the final pass to copy with -H; the rest is cut.
    tight = cut(entries, 3, rule_budget=2)
    assert tight and not any(_covered(s, p) for s in tight for p in holders)


def _link_structure(root: Path) -> list[frozenset[str]]:
    """The names of each file with several names under `root`, grouped by inode."""
    groups: dict[int, set[str]] = {}
    for p in root.rglob("*"):
        st = p.lstat()
        if p.is_file() and not p.is_symlink() and st.st_nlink > 1:
            groups.setdefault(st.st_ino, set()).add(str(p.relative_to(root)))
    return sorted((frozenset(g) for g in groups.values() if len(g) > 1), key=sorted)


def test_sharded_copy_keeps_hard_link_groups(sshd: Sshd, tmp_path: Path) -> None:
    """-H over several pairs: a dry run's plan names each hard-linked file's
    inode, the planner keeps each group in one shard, and each shard links
    its names, so the destination has the source's link structure: a group
    inside one subtree, and groups across two and three top-level subtrees."""
    src = make_shardable(tmp_path / "src")
    os.link(src / "dir0" / "sub0" / "file0", src / "dir0" / "sub1" / "same-dir")  # within one subtree
    os.link(src / "dir1" / "sub1" / "file1", src / "dir4" / "sub2" / "across")  # across two top-level dirs
    os.link(src / "big", src / "dir2" / "big-again")  # a top-level file and a directory
    os.link(src / "big", src / "dir5" / "sub3" / "big-too")
    (src / "outside").write_text("one name in the tree, one outside it\n")
    os.link(src / "outside", tmp_path / "outside-link")
    (tmp_path / "dst").mkdir()
    config = aliases(sshd, ["a1", "a2", "b1", "b2", "b3"], tmp_path)
    plan = rcp.copy(str(src), str(tmp_path / "plan"), hard_links=True, dry_run=True, rcpd_path=RCPD)
    keyed = {os.path.relpath(e.path, tmp_path / "plan"): e.inode for e in plan.plan if e.inode}
    assert keyed["big"] == keyed["dir2/big-again"] == keyed["dir5/sub3/big-too"] \
        == (os.stat(src / "big").st_dev, os.stat(src / "big").st_ino)
    assert keyed["outside"] and "top.txt" not in keyed and len(keyed) == 8
    out = rcp.copy_sharded(str(src), str(tmp_path / "dst"), ["a1", "a2"], ["b1", "b2", "b3"], hard_links=True,
                           shards=4, ssh_config=str(config), rcpd_path=RCPD)
    assert out.ok, out.result.errors
    assert len(out.shards) == 4 and all(s.result.files_copied > 0 for s in out.shards)
    copied = tmp_path / "dst" / "src"
    assert_same_tree(src, copied)
    want = _link_structure(src)
    assert len(want) == 3 and _link_structure(copied) == want
    assert out.result.hard_links == 4 and out.final is not None and out.final.files_copied == 0
    assert not leftovers(tmp_path / "dst")
    (tmp_path / "dst2").mkdir()
    dry = rcp.copy_sharded(str(src), str(tmp_path / "dst2"), ["a1", "a2"], ["b1", "b2"], dry_run=True,
                           hard_links=True, ssh_config=str(config), rcpd_path=RCPD)
    assert dry.ok and dry.shards == () and dry.result.plan and not list((tmp_path / "dst2").iterdir())


def test_sharded_copy_on_dask(sshd: Sshd, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    src = make_shardable(tmp_path / "src")
    config = aliases(sshd, ["a1", "a2", "b1", "b2"], tmp_path)
    seen: list[rcp.Progress] = []
    (tmp_path / "dst").mkdir()

    class Sink(rcp.NullProgress):
        def update(self, p: rcp.Progress) -> None:
            seen.append(p)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        out = rcp.copy_sharded(str(src), str(tmp_path / "dst"), ["a1", "a2"], ["b1", "b2"], client=client,
                               ssh_config=str(config), rcpd_path=RCPD, progress=Sink())
    assert out.ok, out.result.errors
    assert len(out.shards) == 2
    assert_same_tree(src, tmp_path / "dst" / "src")
    # The workers' progress, aggregated here: both shards' bytes in the end.
    assert max(p.bytes_done for p in seen if p.role == "destination") == out.result.bytes_copied


def _sha256_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_a_lost_dask_worker_loses_no_data(sshd: Sshd, tmp_path: Path) -> None:
    """A Dask worker process SIGKILLed while it copies a shard (paced by a
    bandwidth limit, so the kill lands mid-file): Dask runs the shard again
    on a live worker, the copy completes identical, and neither temporary
    files nor rcpds of the dead worker's copy are left behind."""
    from distributed import Client, LocalCluster
    from test_faults import rcpd_pids

    src = tmp_path / "src"
    for half in ("left", "right"):
        (src / half).mkdir(parents=True)
        (src / half / "data").write_bytes(os.urandom(6 * MiB))
        for f in range(20):
            (src / half / f"small{f}").write_bytes(os.urandom(200 + f))
    config = aliases(sshd, ["a1", "a2", "b1", "b2"], tmp_path)
    (tmp_path / "dst").mkdir()
    flowing = threading.Event()

    class Sink(rcp.NullProgress):
        def update(self, p: rcp.Progress) -> None:
            if p.role == "destination" and p.bytes_done >= MiB:
                flowing.set()

    outcome: dict[str, object] = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        workers: dict[str, int] = client.run(os.getpid)

        def run() -> None:
            try:
                outcome["out"] = rcp.copy_sharded(str(src), str(tmp_path / "dst"), ["a1", "a2"], ["b1", "b2"],
                                                  client=client, bandwidth_limit=2 * MiB, progress=Sink(),
                                                  ssh_config=str(config), rcpd_path=RCPD)
            except BaseException as exc:  # noqa: B036 - reported by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        assert flowing.wait(timeout=90), "no shard's data ever flowed"
        busy = [w for w, keys in client.processing().items() if any(str(k).startswith("rcp-shard-") for k in keys)]
        assert busy, client.processing()
        os.kill(workers[busy[0]], signal.SIGKILL)
        thread.join(timeout=180)
        assert not thread.is_alive(), "the sharded copy did not end after a worker was lost"
    assert "error" not in outcome, outcome
    out = outcome["out"]
    assert isinstance(out, rcp.ShardedResult)
    assert out.ok, out.result.errors
    assert len(out.shards) == 2
    assert _sha256_tree(src) == _sha256_tree(tmp_path / "dst" / "src")
    assert_same_tree(src, tmp_path / "dst" / "src")
    assert not leftovers(tmp_path / "dst")
    deadline = time.monotonic() + 15
    while rcpd_pids("source", {sshd.proc.pid}) + rcpd_pids("destination", {sshd.proc.pid}):
        assert time.monotonic() < deadline, "rcpds of the lost worker's copy are still running"
        time.sleep(0.2)


def test_sharded_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="without host parts"):
        rcp.copy_sharded("h:/x", "/y", ["a"], ["b"])
    with pytest.raises(UsageError, match="sharded copy"):
        rcp.copy(str(tmp_path), str(tmp_path / "x"), shards=2)
    with pytest.raises(UsageError, match="no hosts"):
        rcp.copy(str(tmp_path), str(tmp_path / "x"), source_hosts=["a"], destination_hosts=[])


def test_cli_sharded_copy(sshd: Sshd, tmp_path: Path) -> None:
    src = make_shardable(tmp_path / "src")
    config = aliases(sshd, ["a1", "a2", "b1"], tmp_path)
    (tmp_path / "dst").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    proc = subprocess.run([sys.executable, "-m", "rcp.cli", "-F", str(config), "--rcpd-path", RCPD, "--summary",
                           "--source-hosts", "a1,a2", "--destination-hosts", "b1", str(src), str(tmp_path / "dst")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert_same_tree(src, tmp_path / "dst" / "src")
    # --json: checked against the schema like any copy's lines; the total is the result line.
    from test_jsonout import VALIDATOR

    proc = subprocess.run([sys.executable, "-m", "rcp.cli", "-F", str(config), "--rcpd-path", RCPD, "--json",
                           "--overwrite", "--source-hosts", "a1,a2", "--destination-hosts", "b1", str(src),
                           str(tmp_path / "dst")], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    for line in lines:
        VALIDATOR.validate(line)
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "result"
    assert lines[-1]["unchanged"] > 240
    bad = subprocess.run([sys.executable, "-m", "rcp.cli", "--source-hosts", "a1", str(src), "x"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "both --source-hosts and --destination-hosts" in bad.stderr
