"""The Python API: `rcp.copy`, and in the background `rcp.start` and
`rcp.copy_async`.

Every field of CopyOptions is a keyword of all three, typed as the field is
(None: not given). A keyword given wins over the same field of an `options=`
given with it; tests/test_api.py checks the keywords and the fields agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, replace
from typing import Any

from rcp.checks import check_options
from rcp.errors import UsageError
from rcp.filters import check_filters
from rcp.model import CopyOptions, CopyResult, ShardedResult
from rcp.operands import resolve_plan
from rcp.orchestration import run_copy
from rcp.progress import ProgressSink, make_progress
from rcp.transfer import Plan, Transfer

__all__ = ["Operand", "copy", "copy_async", "copy_sharded", "start"]

Operand = str | bytes | os.PathLike[str] | os.PathLike[bytes]
ProgressArg = ProgressSink | bool | str | None
FIELDS = tuple(f.name for f in fields(CopyOptions))


def _operand(op: object) -> str:
    """An operand as text; bytes (and bytes paths) through os.fsdecode, so a
    name that is not UTF-8 keeps its exact bytes (as surrogate escapes)."""
    if isinstance(op, (str, bytes, os.PathLike)):
        try:
            return os.fsdecode(op)
        except TypeError:  # a PathLike whose __fspath__ returns neither str nor bytes
            pass
    raise UsageError(f"operand must be a str, bytes or os.PathLike, not {type(op).__name__}")


def _prepare(src: Operand | Iterable[Operand], dst: Operand, given: dict[str, Any]) -> Plan:
    """Operands parsed and options merged and checked: everything that can be
    refused is refused here, before connecting anywhere."""
    options = given.get("options")
    if options is not None and not isinstance(options, CopyOptions):
        raise UsageError(f"options must be a CopyOptions, not {type(options).__name__}")
    opts = replace(options or CopyOptions(), **{k: given[k] for k in FIELDS if given.get(k) is not None})
    check_options(opts)
    opts = replace(opts, filters=check_filters(opts.filters))  # a bad pattern is refused here too
    if isinstance(src, (str, bytes, os.PathLike)) or not isinstance(src, Iterable):
        src = [src]
    operands = [_operand(op) for op in src] + [_operand(dst)]
    sources, destination = resolve_plan(operands)
    return Plan(sources, destination, opts, make_progress(given.get("progress")))


def copy(
    src: Operand | Iterable[Operand],
    dst: Operand,
    *,
    overwrite: bool | None = None,
    update: bool | None = None,
    ignore_existing: bool | None = None,
    checksum: bool | None = None,
    filters: list[str] | None = None,
    delete: bool | None = None,
    delete_excluded: bool | None = None,
    dry_run: bool | None = None,
    partial: bool | None = None,
    fsync: bool | None = None,
    sparse: bool | None = None,
    hard_links: bool | None = None,
    owner: bool | None = None,
    group: bool | None = None,
    numeric_ids: bool | None = None,
    xattrs: bool | None = None,
    acls: bool | None = None,
    keep_capabilities: bool | None = None,
    dereference: bool | None = None,
    ssh_config: str | None = None,
    identity_files: list[str] | None = None,
    accept_new_host_keys: bool | None = None,
    proxy_jump: str | None = None,
    ssh_options: dict[str, str] | None = None,
    prompt: Callable[[str, bool], str | None] | None = None,
    rcpd_path: str | None = None,
    deploy: bool | None = None,
    deploy_dir: str | None = None,
    port_range: str | None = None,
    source_addresses: list[str] | None = None,
    master_address: str | None = None,
    congestion_control: str | None = None,
    transport: str | None = None,
    fallback_timeout: float | None = None,
    relay: bool | None = None,
    connect_timeout: float | None = None,
    verbose: int | None = None,
    port: int | None = None,
    address_family: str | None = None,
    bandwidth_limit: int | None = None,
    progress: ProgressArg = None,
    options: CopyOptions | None = None,
    # A sharded copy over many hosts (rcp.scaleout, docs/scale-out.md):
    source_hosts: Sequence[str] | None = None,
    destination_hosts: Sequence[str] | None = None,
    client: Any = None,
    shards: int | None = None,
) -> CopyResult:
    """Copy `src` (one operand or several) to `dst` and return a CopyResult.

    Operands are written as for scp: a local path, `[user@]host:path` or
    `[user@][ipv6]:path` (the SSH port: `port=`); str, bytes or os.PathLike;
    names that are not UTF-8 are copied byte for byte. The keywords are
    CopyOptions' fields (see its comments); those given override `options`.
    `progress` is a ProgressSink, or True/"terminal"/"plain"/"notebook" for
    a view. Log records go to logging.getLogger("rcp").

    Raises UsageError (bad operands or option values, before connecting);
    HostKeyError, SshAuthError (both SshError) or another SshError when SSH
    fails; RcpdError (DeployError) when an rcpd could not be started, deployed
    or kept running: all of these are ConnectionFailure.
    """
    given = dict(locals())
    if source_hosts is not None or destination_hosts is not None:
        if not isinstance(src, (str, bytes, os.PathLike)):
            raise UsageError("a sharded copy takes one source path")
        return copy_sharded(src, dst, source_hosts or [], destination_hosts or [], client=client, shards=shards,
                            progress=progress, options=options,
                            **{k: given[k] for k in FIELDS if given[k] is not None}).result
    if client is not None or shards is not None:
        raise UsageError("client and shards are for a sharded copy (source_hosts and destination_hosts)")
    plan = _prepare(src, dst, given)
    return run_copy(plan.sources, plan.destination, plan.options, plan.sink)


def copy_sharded(src: Operand, dst: Operand, source_hosts: Sequence[str] | str, destination_hosts: Sequence[str] | str,
                 *, client: Any = None, shards: int | None = None, progress: ProgressArg = None,
                 options: CopyOptions | None = None, **keywords: Any) -> ShardedResult:
    """A sharded copy (docs/scale-out.md): `src` is a path (no host part) that
    every source host sees, `dst` one that every destination host sees; hosts
    are "[user@]host[=ADDRESS]" (ADDRESS: where destinations reach a source).
    The tree is listed by the source rcpds, cut into `shards` (default: one
    per pair) and each shard copied by one source->destination pair, on a
    thread pool here or, given a distributed.Client, as Dask tasks on its
    workers; then one final pass applies delete and directory metadata.
    `keywords` are CopyOptions' fields. Returns a ShardedResult (its .result
    is the whole copy's CopyResult)."""
    unknown = sorted(set(keywords) - set(FIELDS))
    if unknown:
        raise UsageError(f"unknown keyword {unknown[0]!r}")
    given = {**keywords, "options": options, "progress": progress}
    operands = [_operand(src), _operand(dst)]
    if any(op.startswith("[") or (":" in op.split("/", 1)[0]) for op in operands):
        raise UsageError("a sharded copy takes paths without host parts (the hosts are source_hosts and "
                         "destination_hosts)")
    opts = replace(options or CopyOptions(), **{k: given[k] for k in FIELDS if given.get(k) is not None})
    check_options(opts)
    opts = replace(opts, filters=check_filters(opts.filters))
    from rcp import scaleout  # imported when needed: it costs every plain copy's start-up

    return scaleout.copy_sharded(operands[0], operands[1], source_hosts, destination_hosts, opts,
                                 make_progress(progress), client=client, shards=shards)


def start(
    src: Operand | Iterable[Operand],
    dst: Operand,
    *,
    overwrite: bool | None = None,
    update: bool | None = None,
    ignore_existing: bool | None = None,
    checksum: bool | None = None,
    filters: list[str] | None = None,
    delete: bool | None = None,
    delete_excluded: bool | None = None,
    dry_run: bool | None = None,
    partial: bool | None = None,
    fsync: bool | None = None,
    sparse: bool | None = None,
    hard_links: bool | None = None,
    owner: bool | None = None,
    group: bool | None = None,
    numeric_ids: bool | None = None,
    xattrs: bool | None = None,
    acls: bool | None = None,
    keep_capabilities: bool | None = None,
    dereference: bool | None = None,
    ssh_config: str | None = None,
    identity_files: list[str] | None = None,
    accept_new_host_keys: bool | None = None,
    proxy_jump: str | None = None,
    ssh_options: dict[str, str] | None = None,
    prompt: Callable[[str, bool], str | None] | None = None,
    rcpd_path: str | None = None,
    deploy: bool | None = None,
    deploy_dir: str | None = None,
    port_range: str | None = None,
    source_addresses: list[str] | None = None,
    master_address: str | None = None,
    congestion_control: str | None = None,
    transport: str | None = None,
    fallback_timeout: float | None = None,
    relay: bool | None = None,
    connect_timeout: float | None = None,
    verbose: int | None = None,
    port: int | None = None,
    address_family: str | None = None,
    bandwidth_limit: int | None = None,
    progress: ProgressArg = None,
    options: CopyOptions | None = None,
) -> Transfer:
    """`copy` in the background: returns a Transfer at once (after checking
    the operands and options, which raise here as for copy). Transfer.progress
    is the latest report, wait(timeout) the result, cancel() stops both rcpds
    and returns the partial result. Several may run at once."""
    return Transfer(_prepare(src, dst, dict(locals())))


async def copy_async(
    src: Operand | Iterable[Operand],
    dst: Operand,
    *,
    overwrite: bool | None = None,
    update: bool | None = None,
    ignore_existing: bool | None = None,
    checksum: bool | None = None,
    filters: list[str] | None = None,
    delete: bool | None = None,
    delete_excluded: bool | None = None,
    dry_run: bool | None = None,
    partial: bool | None = None,
    fsync: bool | None = None,
    sparse: bool | None = None,
    hard_links: bool | None = None,
    owner: bool | None = None,
    group: bool | None = None,
    numeric_ids: bool | None = None,
    xattrs: bool | None = None,
    acls: bool | None = None,
    keep_capabilities: bool | None = None,
    dereference: bool | None = None,
    ssh_config: str | None = None,
    identity_files: list[str] | None = None,
    accept_new_host_keys: bool | None = None,
    proxy_jump: str | None = None,
    ssh_options: dict[str, str] | None = None,
    prompt: Callable[[str, bool], str | None] | None = None,
    rcpd_path: str | None = None,
    deploy: bool | None = None,
    deploy_dir: str | None = None,
    port_range: str | None = None,
    source_addresses: list[str] | None = None,
    master_address: str | None = None,
    congestion_control: str | None = None,
    transport: str | None = None,
    fallback_timeout: float | None = None,
    relay: bool | None = None,
    connect_timeout: float | None = None,
    verbose: int | None = None,
    port: int | None = None,
    address_family: str | None = None,
    bandwidth_limit: int | None = None,
    progress: ProgressArg = None,
    options: CopyOptions | None = None,
) -> CopyResult:
    """`copy` for asyncio: the copy runs on a thread; cancelling the awaiting
    task cancels the copy (both rcpds stopped) and re-raises CancelledError."""
    transfer = Transfer(_prepare(src, dst, dict(locals())))
    import asyncio  # here, after locals() is read: ~60 ms the command line never needs

    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, transfer.wait)
    except asyncio.CancelledError:
        await loop.run_in_executor(None, transfer.cancel)
        raise
