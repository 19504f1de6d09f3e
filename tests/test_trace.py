"""RCP_TRACE: the start-up steps docs/performance.md's breakdown is made of,
and the teardown that hangs up before joining the relays (no log line lost)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import rcp

STEPS = ["cli imported", "copy called", "master certificate", "ssh connected", "rcpd started", "hellos",
         "control links", "source listening", "peers connected", "results", "relays joined", "hung up", "cli done"]


def run_cli(args: list[str], trace: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RCP_TRACE"}
    if trace:
        env["RCP_TRACE"] = "1"
    return subprocess.run([sys.executable, "-m", "rcp.cli", "--no-progress", "-q", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_trace_lists_each_step_once_in_order_with_growing_times(tmp_path: Path) -> None:
    (tmp_path / "one").write_bytes(b"x")
    done = run_cli([str(tmp_path / "one"), str(tmp_path / "copy")], trace=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "copy").read_bytes() == b"x"
    lines = [line.split(" ", 2) for line in done.stderr.splitlines() if line.startswith("rcp-trace ")]
    steps = [step for _, _, step in lines if not step.endswith(" rcpd stopped")]
    assert steps == STEPS
    times = [float(at) for _, at, _ in lines]
    assert times == sorted(times)
    assert {step for _, _, step in lines} >= {"source rcpd stopped", "destination rcpd stopped"}


def test_no_trace_lines_without_rcp_trace(tmp_path: Path) -> None:
    (tmp_path / "one").write_bytes(b"x")
    done = run_cli([str(tmp_path / "one"), str(tmp_path / "copy")], trace=False)
    assert done.returncode == 0, done.stderr
    assert "rcp-trace" not in done.stderr


def test_last_log_lines_survive_the_early_hang_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The links are closed before the relays are joined: each rcpd's last
    # lines (sent just before its result) must still reach logging.
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}").write_bytes(b"y" * i)
    with caplog.at_level(5, logger="rcp"):  # TRACE: a line per chunk sent
        result = rcp.copy(str(src), str(tmp_path / "dst"), options=rcp.CopyOptions(verbose=3))
    assert result.ok, result.errors
    said = {(r.name, r.getMessage().split(" in ")[0]) for r in caplog.records}
    # Each side's summary is its last line, sent just before its result.
    assert ("rcp.source", "sent 20 files, 190 bytes") in said, sorted(said)[-5:]
    assert ("rcp.destination", "wrote 20 files, 190 bytes") in said, sorted(said)[-5:]
    for i in range(20):
        assert any(name == "rcp.source" and f"/f{i}: sent bytes" in text for name, text in said), i
