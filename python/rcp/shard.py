"""Cutting one copy's tree into shards for a sharded copy (rcp.scaleout).

A shard is a set of units, each a whole subtree or a single file of the
source tree, given to the source's walk as filter rules: "+ /a/" for each
directory above a unit (walked, but only for the units below it), "+ /unit/***"
for each unit, then "- *" for everything else. So a shard is an ordinary copy
of the same operands with more filter rules, and the wire needs nothing new;
the price is the bound on filter rules (MAX_FILTER_RULES), which bounds how
finely one shard can be cut.

Units are found top-down: start with the root's children, and split the
heaviest directory unit into its children while it weighs more than a share
of the tree (cost: bytes and file count, each relative to the tree's total)
and the rule budget allows. Units holding names of one hard-linked file
(TreeEntry.inode, listed with hard_links) are then joined into one group, so
the group's copy, with -H, sees every name and links them. Groups (most are
one unit) are dealt out largest first to the lightest shard (LPT), which
keeps shards within one group of each other. A file is never split across
shards, nor a hard-link group.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from rcp import _core
from rcp.model import PlanEntry

MAX_RULES = int(_core.MAX_FILTER_RULES)
_SPECIAL = "*?[]\\"


@dataclass(frozen=True)
class TreeEntry:
    """One entry of the listed tree: its path relative to the copied directory,
    its bytes, and for a file with several names (listed with hard_links) the
    key its names share: the source's (device, inode)."""

    path: str
    size: int
    inode: tuple[int, int] | None = None


@dataclass(frozen=True)
class Shard:
    """One shard of a sharded copy: the units it copies (relative paths) and their weight."""

    index: int
    units: tuple[str, ...]
    bytes: int
    files: int

    def rules(self) -> list[str]:
        """The filter rules that make a copy of the whole tree copy only this shard."""
        parents: set[str] = set()
        for unit in self.units:
            parts = unit.split("/")
            parents.update("/".join(parts[:k]) for k in range(1, len(parts)))
        rules = [f"+ /{escape(p)}/" for p in sorted(parents)]
        rules += [f"+ /{escape(u)}/***" for u in self.units]
        return rules + ["- *"]


def escape(name: str) -> str:
    """A path as a filter pattern matching exactly it (wildcard characters escaped)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in name)


def listed_entries(plan: Iterable[PlanEntry], root: str) -> list[TreeEntry]:
    """A dry run's plan (into a fresh destination `root`) as paths relative to
    it; the root itself and entries outside it are left out."""
    prefix = root.rstrip("/") + "/"
    return [TreeEntry(e.path[len(prefix):], e.size, e.inode) for e in plan
            if e.action == "create" and e.path.startswith(prefix) and len(e.path) > len(prefix)]


@dataclass
class _Node:
    bytes: int = 0
    files: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(entries: Iterable[TreeEntry]) -> _Node:
    root = _Node()
    for e in entries:
        node = root
        node.bytes += e.size
        node.files += 1
        for part in e.path.split("/"):
            node = node.children.setdefault(part, _Node())
            node.bytes += e.size
            node.files += 1
    return root


def cut(entries: list[TreeEntry], shards: int, rule_budget: int = MAX_RULES - 1) -> list[Shard]:
    """`entries` cut into at most `shards` shards balanced by bytes and file
    count, each within `rule_budget` filter rules (units that do not fit are
    left out: the final pass copies them). Empty shards are dropped."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    root = _tree(entries)
    if not root.children:
        return []
    total_bytes, total_files = max(1, root.bytes), max(1, root.files)

    def cost(n: _Node) -> float:
        return n.bytes / total_bytes + n.files / total_files

    # Units: split the heaviest directory while it outweighs a fraction of a share.
    # A shard's rules are its units plus their parents: keep units within what
    # the budget allows when every shard gets its even part.
    max_units = max(shards, shards * (rule_budget // 2 - 1))
    share = 2.0 / shards  # the cost of the whole tree is 2
    heap: list[tuple[float, str]] = []
    nodes: dict[str, _Node] = {}
    for name, node in root.children.items():
        nodes[name] = node
        heapq.heappush(heap, (-cost(node), name))
    while heap and shards > 1:  # one shard: the top level will do
        neg, path = heap[0]
        node = nodes[path]
        if -neg <= share / 4 or not node.children or len(nodes) - 1 + len(node.children) > max_units:
            break
        heapq.heappop(heap)
        del nodes[path]
        for name, child in node.children.items():
            sub = f"{path}/{name}"
            nodes[sub] = child
            heapq.heappush(heap, (-cost(child), sub))
    groups = _link_groups(entries, nodes)

    def group_cost(g: list[str]) -> float:
        return sum(cost(nodes[u]) for u in g)

    # LPT: largest group first, to the lightest shard.
    loads = [(0.0, k) for k in range(shards)]
    members: list[list[list[str]]] = [[] for _ in range(shards)]
    for group in sorted(groups, key=lambda g: (-group_cost(g), g)):
        load, k = heapq.heappop(loads)
        members[k].append(group)
        heapq.heappush(loads, (load + group_cost(group), k))
    out: list[Shard] = []
    for held in members:
        held.sort(key=lambda g: (-group_cost(g), g))
        # Past the rule budget (a directory with more entries than rules):
        # the lightest groups stay out, whole, for the final pass to copy.
        while held and len(Shard(0, tuple(u for g in held for u in g), 0, 0).rules()) > rule_budget + 1:
            held.pop()
        units = sorted(u for g in held for u in g)
        if not units:
            continue
        out.append(Shard(len(out), tuple(units), sum(nodes[u].bytes for u in units),
                         sum(nodes[u].files for u in units)))
    return out


def _unit_of(path: str, nodes: dict[str, _Node]) -> str | None:
    """The unit holding `path`: itself or its nearest ancestor among the units."""
    while path:
        if path in nodes:
            return path
        path = path.rpartition("/")[0]
    return None


def _link_groups(entries: Iterable[TreeEntry], nodes: dict[str, _Node]) -> list[list[str]]:
    """The units, joined into groups where names of one hard-linked file
    (one inode key) fall in several units (union-find); each group sorted."""
    parent = {u: u for u in nodes}

    def find(u: str) -> str:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    first: dict[tuple[int, int], str] = {}
    for e in entries:
        if e.inode is None:
            continue
        unit = _unit_of(e.path, nodes)
        if unit is None:
            continue
        seen = first.setdefault(e.inode, unit)
        a, b = find(seen), find(unit)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for u in nodes:
        groups.setdefault(find(u), []).append(u)
    return [sorted(g) for g in groups.values()]
