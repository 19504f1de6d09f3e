from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import rcp
from rcp.daemon import rcpd_path


def test_version_reports_rcp_and_rcpd() -> None:
    out = subprocess.run([sys.executable, "-m", "rcp.cli", "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    protocol = rcp._core.PROTOCOL_VERSION
    assert out.stdout.startswith(f"rcp {rcp.__version__} (rcpd {rcp.__version__} protocol {protocol})")


def test_console_script_installed() -> None:
    exe = __import__("shutil").which("rcp", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the rcp console script is not installed in the venv"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("rcp ")


def test_the_command_exits_with_what_it_printed_flushed() -> None:
    """`rcp` leaves through os._exit, skipping the interpreter's teardown and
    with it Python's own flush: what it printed into a pipe (block-buffered
    without PYTHONUNBUFFERED) must still arrive, whichever way it is started."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    console = str(Path(sys.executable).parent / "rcp")
    for command in ([console], [sys.executable, "-m", "rcp"], [sys.executable, "-m", "rcp.cli"]):
        out = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=30, env=env)
        assert (out.returncode, out.stdout[:4]) == (0, "rcp "), (command, out)


def test_no_arguments_is_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "rcp.cli"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "usage" in out.stderr


def test_rcpd_is_installed_with_the_package() -> None:
    assert rcpd_path().is_file()


def test_rcpd_refuses_bad_arguments() -> None:
    fp = "ab" * 32
    for args, message in [(["--role", "source", "--master", "127.0.0.1:1", "--master-fingerprint", fp, "--cc", "vegas"],
                           "vegas"),
                          (["--role", "sink", "--master", "127.0.0.1:1", "--master-fingerprint", fp], "--role"),
                          (["--role", "source", "--master-fingerprint", fp], "--master")]:
        out = subprocess.run([str(rcpd_path()), *args], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and out.stdout == "", (args, out.stderr)


def test_rcpd_usage_names_every_option_it_accepts() -> None:
    out = subprocess.run([str(rcpd_path()), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for option in ("--role", "--master", "--master-fingerprint", "--port-range", "--cc", "--log-level",
                   "--stall-timeout", "--max-udp-payload", "--version"):
        assert option in out.stdout, option
    bad = subprocess.run([str(rcpd_path()), "--no-such-option"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown argument --no-such-option" in bad.stderr and "usage: rcpd" in bad.stderr
