"""The rcp command line: option parsing into CopyOptions, usage errors (exit 2)
before any copy starts, and the exit status of real copies."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rcp.cli import ViewOptions, main, options_from_args, parse_args, port_range, report, seconds
from rcp.errors import EXIT_CONNECTION, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UsageError
from rcp.model import CopyOptions, CopyResult


def plan(*argv: str, tty: bool = False):
    return options_from_args(parse_args(list(argv)), stderr_is_tty=tty)


def test_defaults() -> None:
    sources, destination, options, view = plan("a", "b")
    assert sources == ["a"] and destination == "b"
    assert options == CopyOptions()
    assert view == ViewOptions(live=False, verbosity=0, summary=False)


def test_several_sources_and_remote_operands() -> None:
    inv = plan("u@h:a", "u@h:b", "u@h:", "dst/")
    assert inv.sources == ["u@h:a", "u@h:b", "u@h:"] and inv.destination == "dst/"


def test_all_options(tmp_path: Path) -> None:
    cfg, k1, k2 = tmp_path / "cfg", tmp_path / "id1", tmp_path / "id2"
    for f in (cfg, k1, k2):
        f.write_text("x")
    inv = plan("--overwrite", "--summary", "-vv", "--ssh-config", str(cfg), "-i", str(k1), "--identity", str(k2),
               "--accept-new-host-keys", "--rcpd-path", "/opt/rcp/bin/rcpd", "--port-range", "8000-8999, 9100",
               "--connect-timeout", "2.5", "--master-address", "10.1.2.3", "--cc", "cubic", "h:src", "dst")
    assert inv.options == CopyOptions(overwrite=True, ssh_config=str(cfg), identity_files=[str(k1), str(k2)],
                                      accept_new_host_keys=True, rcpd_path="/opt/rcp/bin/rcpd",
                                      port_range="8000-8999,9100", master_address="10.1.2.3",
                                      congestion_control="cubic", connect_timeout=2.5, verbose=2)
    assert inv.view == ViewOptions(live=False, verbosity=2, summary=True)


def test_transport_options() -> None:
    assert plan("a", "b").options.transport == "auto" and plan("a", "b").options.fallback_timeout == 2.0
    inv = plan("--transport", "tcp", "--fallback-timeout", "0.5", "a", "b")
    assert (inv.options.transport, inv.options.fallback_timeout) == ("tcp", 0.5)
    assert plan("--transport", "quic", "a", "b").options.transport == "quic"
    for bad in (["--transport", "udp"], ["--fallback-timeout", "0"], ["--fallback-timeout", "soon"]):
        with pytest.raises(SystemExit):
            parse_args([*bad, "a", "b"])


def test_scp_recursive_flag_is_accepted() -> None:
    assert plan("-r", "a", "b").options == plan("a", "b").options
    assert plan("-R", "a", "b").options == plan("--recursive", "a", "b").options


def test_options_and_operands_interleave() -> None:
    inv = plan("a", "--overwrite", "b", "-v", "c")
    assert (inv.sources, inv.destination) == (["a", "b"], "c")
    assert inv.options.overwrite and inv.options.verbose == 1


def test_double_dash_allows_operands_starting_with_dash() -> None:
    inv = plan("--overwrite", "--", "-v", "--summary")
    assert (inv.sources, inv.destination) == (["-v"], "--summary")
    assert inv.options.overwrite and inv.options.verbose == 0 and not inv.view.summary


def test_dot_slash_and_remote_dash_paths_need_no_double_dash() -> None:
    inv = plan("./-x", "host:-y")
    assert (inv.sources, inv.destination) == (["./-x"], "host:-y")


def test_tilde_is_expanded_in_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "key").write_text("k")
    inv = plan("-i", "~/key", "a", "b")
    assert inv.options.identity_files == [str(tmp_path / "key")]


@pytest.mark.parametrize("argv, tty, live, verbosity", [
    ([], True, True, 0),  # default: live when stderr is a terminal
    ([], False, False, 0),
    (["-q"], True, False, -1),  # quiet: no live view by default
    (["-q", "--progress"], False, True, -1),
    (["--progress"], False, True, 0),
    (["--no-progress"], True, False, 0),
    (["-v"], True, True, 1),
    (["-vvv"], False, False, 3),
])
def test_progress_and_verbosity(argv: list[str], tty: bool, live: bool, verbosity: int) -> None:
    view = plan(*argv, "a", "b", tty=tty).view
    assert (view.live, view.verbosity) == (live, verbosity)


@pytest.mark.parametrize("spec, normal", [
    ("", ""),
    ("8000", "8000"),
    ("8000-8999", "8000-8999"),
    ("8000-8999,9100", "8000-8999,9100"),
    (" 1 , 65535 ", "1,65535"),
    ("5-5", "5-5"),
])
def test_port_range_accepted(spec: str, normal: str) -> None:
    assert port_range(spec) == normal


@pytest.mark.parametrize("spec", ["0", "65536", "9-1", "a", "80-", "-80", "1,,2", "80:90", "1-2-3"])
def test_port_range_refused(spec: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        port_range(spec)


@pytest.mark.parametrize("text, ok", [("1", True), ("0.5", True), ("0", False), ("-3", False),
                                      ("nan", False), ("inf", False), ("soon", False)])
def test_connect_timeout(text: str, ok: bool) -> None:
    if ok:
        assert seconds(text) == float(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            seconds(text)


def test_missing_identity_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="identity file"):
        plan("-i", str(tmp_path / "nope"), "a", "b")
    with pytest.raises(UsageError, match="ssh config file"):
        plan("--ssh-config", str(tmp_path), "a", "b")  # a directory
    assert plan("--ssh-config", "/dev/null", "a", "b").options.ssh_config == "/dev/null"


def test_bad_operands_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="one source host"):
        plan("h1:a", "h2:b", "dst")
    with pytest.raises(UsageError, match="at least one SRC"):
        plan("a")


# -- usage errors through main: exit 2 before any copy starts


@pytest.mark.parametrize("argv, message", [
    ([], "usage: rcp"),
    (["only-one"], "rcp: need at least one SRC and a DST"),
    (["-v", "--overwrite", "x"], "rcp: need at least one SRC and a DST"),
    (["h1:a", "h2:b", "dst"], "rcp: all sources must be on one host"),
    (["-oProxyCommand=x:y", "dst"], "rcp: need at least one SRC and a DST"),  # an option, as in scp
    (["--", "-oProxyCommand=x:y", "dst"], "rcp: host name may not start with '-'"),
    (["-x", "a", "b"], "unknown option '-x'"),
    (["-3x", "a", "b"], "unknown option '-x' (in '-3x')"),
    (["-5", "a", "b"], "unknown option '-5'"),  # never an operand
    (["-P", "0", "a", "b"], "not a port"),
    (["-P", "ssh", "a", "b"], "not a port"),
    (["-l", "0", "a", "b"], "not a bandwidth"),
    (["-l", "1.5", "a", "b"], "not a bandwidth"),
    (["-4", "-6", "a", "b"], "not allowed with argument"),
    (["-C", "a", "b"], "unknown option '-C'"),
    (["-S", "ssh", "a", "b"], "unknown option '-S'"),
    (["[::1:x", "dst"], "rcp: unclosed '['"),
    (["", "dst"], "rcp: empty operand"),
    (["-q", "-v", "a", "b"], "not allowed with argument"),
    (["--port-range", "70000", "a", "b"], "bad port range"),
    (["--connect-timeout", "0", "a", "b"], "positive number of seconds"),
    (["--connect-timeout", "-1", "a", "b"], "positive number of seconds"),  # not "expected one argument"
    (["--frobnicate", "a", "b"], "unrecognized arguments: --frobnicate"),
    (["--over", "a", "b"], "unrecognized arguments: --over"),  # no abbreviations
    (["-i", "/nonexistent/key", "a", "b"], "rcp: identity file '/nonexistent/key' does not exist"),
])
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_digit_flags_leave_values_alone() -> None:
    """-3/-4/-6 must not make argparse read every "-N" as an option: a value stays a value."""
    assert parse_args(["-3", "h:x", "d"]).relay and parse_args(["h:x", "-3", "d"]).operands == ["h:x", "d"]
    assert parse_args(["--master-address", "-3", "a", "b"]).master_address == "-3"  # a value, not the flag
    assert parse_args(["-o", "-4", "a", "b"]).ssh_options == ["-4"]  # refused later, by the option's check
    assert parse_args(["--", "-1", "h:x"]).operands == ["-1", "h:x"]  # an operand named -1: after --
    with pytest.raises(argparse.ArgumentTypeError, match="positive"):
        seconds("-1")


# scp's options (OpenSSH 9) and what rcp makes of each: (argv, CopyOptions fields, view fields).
SCP_TABLE = [
    (["-P", "2222"], {"port": 2222}, {}),
    (["-P2222"], {"port": 2222}, {}),
    (["-F", "/dev/null"], {"ssh_config": "/dev/null"}, {}),
    (["-i", "/dev/null"], {"identity_files": ["/dev/null"]}, {}),
    (["-p"], {}, {}),  # preservation is the default
    (["-r"], {}, {}),  # so is recursion
    (["-rp"], {}, {}),
    (["-l", "16384"], {"bandwidth_limit": 16384 * 128}, {}),  # Kbit/s, 1 Kbit = 1024 bits
    (["-l16"], {"bandwidth_limit": 2048}, {}),
    (["-4"], {"address_family": "inet"}, {}),
    (["-6"], {"address_family": "inet6"}, {}),
    (["-q"], {}, {"verbosity": -1}),
    (["-v"], {"verbose": 1}, {"verbosity": 1}),
    (["-vv"], {"verbose": 2}, {"verbosity": 2}),
    (["-vvv"], {"verbose": 3}, {"verbosity": 3}),
    (["-v", "-v", "-v"], {"verbose": 3}, {"verbosity": 3}),
    (["-rpv"], {"verbose": 1}, {"verbosity": 1}),
    (["-o", "Port=2200"], {"ssh_options": {"Port": "2200"}}, {}),
    (["-oBatchMode=yes"], {"ssh_options": {"BatchMode": "yes"}}, {}),
    (["-J", "gw"], {"proxy_jump": "gw"}, {}),
    (["-Jgw"], {"proxy_jump": "gw"}, {}),
    (["-3"], {"relay": True}, {}),
    (["-3rp"], {"relay": True}, {}),
    (["-4rpvP", "2222"], {"address_family": "inet", "verbose": 1, "port": 2222}, {"verbosity": 1}),
    (["-rpl", "8"], {"bandwidth_limit": 1024}, {}),
]


@pytest.mark.parametrize("argv, fields, view", SCP_TABLE, ids=[" ".join(a) for a, _, _ in SCP_TABLE])
def test_scp_flags(argv: list[str], fields: dict[str, Any], view: dict[str, object]) -> None:
    inv = plan(*argv, "a", "h:b")
    assert inv.options == CopyOptions(**fields)
    for name, value in view.items():
        assert getattr(inv.view, name) == value
    # Anywhere among the operands too, as scp's getopt would not but users type.
    assert plan("a", *argv, "h:b").options == inv.options


def test_help_groups_options_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    groups = [out.index(g) for g in ("connection:", "what to copy:", "output:", "examples:")]
    assert groups == sorted(groups), out
    for flag in ("--overwrite", "--progress", "--summary", "--ssh-config", "--identity", "--accept-new-host-keys",
                 "--rcpd-path", "--port-range", "--connect-timeout", "--relay", "(-3)", "(-4)", "(-6)", "-P PORT",
                 "-F FILE", "-l KBIT", "-p, --preserve", "-r, -R, --recursive", "-v, --verbose", "-q, --quiet",
                 "python -m rcp"):
        assert flag in out, flag
    assert "host:port:path" not in out and "'host:2222:x' is the remote file '2222:x'" in out


def test_python_dash_m_rcp() -> None:
    out = subprocess.run([sys.executable, "-m", "rcp", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == EXIT_OK and out.stdout.startswith("rcp "), out
    out = subprocess.run([sys.executable, "-m", "rcp", "-Z", "a", "b"], capture_output=True, text=True, timeout=60)
    assert out.returncode == EXIT_USAGE and "unknown option '-Z'" in out.stderr, out


@pytest.mark.parametrize("value, ok", [("trace", True), ("DEBUG", True), ("", True), ("bogus", False),
                                       ("verbose", False)])
def test_rcp_log_is_checked(value: str, ok: bool, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RCP_LOG", value)
    if ok:
        assert plan("a", "b").options == CopyOptions()
        return
    assert main(["a", "b"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"RCP_LOG='{value}' is not a log level: use one of error, warn, info, debug, trace" in err, err


# -- reporting a finished copy


def test_report_ok_is_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(CopyResult(files_copied=2), ViewOptions(False, 0, False)) == EXIT_OK
    assert capsys.readouterr().err == ""


def test_report_failures_is_exit_1_and_lists_errors(capsys: pytest.CaptureFixture[str]) -> None:
    result = CopyResult(failed=1, errors=[("a\x1b[2Jb", "Permission denied")])
    assert report(result, ViewOptions(False, 0, False)) == EXIT_PARTIAL
    assert capsys.readouterr().err == "rcp: a\\x1b[2Jb: Permission denied\n"
    # With --summary the progress view already listed them.
    assert report(result, ViewOptions(False, 0, True)) == EXIT_PARTIAL
    assert capsys.readouterr().err == ""


# -- exit status of real copies (local rcpds; no mocks)


def rcp_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rcp.cli", *argv], capture_output=True, text=True, timeout=timeout)


def test_successful_copy_exits_0_with_summary(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    out = rcp_cli("--summary", "--no-progress", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "b.txt").read_text() == "alpha"
    assert "rcp: 1 file, 5 B in " in out.stderr and "0 unchanged, 0 kept, 0 failed" in out.stderr
    assert out.stdout == ""


def test_missing_source_exits_1(tmp_path: Path) -> None:
    out = rcp_cli("--no-progress", str(tmp_path / "missing"), str(tmp_path / "dst"))
    assert out.returncode == EXIT_PARTIAL, out.stderr
    assert "rcp: " in out.stderr and "No such file or directory" in out.stderr


def test_unreachable_host_exits_3(tmp_path: Path) -> None:
    out = rcp_cli("--no-progress", "--connect-timeout", "5", "127.0.0.1:1:x", str(tmp_path / "dst"))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert out.stderr.startswith("rcp: ") and "127.0.0.1" in out.stderr


def test_interrupt_exits_130_and_leaves_no_partial_file(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(4 << 30)  # sparse: cheap to make, slow enough to copy as zeros (--no-sparse)
    dst = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "rcp.cli", "--progress", "--no-sparse", str(big), str(dst)],
                            stderr=subprocess.PIPE)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while b"destination" not in seen:  # the live line shows bytes flowing
            chunk = proc.stderr.read1(4096)  # type: ignore[attr-defined]
            assert chunk and time.monotonic() < deadline, f"no progress: {seen[-500:]!r}"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert b"rcp: interrupted" in rest
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big"]  # no temporaries left
