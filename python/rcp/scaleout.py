"""One copy sharded across many source and destination hosts (docs/scale-out.md).

SRC_PATH is on storage every source host sees, DST_PATH on storage every
destination host sees. The caller plans and never carries file data:

1. Listing: the source rcpds list the tree, each paired with itself in a dry
   run into a path that does not exist (so every entry is reported with its
   size, whatever the destination holds). With several source hosts the top
   level is listed first and its entries are split among them.
2. Cutting: rcp.shard cuts the listed tree into shards balanced by bytes and
   file count; a shard is the same copy with more filter rules.
3. Copying: each shard runs as an ordinary copy (rcp.orchestration.run_copy:
   its own two rcpds and pinned link) on one source->destination pair, pairs
   in parallel: on a thread pool here, or as Dask tasks on a
   distributed.Client's workers. A shard that fails is run again on the next
   pair; the incremental rules and atomic publish make a rerun safe.
4. Final pass: one ordinary copy of the whole tree with the caller's options
   (delete, directory metadata). Everything the shards copied is unchanged
   by then, so it only walks and compares; it also copies whatever the
   listing missed (a name changed while listing, plan entries past the cap).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from rcp.errors import RcpError, UsageError
from rcp.model import CopyOptions, CopyResult, Endpoint, Progress, ShardedResult, ShardResult
from rcp.orchestration import run_copy
from rcp.progress import NullProgress, ProgressSink
from rcp.shard import MAX_RULES, Shard, TreeEntry, cut, escape, listed_entries

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # tries of one shard, each on the next pair
TOP_GROUP = 400  # top-level names per listing run (filter rules are bounded)
PUBLISH_EVERY = 0.5  # seconds between a Dask task's progress messages


@dataclass(frozen=True)
class Host:
    """A host of a sharded copy: [user@]host, and optionally the address the
    destinations reach it at (given as host=ADDRESS), for a source."""

    host: str
    user: str | None = None
    address: str | None = None

    @property
    def label(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}"

    def endpoint(self, path: str) -> Endpoint:
        return Endpoint(path, self.host, self.user)


def parse_hosts(items: Sequence[str] | str, what: str) -> list[Host]:
    """"[user@]host[=ADDRESS]" items (or one comma-separated string) as Hosts."""
    if isinstance(items, str):
        items = [i for i in items.split(",") if i.strip()]
    hosts = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise UsageError(f"{what}: expected [user@]host[=ADDRESS], got {item!r}")
        name, _, address = item.strip().partition("=")
        user, _, host = name.rpartition("@")
        host = host.strip("[]")
        if not host or "/" in host or ":" in host and not _ipv6(host):
            raise UsageError(f"{what}: expected [user@]host[=ADDRESS], got {item!r}")
        hosts.append(Host(host, user or None, address or None))
    if not hosts:
        raise UsageError(f"{what}: no hosts given")
    return hosts


def _ipv6(host: str) -> bool:
    return host.count(":") >= 2


@dataclass(frozen=True)
class Pair:
    source: Host
    destination: Host

    @property
    def label(self) -> str:
        return f"{self.source.label}->{self.destination.label}"


def make_pairs(sources: list[Host], destinations: list[Host]) -> list[Pair]:
    """As many pairs as the larger side has hosts, each host in them evenly."""
    n = max(len(sources), len(destinations))
    return [Pair(sources[k % len(sources)], destinations[k % len(destinations)]) for k in range(n)]


@dataclass(frozen=True)
class ShardTask:
    """Everything one shard's copy needs: picklable, for a Dask worker."""

    shard: Shard
    src_path: str
    dst_path: str
    pairs: tuple[Pair, ...]
    first: int  # index of the pair tried first; each retry takes the next
    options: CopyOptions
    topic: str = ""  # Dask: where the task publishes its progress ("" = nowhere)


def _failure(result: CopyResult) -> str:
    """Why a copy counts as failed ("" when it does not): kept files are not a failure."""
    if result.cancelled:
        return "cancelled"
    if result.failed or result.errors:
        return "; ".join(f"{p}: {m}" if p else m for p, m in result.errors[:3]) or f"{result.failed} failed"
    return ""


def _pair_options(options: CopyOptions, pair_source: Host) -> CopyOptions:
    if pair_source.address:
        return replace(options, source_addresses=[pair_source.address])
    return options


def run_shard(task: ShardTask, sink: ProgressSink | None = None) -> ShardResult:
    """One shard's copy, tried on the next pair after each failure. Never
    raises for a failed copy: the result says (a Dask retry is for a lost worker)."""
    if sink is None:
        sink = _Publisher(task.topic, task.shard.index) if task.topic else NullProgress()
    options = replace(task.options, filters=list(task.options.filters) + task.shard.rules(),
                      delete=False, delete_excluded=False)
    error = ""
    result = CopyResult()
    pair = task.pairs[task.first % len(task.pairs)]
    attempts = min(MAX_ATTEMPTS, max(2, len(task.pairs)))
    for attempt in range(attempts):
        pair = task.pairs[(task.first + attempt) % len(task.pairs)]
        try:
            result = run_copy([pair.source.endpoint(task.src_path)], pair.destination.endpoint(task.dst_path),
                              _pair_options(options, pair.source), sink)
            error = _failure(result)
        except RcpError as exc:
            error = str(exc)
        if not error:
            return ShardResult(task.shard.index, pair.label, attempt + 1, result)
        log.warning("shard %d on %s failed (attempt %d of %d): %s", task.shard.index, pair.label, attempt + 1,
                    attempts, error)
    return ShardResult(task.shard.index, pair.label, attempts, result, error)


def _distributed() -> Any:
    """Dask distributed, imported only for a sharded copy given a client
    (untyped to mypy: its functions carry no annotations)."""
    return importlib.import_module("distributed")


class _Publisher:
    """A Dask task's progress sink: the shard's latest totals, at most every
    PUBLISH_EVERY seconds, to the caller through a distributed.Pub topic."""

    def __init__(self, topic: str, index: int) -> None:
        self.pub = _distributed().Pub(topic)
        self.index = index
        self.last = 0.0

    def start(self) -> None:
        pass

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self.last >= PUBLISH_EVERY:
            self.last = now
            self.pub.put((self.index, p.role, p.bytes_done, p.files_done))

    def log(self, role: str, level: str, text: str) -> None:
        pass

    def finish(self, result: CopyResult | None) -> None:
        if result is not None:  # the last word, whatever the throttle held back
            self.pub.put((self.index, "destination", result.bytes_copied, result.files_copied))


class _Aggregate:
    """Each shard's latest progress, summed into one Progress for the caller's sink."""

    def __init__(self, sink: ProgressSink, total_bytes: int, total_files: int) -> None:
        self.sink, self.total_bytes, self.total_files = sink, total_bytes, total_files
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.latest: dict[tuple[int, str], tuple[int, int]] = {}

    def update(self, index: int, role: str, nbytes: int, files: int) -> None:
        with self.lock:
            self.latest[(index, role)] = (nbytes, files)
            done = [v for (_, r), v in self.latest.items() if r == role]
            p = Progress(role, sum(b for b, _ in done), sum(f for _, f in done), self.total_bytes,
                         self.total_files, elapsed=time.monotonic() - self.started)
            self.sink.update(p)

    def shard_sink(self, index: int) -> ProgressSink:
        return _ShardSink(self, index)


class _ShardSink:
    def __init__(self, agg: _Aggregate, index: int) -> None:
        self.agg, self.index = agg, index

    def start(self) -> None:
        pass

    def update(self, p: Progress) -> None:
        self.agg.update(self.index, p.role, p.bytes_done, p.files_done)

    def log(self, role: str, level: str, text: str) -> None:
        self.agg.sink.log(role, level, f"shard {self.index}: {text}")

    def finish(self, result: CopyResult | None) -> None:
        if result is not None:
            self.agg.update(self.index, "destination", result.bytes_copied, result.files_copied)


def _listing_options(options: CopyOptions, filters: list[str]) -> CopyOptions:
    # A dry run of the source into a path that cannot exist, on the source
    # host itself: the link stays inside that host.
    return replace(options, dry_run=True, filters=filters, delete=False, delete_excluded=False, checksum=False,
                   relay=False, partial=False, source_addresses=["127.0.0.1"], bandwidth_limit=0)


def _parent(path: str) -> str:
    stripped = path.rstrip("/")
    if "/" not in stripped:
        return "."
    parent = stripped.rsplit("/", 1)[0]
    return parent or "/"


def _list_one(host: Host, src_path: str, options: CopyOptions, filters: list[str]) -> tuple[list[TreeEntry], int]:
    """One listing run: the entries, and how many the plan's cap left out."""
    target = f"{_parent(src_path).rstrip('/')}/.rcp-list-{os.urandom(6).hex()}"
    result = run_copy([host.endpoint(src_path)], host.endpoint(target), _listing_options(options, filters),
                      NullProgress())
    error = _failure(result)
    if error:
        raise RcpError(f"listing {src_path} on {host.label} failed: {error}")
    root = next((e.path for e in result.plan if e.action == "create"), target)
    return listed_entries(result.plan, root), result.plan_omitted


def _under(parent: str) -> list[str]:
    """Rules that let the walk into `parent` (relative, "" = the top) and no further by themselves."""
    parts = parent.split("/") if parent else []
    return [f"+ /{escape('/'.join(parts[:k]))}/" for k in range(1, len(parts) + 1)]


def _list_names(host: Host, src_path: str, options: CopyOptions, parent: str, names: list[str]) -> list[TreeEntry]:
    """The subtrees `names` of directory `parent`. A run the plan's cap cut
    short is done again in halves, and a single subtree too big for one run
    is listed one level deeper: so no listing leaves entries out."""
    base = f"{escape(parent)}/" if parent else ""
    rules = list(options.filters) + _under(parent) + [f"+ /{base}{escape(n)}/***" for n in names] + ["- *"]
    entries, omitted = _list_one(host, src_path, options, rules)
    if not omitted:
        return entries
    if len(names) > 1:
        half = len(names) // 2
        return (_list_names(host, src_path, options, parent, names[:half])
                + _list_names(host, src_path, options, parent, names[half:]))
    path = f"{parent}/{names[0]}" if parent else names[0]
    level = list(options.filters) + _under(path) + [f"+ /{escape(path)}/*", "- *"]
    children, cut_short = _list_one(host, src_path, options, level)
    if cut_short:
        log.warning("%s on %s holds more entries than one listing keeps: the final pass copies the rest",
                    path, host.label)
        return children
    inner = sorted({e.path[len(path) + 1:].split("/", 1)[0] for e in children if e.path.startswith(path + "/")})
    return children + (_list_names(host, src_path, options, path, inner) if inner else [])


def list_tree(src_path: str, sources: list[Host], options: CopyOptions) -> list[TreeEntry]:
    """The source tree, listed by the source hosts' rcpds: with one host at
    once if one run can keep it all; else the top level first, then its names
    split among the source hosts, each listing its part (_list_names)."""
    user = list(options.filters)
    if len(sources) == 1:
        entries, omitted = _list_one(sources[0], src_path, options, user)
        if not omitted:
            return entries
    top, _ = _list_one(sources[0], src_path, options, user + ["- /*/*"])
    names = sorted({e.path.split("/", 1)[0] for e in top})
    groups = max(len(sources), -(-len(names) // TOP_GROUP))
    jobs = [(sources[k % len(sources)], names[k::groups]) for k in range(groups) if names[k::groups]]
    seen: dict[str, TreeEntry] = {}
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        for part in pool.map(lambda job: _list_names(job[0], src_path, options, "", job[1]), jobs):
            for e in part:
                seen[e.path] = e
    if len(sources) > 1:
        # Each host numbers its mounts (st_dev) its own way, while a shared
        # filesystem's inode numbers are the same everywhere: names are
        # grouped by inode alone. Two files of different filesystems that
        # share a number only join two units of the same shard.
        return [replace(e, inode=(0, e.inode[1])) if e.inode else e for e in seen.values()]
    return list(seen.values())


def _directory_times(pair: Pair, src_path: str, dst_path: str, options: CopyOptions) -> None:
    """Directories only, as --update copies them: a directory that exists
    keeps its metadata in an ordinary copy, and by now every directory exists
    (the shards made them, and their later files moved their times)."""
    filters = [r for r in options.filters if r.startswith("- ")] + ["+ */", "- *"]
    dirs = replace(options, filters=filters, update=True, overwrite=False, ignore_existing=False, delete=False,
                   delete_excluded=False, checksum=False)
    result = run_copy([pair.source.endpoint(src_path)], pair.destination.endpoint(dst_path),
                      _pair_options(dirs, pair.source), NullProgress())
    if _failure(result):
        log.warning("setting directory times after the shards failed: %s", _failure(result))


def _total(shards: Sequence[ShardResult], final: CopyResult | None, duration: float) -> CopyResult:
    """The shards' and the final pass's results as one copy's."""
    parts = [s.result for s in shards] + ([final] if final else [])
    errors: list[tuple[str, str]] = [(f"shard {s.index}", s.error) for s in shards if s.error]
    failed = len(errors)
    copied = sum(s.result.files_copied for s in shards)
    f: dict[str, Any] = {}
    for name in ("files_copied", "bytes_copied", "dirs_created", "symlinks_copied", "sparse_bytes", "hard_links",
                 "resumed_bytes", "protocol_errors"):
        f[name] = sum(getattr(r, name) for r in parts)
    if final is not None:
        errors += final.errors
        failed += final.failed
        f.update(kept=final.kept, kept_paths=final.kept_paths, ignored=final.ignored, deleted=final.deleted,
                 unchanged=max(0, final.unchanged - copied), plan=final.plan, plan_omitted=final.plan_omitted,
                 cancelled=final.cancelled)
    transport = next((r.transport for r in parts if r.transport), "")
    return CopyResult(failed=failed, errors=errors, duration=duration, transport=transport, **f)


Runner = Callable[[list[ShardTask], _Aggregate], list[ShardResult]]


def _run_threads(tasks: list[ShardTask], agg: _Aggregate) -> list[ShardResult]:
    with ThreadPoolExecutor(max_workers=max(1, len(tasks[0].pairs)) if tasks else 1,
                            thread_name_prefix="rcp-shard") as pool:
        return list(pool.map(lambda t: run_shard(t, agg.shard_sink(t.shard.index)), tasks))


def _run_dask(client: Any) -> Runner:
    def run(tasks: list[ShardTask], agg: _Aggregate) -> list[ShardResult]:
        dist = _distributed()
        topic = tasks[0].topic if tasks else ""
        sub = dist.Sub(topic, client=client)
        stop = threading.Event()

        def relay() -> None:  # each task's progress, aggregated here at the caller
            while not stop.is_set():
                try:
                    index, role, nbytes, files = sub.get(timeout=0.5)
                except Exception:  # TimeoutError, or the client closing under us
                    continue
                agg.update(index, role, nbytes, files)

        thread = threading.Thread(target=relay, daemon=True, name="rcp-dask-progress")
        thread.start()
        try:
            # A lost worker's task is rerun by Dask (retries); a failed copy by run_shard, on the next pair.
            futures = [client.submit(run_shard, t, key=f"rcp-shard-{t.topic}-{t.shard.index}", retries=2,
                                     pure=False) for t in tasks]
            results = [f.result() for f in dist.as_completed(futures)]
        finally:
            stop.set()
            thread.join(timeout=2.0)
        return sorted(results, key=lambda r: r.index)
    return run


def copy_sharded(src_path: str, dst_path: str, source_hosts: Sequence[str] | str,
                 destination_hosts: Sequence[str] | str, options: CopyOptions | None = None,
                 sink: ProgressSink | None = None, *, client: Any = None, shards: int | None = None,
                 ) -> ShardedResult:
    """SRC_PATH (on every source host) copied into the directory DST_PATH (on
    every destination host: DST_PATH/<name of SRC_PATH>, as `rcp SRC DST/`),
    sharded over source->destination pairs (module docstring). `client`: a
    distributed.Client whose workers run the shards (they need rcp and the
    SSH configuration: docs/scale-out.md); None: a thread pool here. `shards`:
    how many (default: one per pair)."""
    options = options or CopyOptions()
    sink = sink or NullProgress()
    sources = parse_hosts(source_hosts, "source hosts")
    destinations = parse_hosts(destination_hosts, "destination hosts")
    for path, what in ((src_path, "source"), (dst_path, "destination")):
        if not isinstance(path, str) or not path:
            raise UsageError(f"sharded copy: the {what} path must be a non-empty path without a host part")
    # Into DST_PATH, always (as `rcp SRC DST/`): whether DST_PATH exists
    # must not change where a shard puts its part, whichever shard runs first.
    dst_path = dst_path if dst_path.endswith("/") else dst_path + "/"
    pairs = make_pairs(sources, destinations)
    count = shards if shards is not None else len(pairs)
    if count < 1:
        raise UsageError("shards must be at least 1")
    if client is not None:
        options = replace(options, prompt=None)  # a worker has no one to ask
    started = time.monotonic()
    plans: list[Shard] = []
    entries: list[TreeEntry] = []
    if not options.dry_run:
        entries = list_tree(src_path, sources, options)
        plans = cut(entries, count, MAX_RULES - 1 - len(options.filters))
    listed = time.monotonic()
    total_bytes = sum(s.bytes for s in plans)
    total_files = sum(s.files for s in plans)
    agg = _Aggregate(sink, total_bytes, total_files)
    topic = f"rcp-progress-{os.urandom(6).hex()}" if client is not None else ""
    tasks = [ShardTask(s, src_path, dst_path, tuple(pairs), s.index % len(pairs), options, topic) for s in plans]
    log.info("sharded copy: %d entries in %d shards over %d pairs (listed in %.2f s)", len(entries),
             len(tasks), len(pairs), listed - started)
    sink.start()
    results: list[ShardResult] = []
    if tasks:
        results = (_run_dask(client) if client is not None else _run_threads)(tasks, agg)
    copied = time.monotonic()
    final: CopyResult | None = None
    if all(r.ok for r in results):
        # Directory metadata, delete, and anything the listing missed: once, on the first pair.
        pair = pairs[0]
        final = run_copy([pair.source.endpoint(src_path)], pair.destination.endpoint(dst_path),
                         _pair_options(options, pair.source), NullProgress())
        if tasks and not options.dry_run and not _failure(final):
            _directory_times(pair, src_path, dst_path, options)
    done = time.monotonic()
    total = _total(results, final, done - started)
    sink.finish(total)
    return ShardedResult(total, tuple(results), final, len(entries), listed - started, copied - listed,
                         done - copied)
