"""The Python API: `rcp.copy(src, dst, **options) -> CopyResult`."""

from __future__ import annotations

from dataclasses import fields

from rcp.errors import UsageError
from rcp.model import CopyOptions, CopyResult
from rcp.operands import resolve_plan
from rcp.orchestration import run_copy
from rcp.progress import ProgressSink, make_progress


def copy(src: str | list[str], dst: str, *, progress: ProgressSink | bool | str | None = None,
         **options: object) -> CopyResult:
    """Copy `src` (one operand or several) to `dst`, operands written as for scp:
    a local path, `[user@]host[:port]:path` or `[ipv6]:path`.

    Returns a CopyResult; raises UsageError for bad operands or options and
    ConnectionFailure when a host, its SSH or its rcpd can't be reached.
    `progress` is a ProgressSink, or True/"terminal"/"notebook" for a live view.
    """
    known = {f.name for f in fields(CopyOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(unknown)}")
    opts = CopyOptions(**options)  # type: ignore[arg-type]
    operands = [src] if isinstance(src, str) else list(src)
    sources, destination = resolve_plan(operands + [dst])
    sink = progress if hasattr(progress, "update") else make_progress(progress)  # type: ignore[arg-type]
    return run_copy(sources, destination, opts, sink)  # type: ignore[arg-type]
