"""The typed Python API: copy's keywords are CopyOptions' fields, values
checked before connecting, exceptions by kind, CopyResult, logging, and
background copies (start, Transfer, copy_async). Real local rcpds."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, get_type_hints

import pytest

import rcp
from rcp.api import copy, copy_async, start
from rcp.errors import ConnectionFailure, DeployError, HostKeyError, RcpdError, SshAuthError, SshError, UsageError
from rcp.model import CopyOptions, CopyResult
from treeutil import leftovers

MiB = 1 << 20
FIELDS = [f.name for f in dataclasses.fields(CopyOptions)]


# -- one source of truth: the keywords are the fields


@pytest.mark.parametrize("func", [copy, start, copy_async], ids=lambda f: f.__name__)
def test_keywords_are_exactly_the_copy_options_fields(func: Any) -> None:
    """Every CopyOptions field is a keyword, in the same order, typed as the
    field or None (not given), and nothing else but progress and options:
    a field added without its keyword (or the reverse) fails here."""
    params = inspect.signature(func).parameters
    keywords = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    sharded = ["source_hosts", "destination_hosts", "client", "shards"] if func is copy else []  # rcp.scaleout
    assert keywords == FIELDS + ["progress", "options"] + sharded
    hints, field_hints = get_type_hints(func), get_type_hints(CopyOptions)
    for name in FIELDS:
        assert params[name].default is None, name
        assert hints[name] == field_hints[name] | None, f"{name}: {hints[name]} vs {field_hints[name]}"
    assert hints["options"] == CopyOptions | None


def test_keywords_override_options(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old!")
    base = CopyOptions(overwrite=True, fsync=True)
    result = copy(tmp_path / "a", tmp_path / "b", options=base, overwrite=False)
    assert result.kept == 1 and (tmp_path / "b").read_bytes() == b"old!"  # the keyword won
    result = copy(tmp_path / "a", tmp_path / "b", options=base)  # options alone
    assert result.ok and (tmp_path / "b").read_bytes() == b"new"
    assert base == CopyOptions(overwrite=True, fsync=True)  # never changed in place


def test_path_operands(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100)
    result = copy(tmp_path / "a", tmp_path / "b")
    assert result.ok and result.bytes_copied == 100
    (tmp_path / "dir").mkdir()
    result = copy([tmp_path / "a", str(tmp_path / "b")], os.fsencode(tmp_path / "dir") + b"/")
    assert result.ok and sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["a", "b"]


@pytest.mark.parametrize("kwargs, message", [
    ({"congestion_control": "vegas"}, "congestion_control must be one of bbr, cubic, reno, not 'vegas'"),
    ({"transport": "udp"}, "transport must be one of auto, quic, tcp"),
    ({"port": 0}, "port must be 1..65535"),
    ({"port": 70000}, "port must be 1..65535"),
    ({"port": "22"}, "port must be int | None"),
    ({"address_family": "ipx"}, "address_family must be one of any, inet, inet6"),
    ({"bandwidth_limit": -1}, "bandwidth_limit must be bytes per second >= 0"),
    ({"fallback_timeout": 0.0}, "fallback_timeout must be"),
    ({"connect_timeout": float("nan")}, "connect_timeout must be"),
    ({"port_range": "99999"}, "bad port range"),
    ({"verbose": 9}, "verbose must be 0..3"),
    ({"overwrite": "yes"}, "overwrite must be bool"),
    ({"identity_files": "key"}, "identity_files must be list[str]"),
    ({"ssh_options": {"Ciphers": "x"}}, "ssh option 'Ciphers' is not supported"),
    ({"overwrite": True, "update": True}, "exclude each other"),
])
def test_bad_values_are_usage_errors_before_connecting(kwargs: dict[str, Any], message: str) -> None:
    # The host does not exist: any attempt to connect would fail otherwise.
    with pytest.raises(UsageError, match=re.escape(message)):
        copy("no-such-host.invalid:x", "/tmp/x", **kwargs)
    with pytest.raises(UsageError):
        start("no-such-host.invalid:x", "/tmp/x", **kwargs)


def test_options_of_the_wrong_type_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="options must be a CopyOptions"):
        copy("a", "b", options={"overwrite": True})  # type: ignore[arg-type]


def test_bad_rcp_log_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCP_LOG", "loud")
    with pytest.raises(UsageError, match="RCP_LOG='loud' is not a log level: use one of error, warn, info, debug"):
        copy("no-such-host.invalid:x", "/tmp/x")


# -- exceptions by kind


def test_exception_hierarchy() -> None:
    assert issubclass(HostKeyError, SshError) and issubclass(HostKeyError, ConnectionFailure)
    assert issubclass(SshAuthError, SshError) and issubclass(SshAuthError, ConnectionFailure)
    assert issubclass(RcpdError, ConnectionFailure) and issubclass(DeployError, RcpdError)
    assert issubclass(UsageError, rcp.RcpError) and not issubclass(UsageError, ConnectionFailure)
    assert rcp.HostKeyError is rcp._core.HostKeyError  # what the core raises is what callers catch


def test_missing_rcpd_is_an_rcpd_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "rcpd"
    fake.write_text("#!/bin/sh\necho 'rcpd: cannot start' >&2\nexit 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RCP_RCPD", str(fake))
    (tmp_path / "a").write_bytes(b"x")
    with pytest.raises(RcpdError) as err:
        copy(tmp_path / "a", tmp_path / "b")
    text = str(err.value)
    assert "; ," not in text and ", ;" not in text and "exit status 7" in text, text
    assert "stderr: rcpd: cannot start" in text, text


# -- CopyResult


def test_copy_result_is_frozen_and_readable() -> None:
    r = CopyResult(files_copied=3, bytes_copied=3 * MiB, duration=1.5, transport="quic", unchanged=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.files_copied = 4  # type: ignore[misc]
    assert repr(r) == ("CopyResult(status: ok; copied: 3 files, 3.0 MiB; time: 1.50 s, 2.0 MiB/s over quic; "
                       "unchanged: 2)")
    bad = CopyResult(failed=1, errors=[("a<b>", "Permission denied")], duration=0.1)
    assert "status: not ok" in repr(bad) and "error: a<b>: Permission denied" in repr(bad)
    page = bad._repr_html_()
    assert page.startswith("<table") and "a&lt;b&gt;: Permission denied" in page and "<b>" not in page
    assert CopyResult.__doc__ and "kept_paths" in CopyResult.__doc__
    assert CopyOptions.__doc__ and "keyword" in CopyOptions.__doc__
    assert not CopyResult(cancelled=True).ok


# -- logging


def test_warnings_and_rcpd_lines_reach_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With no progress view, nothing is discarded: the master's warnings and
    the rcpds' lines (at the level verbose asks of them) go to logging."""
    (tmp_path / "a").write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="rcp"):
        result = copy(tmp_path / "a", tmp_path / "b", relay=True, verbose=1)
    assert result.ok
    said = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert any(n == "rcp.orchestration" and lv == logging.WARNING and "--relay" in m for n, lv, m in said), said
    assert any(n == "rcp.destination" and lv == logging.INFO for n, lv, m in said), said
    assert any(n == "rcp.source" and lv == logging.INFO for n, lv, m in said), said


# -- background copies


def big_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


def test_start_wait_and_progress(tmp_path: Path) -> None:
    src = big_file(tmp_path, 4 * MiB)
    transfer = start(src, tmp_path / "copy.bin", bandwidth_limit=4 * MiB)  # about a second
    assert isinstance(transfer, rcp.Transfer) and transfer.result is None and not transfer.done
    with pytest.raises(TimeoutError):
        transfer.wait(timeout=0.01)
    result = transfer.wait(timeout=60)
    assert result.ok and result.bytes_copied == 4 * MiB and transfer.done and transfer.result is result
    assert transfer.progress is not None and transfer.progress.bytes_done == 4 * MiB
    assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()
    assert transfer.cancel() is result  # already over: its result, unchanged


def test_cancel_stops_both_rcpds_and_cleans_up(tmp_path: Path) -> None:
    src = big_file(tmp_path, 32 * MiB)
    into = tmp_path / "into"
    into.mkdir()
    transfer = start(src, into, bandwidth_limit=4 * MiB)  # ~8 s unless cancelled
    deadline = time.monotonic() + 30
    while (transfer.progress is None or transfer.progress.bytes_done == 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert transfer.progress is not None, "no progress reported"
    began = time.monotonic()
    result = transfer.cancel()
    assert time.monotonic() - began < 10
    assert result.cancelled and not result.ok and result.errors == [], result
    assert 0 < result.bytes_copied < 32 * MiB or result.bytes_copied == 0
    assert not (into / "big.bin").exists() and not leftovers(into)
    assert transfer.done and transfer.result is result


def test_several_transfers_at_once(tmp_path: Path) -> None:
    transfers = []
    for i in range(4):
        src = tmp_path / f"src{i}"
        src.mkdir()
        for j in range(20):
            (src / f"f{j}").write_bytes(os.urandom(1000 + i * 100 + j))
        transfers.append(start(src, tmp_path / f"dst{i}"))
    results = [t.wait(timeout=120) for t in transfers]
    assert all(r.ok and r.files_copied == 20 for r in results), results
    for i in range(4):
        for j in range(20):
            assert (tmp_path / f"dst{i}" / f"f{j}").read_bytes() == (tmp_path / f"src{i}" / f"f{j}").read_bytes()


def test_copy_async(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"async")

    async def two() -> list[CopyResult]:
        return list(await asyncio.gather(copy_async(tmp_path / "a", tmp_path / "b"),
                                         copy_async(tmp_path / "a", tmp_path / "c")))

    results = asyncio.run(two())
    assert all(r.ok for r in results)
    assert (tmp_path / "b").read_bytes() == (tmp_path / "c").read_bytes() == b"async"


def test_cancelling_copy_async_cancels_the_copy(tmp_path: Path) -> None:
    src = big_file(tmp_path, 32 * MiB)
    into = tmp_path / "into"
    into.mkdir()

    async def cancelled() -> None:
        task = asyncio.ensure_future(copy_async(src, into, bandwidth_limit=4 * MiB))
        await asyncio.sleep(1.5)  # connected, and some bytes on their way
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    began = time.monotonic()
    asyncio.run(cancelled())
    assert time.monotonic() - began < 20
    assert not (into / "big.bin").exists() and not leftovers(into)
