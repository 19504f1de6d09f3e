"""The `rcp` command line: `rcp [OPTIONS] SRC... DST`."""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import NamedTuple

from rcp import __version__
from rcp.daemon import rcpd_path
from rcp.errors import EXIT_CONNECTION, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, ConnectionFailure, UsageError
from rcp.model import TRANSPORTS, CopyOptions, CopyResult
from rcp.operands import resolve_plan
from rcp.jsonout import JsonLines, JsonProgress
from rcp.progress import QUIET, TerminalProgress, error_lines, isatty, kept_line
from rcp.sanitize import printable
from rcp.ssh import SSH_OPTIONS, parse_option_arg, parse_ssh_options

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

_PORT_RANGE = re.compile(r"^\d+(-\d+)?$")

EPILOG = """\
operands (as for scp):
  path                     a local path ('./a:b' for a local name with ':')
  [user@]host:path         a remote path; 'host:' is the remote home
  [user@]host:port:path    through SSH port `port`
  [user@][ipv6]:path       an IPv6 address in brackets ([ipv6]:port:path too)

All sources must be on one host. DST is a directory to copy into when it
exists or ends in '/', else the new name of the single source.

exit status: 0 everything copied or already there unchanged (or left alone as
--update / --ignore-existing asked), 1 an entry failed, or existed and differed and was kept
(see --overwrite), 2 usage error, 3 could not connect (SSH, host key, authentication, rcpd or
deploying it), 130 interrupted.
"""


def _rcpd_version() -> str:
    try:
        out = subprocess.run([str(rcpd_path()), "--version"], capture_output=True, text=True, timeout=10)
    except OSError as exc:
        return f"rcpd not found ({exc.strerror})"
    return out.stdout.strip() or f"rcpd exited {out.returncode}"


def port_range(text: str) -> str:
    """Validates '8000-8999,9100' style port lists (empty = any port)."""
    text = text.strip()
    if not text:
        return ""
    for part in text.split(","):
        part = part.strip()
        if not _PORT_RANGE.match(part):
            raise argparse.ArgumentTypeError(f"bad port range {text!r}: expected ports or ranges like 8000-8999,9100")
        lo, _, hi = part.partition("-")
        low, high = int(lo), int(hi or lo)
        if not (1 <= low <= 65535 and 1 <= high <= 65535) or low > high:
            raise argparse.ArgumentTypeError(f"bad port range {part!r} in {text!r}: ports are 1..65535, low to high")
    return ",".join(p.strip() for p in text.split(","))


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcp",
        usage="%(prog)s [OPTIONS] SRC... DST",
        description="Copy files and directory trees between machines over pinned QUIC, set up through SSH.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("operands", nargs="*", metavar="SRC... DST",
                        help="one or more sources, then the destination (use -- before operands starting with '-')")
    parser.add_argument("--version", action="store_true", help="print the versions of rcp and rcpd, then exit")

    copying = parser.add_argument_group("copying")
    existing = copying.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true",
                          help="replace existing files that differ (default: files with the same size and mtime "
                               "are left as they are, others are kept and reported, exit 1)")
    existing.add_argument("--update", action="store_true",
                          help="replace existing files that differ only when the source's is newer; "
                               "newer ones stay, quietly")
    existing.add_argument("--ignore-existing", action="store_true", help="never touch an existing file")
    copying.add_argument("--checksum", action="store_true",
                         help="compare existing files by content (xxh3-128 on both sides), not size and mtime")
    copying.add_argument("--fsync", action="store_true", help="flush each file and directory to disk before "
                         "finishing (durable after a power cut; slower, most of all for many small files)")
    # scp's habit: accepted and ignored, directories always copy recursively.
    copying.add_argument("-r", "-R", "--recursive", action="store_true", help="accepted for scp compatibility; "
                         "directories are always copied recursively")

    output = parser.add_argument_group("output")
    output.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show the copy's progress on stderr: a live view on a terminal (default there, "
                             "unless -q), plain lines every few seconds elsewhere; then a summary line")
    output.add_argument("--summary", action="store_true", help="print totals and errors at the end")
    output.add_argument("--json", action="store_true",
                        help="write JSON lines on stdout (start, progress, warning, error, result; README.md) "
                             "instead of the view")
    loud = output.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="show info log lines (-vv: debug, -vvv: trace)")
    loud.add_argument("-q", "--quiet", action="store_true", help="show errors only, and no live view by default")

    ssh = parser.add_argument_group("connecting")
    ssh.add_argument("--ssh-config", metavar="FILE", help="read this ssh_config file instead of ~/.ssh/config")
    ssh.add_argument("-i", "--identity", metavar="FILE", action="append", dest="identity_files", default=[],
                     help="private key for SSH authentication (repeatable)")
    ssh.add_argument("-J", "--jump", metavar="[USER@]HOST[:PORT][,...]", dest="proxy_jump",
                     help="reach the remote hosts through these jump hosts, in order (ssh's ProxyJump; 'none' "
                          "ignores the config's); every jump host's key is checked like the host's")
    ssh.add_argument("-o", metavar="KEY=VALUE", action="append", dest="ssh_options", default=[],
                     help="an ssh_config option for the remote hosts, as ssh -o (repeatable): "
                          + ", ".join(SSH_OPTIONS))
    ssh.add_argument("--accept-new-host-keys", action="store_true",
                     help="trust and remember hosts not yet in known_hosts, like StrictHostKeyChecking "
                          "accept-new (changed keys are always refused)")
    ssh.add_argument("--rcpd-path", metavar="PATH", help="rcpd on the remote hosts, used as given (default: 'rcpd' "
                     "on their PATH if it speaks this protocol, else this rcp's own, deployed to the host)")
    ssh.add_argument("--no-deploy", dest="deploy", action="store_false",
                     help="never upload rcpd to a host: run 'rcpd' from the login's PATH")
    ssh.add_argument("--deploy-dir", metavar="DIR",
                     help="remote directory for the deployed rcpd (absolute or relative to the remote home; "
                          "default: ~/.cache/rcp), e.g. when the home is mounted noexec")
    ssh.add_argument("--port-range", metavar="SPEC", type=port_range, default="",
                     help="ports for the source's listener (UDP for QUIC, TCP on the same number), "
                          "e.g. 8000-8999,9100 (default: any)")
    ssh.add_argument("--source-address", metavar="ADDR", action="append", dest="source_addresses", default=[],
                     help="address the destination uses to reach the source (repeatable, tried in order; "
                          "default: the source's SSH address, then the addresses it advertises)")
    ssh.add_argument("--master-address", metavar="ADDR",
                     help="this machine's address as a remote destination reaches it, when the source is local "
                          "(default: the local address of the SSH connection to that host)")
    ssh.add_argument("--relay", action="store_true",
                     help="(or -3) send the data through this machine, as scp -3 does, when the hosts cannot reach "
                          "each other (slower; the data is decrypted here; a warning says so, unless -q)")
    ssh.add_argument("--cc", dest="congestion_control", choices=["bbr", "cubic", "reno"],
                     default=CopyOptions.congestion_control,
                     help="congestion control of the data link (over TCP: the kernel's, where it has it; "
                          f"default: {CopyOptions.congestion_control})")
    ssh.add_argument("--transport", choices=list(TRANSPORTS), default=CopyOptions.transport,
                     help="data link between source and destination: QUIC, TCP+TLS, or auto: QUIC, falling back "
                          f"to TCP when UDP gets no answer (default: {CopyOptions.transport})")
    ssh.add_argument("--fallback-timeout", metavar="SECONDS", type=seconds, default=CopyOptions.fallback_timeout,
                     help="with --transport auto: how long QUIC may go unanswered before TCP is tried "
                          f"(default: {CopyOptions.fallback_timeout:g})")
    ssh.add_argument("--connect-timeout", metavar="SECONDS", type=seconds, default=CopyOptions.connect_timeout,
                     help=f"SSH connection timeout (default: {CopyOptions.connect_timeout:g})")
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parses a command line; options and operands may be interleaved, and
    everything after `--` is an operand. Exits via SystemExit on errors."""
    return _parse(build_parser(), list(argv))


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    # parse_intermixed_args mishandles '--' (Python 3.11), so split there ourselves.
    rest: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, rest = argv[:cut], argv[cut + 1:]
    args = parser.parse_intermixed_args(_scp_relay_flag(parser, argv))
    args.operands = list(args.operands) + rest
    return args


def _scp_relay_flag(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """scp's -3, read as --relay here: declared to argparse, an option that
    looks like a negative number would make it take every "-N" for an option
    ("--connect-timeout -1", an operand "-1"). Not when it is an option's value."""
    takes_value = {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}
    return ["--relay" if a == "-3" and (i == 0 or argv[i - 1] not in takes_value) else a
            for i, a in enumerate(argv)]


@dataclass(frozen=True)
class ViewOptions:
    """How the terminal shows the copy."""

    live: bool  # live progress view
    verbosity: int  # -1 errors only, 0 warnings, 1 info, 2 debug, 3 trace
    summary: bool
    json: bool = False  # JSON lines on stdout, no live view (rcp.jsonout)


class Invocation(NamedTuple):
    sources: list[str]
    destination: str
    options: CopyOptions
    view: ViewOptions


def _existing_file(path: str, what: str) -> str:
    expanded = os.path.expanduser(path)
    if not os.path.exists(expanded) or os.path.isdir(expanded):  # /dev/null is fine
        raise UsageError(f"{what} {path!r} does not exist or is a directory")
    return expanded


def options_from_args(args: argparse.Namespace, *, stderr_is_tty: bool | None = None) -> Invocation:
    """Turns parsed arguments into what `rcp.api.copy` takes and how to show
    it, without starting anything. Raises UsageError."""
    operands = list(args.operands)
    resolve_plan(operands)  # operand syntax and the one-source-host rule, before anything starts
    if stderr_is_tty is None:
        stderr_is_tty = isatty(sys.stderr)
    ssh_options: dict[str, str] = {}
    for text in args.ssh_options:
        key, value = parse_option_arg(text)
        if key.lower() not in {k.lower() for k in ssh_options}:  # as in ssh: the first value given wins
            ssh_options[key] = value
    parse_ssh_options(ssh_options)  # refuse what rcp does not apply before connecting anywhere
    options = CopyOptions(
        overwrite=args.overwrite,
        update=args.update,
        ignore_existing=args.ignore_existing,
        checksum=args.checksum,
        fsync=args.fsync,
        ssh_config=_existing_file(args.ssh_config, "ssh config file") if args.ssh_config else None,
        identity_files=[_existing_file(p, "identity file") for p in args.identity_files],
        accept_new_host_keys=args.accept_new_host_keys,
        proxy_jump=args.proxy_jump or None,
        ssh_options=ssh_options,
        rcpd_path=args.rcpd_path or None,
        deploy=args.deploy,
        deploy_dir=args.deploy_dir or None,
        port_range=args.port_range,
        source_addresses=list(args.source_addresses),
        master_address=args.master_address or None,
        congestion_control=args.congestion_control,
        transport=args.transport,
        fallback_timeout=args.fallback_timeout,
        relay=args.relay,
        connect_timeout=args.connect_timeout,
        verbose=args.verbose,
    )
    live = args.progress if args.progress is not None else (stderr_is_tty and not args.quiet)
    view = ViewOptions(live=bool(live) and not args.json, verbosity=QUIET if args.quiet else args.verbose,
                       summary=args.summary and not args.json, json=args.json)
    return Invocation(operands[:-1], operands[-1], options, view)


def _error(message: str) -> None:
    print(f"rcp: {message}", file=sys.stderr, flush=True)


def report(result: CopyResult, view: ViewOptions) -> int:
    """Exit status of a finished copy; prints its errors unless the summary (or the JSON result) did."""
    if not result.ok and not (view.summary or view.live or view.json):
        for line in error_lines(result):
            _error(line)
        kept = kept_line(result)
        if kept:
            _error(kept)
    return EXIT_OK if result.ok else EXIT_PARTIAL


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = _parse(parser, sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help, or argparse's own usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.version:
        print(f"rcp {__version__} ({_rcpd_version()})")
        return EXIT_OK
    if not args.operands:
        parser.print_usage(sys.stderr)
        _error("missing SRC and DST operands (see rcp --help)")
        return EXIT_USAGE
    try:
        invocation = options_from_args(args)
    except UsageError as exc:
        if args.json:
            JsonLines(sys.stdout).emit("error", role="master", message=printable(exc), fatal=True,
                                       exit_code=EXIT_USAGE, kind="usage")
        else:
            _error(str(exc))
        return EXIT_USAGE

    view = invocation.view
    sink: TerminalProgress | JsonProgress
    if view.json:
        sink = JsonProgress(sys.stdout, stderr=sys.stderr, verbosity=view.verbosity)
        sink.begin(invocation.sources, invocation.destination, __version__)
    else:
        sink = TerminalProgress(sys.stderr, live=view.live, verbosity=view.verbosity, summary=view.summary or None)

    def failed(message: str, code: int, kind: str) -> int:
        if isinstance(sink, JsonProgress):
            sink.fail(message, code, kind)
        else:
            sink.finish(None)
            _error(message)
        return code

    try:
        from rcp.api import copy

        result = copy(invocation.sources, invocation.destination, progress=sink, **asdict(invocation.options))
    except KeyboardInterrupt:
        return failed("interrupted; the destination keeps only files that were completely copied",
                      EXIT_INTERRUPTED, "interrupted")
    except UsageError as exc:
        return failed(printable(exc), EXIT_USAGE, "usage")
    except ConnectionFailure as exc:
        return failed(printable(exc), EXIT_CONNECTION, "connection")
    except Exception as exc:
        from rcp import RcpError

        if isinstance(exc, (RcpError, OSError)):  # the link or a daemon failed outside the usual paths
            return failed(printable(exc), EXIT_CONNECTION, "connection")
        if isinstance(sink, JsonProgress):
            sink.fail(f"internal error: {printable(exc)}", 1, "internal")
        else:
            sink.finish(None)
        raise
    sink.finish(result)  # a no-op when the copy already finished it
    return report(result, view)


if __name__ == "__main__":
    sys.exit(main())
