"""The Python API: `rcp.copy(src, dst, **options) -> CopyResult`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from rcp.errors import UsageError
from rcp.filters import check_filters
from rcp.model import CopyOptions, CopyResult
from rcp.operands import resolve_plan
from rcp.orchestration import run_copy
from rcp.progress import ProgressSink, make_progress
from rcp.ssh import parse_ssh_options


Operand = str | bytes | os.PathLike[str] | os.PathLike[bytes]


def _operand(op: object) -> str:
    """An operand as text; bytes (and bytes paths) through os.fsdecode, so a
    name that is not UTF-8 keeps its exact bytes (as surrogate escapes)."""
    if isinstance(op, (str, bytes, os.PathLike)):
        try:
            return os.fsdecode(op)
        except TypeError:  # a PathLike whose __fspath__ returns neither str nor bytes
            pass
    raise UsageError(f"operand must be a str, bytes or os.PathLike, not {type(op).__name__}")


def copy(src: Operand | Iterable[Operand], dst: Operand, *, progress: ProgressSink | bool | str | None = None,
         **options: Any) -> CopyResult:
    """Copy `src` (one operand or several) to `dst`, operands written as for scp:
    a local path, `[user@]host[:port]:path` or `[ipv6]:path`. Operands are str,
    bytes or os.PathLike; names that are not UTF-8 are copied byte for byte.

    Returns a CopyResult; raises UsageError for bad operands or options and
    ConnectionFailure when a host, its SSH or its rcpd can't be reached
    (DeployError, a ConnectionFailure, when rcpd could not be deployed there).
    `progress` is a ProgressSink, or True/"terminal"/"notebook" for a live view.

    `options` are CopyOptions' fields (rcp.model), among them:
    rcpd_path (str | None): the remote rcpd, used as given, never deployed;
    deploy (bool, default True): False never uploads rcpd and runs 'rcpd'
    from the login's PATH; deploy_dir (str | None): where a deployed rcpd
    goes on the remote (absolute, or relative to the home; None:
    ~/.cache/rcp), e.g. for a home mounted noexec;
    transport ("auto" | "quic" | "tcp", default "auto"): the data link
    between source and destination; "auto" tries QUIC and falls back to TLS
    over TCP when the QUIC handshake gets no answer within fallback_timeout
    (float seconds, default 2.0); CopyResult.transport says which was used;
    proxy_jump (str | None): jump hosts for every remote host, as ssh -J;
    ssh_options (dict[str, str]): ssh_config options, as ssh -o, e.g.
    {"ProxyCommand": "ssh -W %h:%p gw"} (rcp.ssh.SSH_OPTIONS lists the keys);
    relay (bool, default False): the data goes through this machine (scp -3),
    for when the hosts cannot reach each other; logs a warning;
    filters (list[str]): rsync's rules in order, e.g. ["- *.o", "+ keep/"]
    (a bad one raises UsageError before connecting); delete / delete_excluded
    (bool): remove what the source lacks under each copied directory (rsync
    --delete / --delete-excluded); dry_run (bool): write nothing,
    CopyResult.plan lists what would happen.
    """
    known = {f.name for f in fields(CopyOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(unknown)}")
    opts = CopyOptions(**options)
    if sum(bool(x) for x in (opts.overwrite, opts.update, opts.ignore_existing)) > 1:
        raise UsageError("overwrite, update and ignore_existing exclude each other: give at most one")
    if not isinstance(opts.ssh_options, Mapping):
        raise UsageError("ssh_options must be a dict of ssh_config options, e.g. {'ProxyJump': 'gateway'}")
    parse_ssh_options(opts.ssh_options)  # an option rcp does not apply is refused before connecting
    opts.filters = check_filters(opts.filters)  # a bad pattern too
    if isinstance(src, (str, bytes, os.PathLike)) or not isinstance(src, Iterable):
        src = [src]
    operands = [_operand(op) for op in src] + [_operand(dst)]
    sources, destination = resolve_plan(operands)
    return run_copy(sources, destination, opts, make_progress(progress))
