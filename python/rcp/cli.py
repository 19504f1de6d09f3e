"""The `rcp` command line: `rcp [OPTIONS] SRC... DST`."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn, TextIO

from rcp import __version__
from rcp.daemon import rcpd_path
from rcp.checks import CONGESTION_CONTROLS, check_options, check_port_range
from rcp.errors import EXIT_CONNECTION, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, ConnectionFailure, UsageError
from rcp.filters import check_filters, read_filter_file
from rcp.model import PLAN_ACTIONS, TRANSPORTS, CopyOptions, CopyResult
from rcp.operands import resolve_plan
from rcp.jsonout import JsonLines, JsonProgress
from rcp.orchestration import SHOWN, TRACE
from rcp.progress import QUIET, TerminalProgress, error_lines, isatty, kept_line
from rcp.sanitize import printable
from rcp.ssh import SSH_OPTIONS, parse_option_arg, parse_ssh_options
from rcp.trace import mark

mark("cli imported")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

EPILOG = """\
operands (as for scp):
  path                     a local path ('./a:b' for a local name with ':')
  [user@]host:path         a remote path; 'host:' is the remote home
  [user@][ipv6]:path       an IPv6 address in brackets
  The SSH port is -P (or the ssh config's); 'host:2222:x' is the remote file '2222:x', as in scp.

All sources must be on one host. DST is a directory to copy into when it
exists or ends in '/', else the new name of the single source.

examples:
  rcp -r data/ host:backup/               a tree to the remote home's backup/
  rcp -P 2222 -i ~/.ssh/lab host:/var/log/syslog .
  rcp -l 8192 big.iso host:               at most 8192 Kbit/s (1 MiB/s)
  rcp -3 src-host:data dst-host:data      the data through this machine
  rcp --update -v host:photos/ photos/    only newer files; log what happens
  python -m rcp ...                       the same command

exit status: 0 everything copied or already there unchanged (or left alone as
--update / --ignore-existing asked), 1 an entry failed, or existed and differed and was kept
(see --overwrite), 2 usage error, 3 could not connect (SSH, host key, authentication, rcpd or
deploying it), 130 interrupted.
Environment: RCP_LOG=error|warn|info|debug|trace, the rcpds' log level (-v wins).
"""


def _rcpd_version() -> str:
    try:
        out = subprocess.run([str(rcpd_path()), "--version"], capture_output=True, text=True, timeout=10)
    except OSError as exc:
        return f"rcpd not found ({exc.strerror})"
    return out.stdout.strip() or f"rcpd exited {out.returncode}"


def port_range(text: str) -> str:
    """Validates '8000-8999,9100' style port lists (empty = any port)."""
    try:
        return check_port_range(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


class _FilterAction(argparse.Action):
    """--exclude, --include and --filter-from share one list, in command-line order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        rules = list(getattr(namespace, self.dest, None) or [])
        rules.append((str(self.const), str(values)))
        setattr(namespace, self.dest, rules)


def _filters(args: argparse.Namespace) -> list[str]:
    rules: list[str] = []
    for prefix, value in getattr(args, "filter_args", None) or []:
        rules.extend(read_filter_file(value) if not prefix else [prefix + value])
    return check_filters(rules)


def ssh_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (1..65535): {text!r}")
    return int(text)


MAX_KBIT = 100 * 1024 * 1024  # scp's bound for -l


def kbit(text: str) -> int:
    """-l: Kbit/s as scp counts them (1 Kbit = 1024 bits), 1..MAX_KBIT."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_KBIT:
        raise argparse.ArgumentTypeError(f"not a bandwidth in Kbit/s (1..{MAX_KBIT}): {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcp",
        usage="%(prog)s [-346pqrv] [-F ssh_config] [-i identity_file] [-J destination] [-l limit] [-o ssh_option]\n"
              "           [-P port] [OPTIONS] SRC... DST",
        description="Copy files and directory trees between machines over pinned QUIC, set up through SSH. "
                    "scp's options mean what they mean in scp; short ones combine (-rpv, -P2222).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("operands", nargs="*", metavar="SRC... DST",
                        help="one or more sources, then the destination (use -- before operands starting with '-')")
    parser.add_argument("--version", action="store_true", help="print the versions of rcp and rcpd, then exit")

    ssh = parser.add_argument_group("connection")
    ssh.add_argument("-P", "--port", type=ssh_port, metavar="PORT",
                     help="SSH port of the remote hosts, as scp -P (default: the ssh config's, else 22)")
    ssh.add_argument("-F", "--ssh-config", metavar="FILE", help="read this ssh_config file instead of ~/.ssh/config")
    ssh.add_argument("-i", "--identity", metavar="FILE", action="append", dest="identity_files", default=[],
                     help="private key for SSH authentication (repeatable)")
    ssh.add_argument("-J", "--jump", metavar="[USER@]HOST[:PORT][,...]", dest="proxy_jump",
                     help="reach the remote hosts through these jump hosts, in order (ssh's ProxyJump; 'none' "
                          "ignores the config's); every jump host's key is checked like the host's")
    ssh.add_argument("-o", metavar="KEY=VALUE", action="append", dest="ssh_options", default=[],
                     help="an ssh_config option for the remote hosts, as ssh -o (repeatable): "
                          + ", ".join(SSH_OPTIONS))
    # -4, -6 and -3 reach argparse as their long names (_short_flags).
    family = ssh.add_mutually_exclusive_group()
    family.add_argument("--ipv4", dest="address_family", action="store_const", const="inet", default="any",
                        help="(-4) reach SSH hosts over IPv4 only")
    family.add_argument("--ipv6", dest="address_family", action="store_const", const="inet6",
                        help="(-6) reach SSH hosts over IPv6 only")
    ssh.add_argument("--relay", action="store_true",
                     help="(-3) send the data through this machine, as scp -3 does, when the hosts cannot reach "
                          "each other (slower; the data is decrypted here; a warning says so, unless -q)")
    ssh.add_argument("--accept-new-host-keys", action="store_true",
                     help="trust and remember hosts not yet in known_hosts, like StrictHostKeyChecking "
                          "accept-new (changed keys are always refused)")
    ssh.add_argument("--connect-timeout", metavar="SECONDS", type=seconds, default=CopyOptions.connect_timeout,
                     help=f"SSH connection timeout (default: {CopyOptions.connect_timeout:g})")
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
    ssh.add_argument("--transport", choices=list(TRANSPORTS), default=CopyOptions.transport,
                     help="data link between source and destination: QUIC, TCP+TLS, or auto: QUIC, falling back "
                          f"to TCP when UDP gets no answer (default: {CopyOptions.transport})")
    ssh.add_argument("--fallback-timeout", metavar="SECONDS", type=seconds, default=CopyOptions.fallback_timeout,
                     help="with --transport auto: how long QUIC may go unanswered before TCP is tried "
                          f"(default: {CopyOptions.fallback_timeout:g})")
    ssh.add_argument("--cc", dest="congestion_control", choices=list(CONGESTION_CONTROLS),
                     default=CopyOptions.congestion_control,
                     help="congestion control of the data link (over TCP: the kernel's, where it has it; "
                          f"default: {CopyOptions.congestion_control})")
    ssh.add_argument("-l", "--limit", metavar="KBIT", type=kbit, dest="limit_kbit",
                     help="limit the bandwidth to KBIT Kbit/s (1 Kbit = 1024 bits, as scp), paced at the source")

    copying = parser.add_argument_group("what to copy")
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
    copying.add_argument("--partial", action="store_true",
                         help="keep what verified of an interrupted large file (hidden .rcp-partial-* files "
                              "beside it) and resume it: only the missing or differing blocks are sent")
    copying.add_argument("--fsync", action="store_true", help="flush each file and directory to disk before "
                         "finishing (durable after a power cut; slower, most of all for many small files)")
    # Filters, --delete and --dry-run, as rsync's (README, "Filters, --delete and --dry-run").
    copying.add_argument("--exclude", metavar="PATTERN", action=_FilterAction, const="- ", dest="filter_args",
                         help="leave out what PATTERN matches (rsync's --exclude; '*', '?', '[..]', '**'; a leading "
                              "'/' anchors to the copied directory, a trailing '/' matches directories only)")
    copying.add_argument("--include", metavar="PATTERN", action=_FilterAction, const="+ ", dest="filter_args",
                         help="keep what PATTERN matches even if a later --exclude matches it (rules apply in the "
                              "order given; the first that matches decides)")
    copying.add_argument("--filter-from", metavar="FILE", action=_FilterAction, const="", dest="filter_args",
                         help="rules from FILE, one a line: '- PATTERN' or '+ PATTERN' ('#' comments; '-': stdin)")
    copying.add_argument("--delete", action="store_true",
                         help="remove destination entries under each copied directory that the source does not "
                              "have (excluded ones stay), only when nothing failed")
    copying.add_argument("--delete-excluded", action="store_true",
                         help="with --delete (implied): remove excluded entries at the destination too")
    copying.add_argument("-n", "--dry-run", action="store_true",
                         help="write and delete nothing; print what the copy would do (counts; each entry with -v)")
    # What of each file besides content, mode and mtime (rsync -aHAXS's set).
    copying.add_argument("--no-sparse", dest="sparse", action="store_false",
                         help="send a file's holes as zeros (default: holes found with SEEK_DATA/SEEK_HOLE are "
                              "neither sent nor written, as rsync -S)")
    copying.add_argument("-H", "--hard-links", action="store_true",
                         help="names sharing an inode at the source share one at the destination; the data "
                              "crosses once (rsync -H)")
    copying.add_argument("--owner", action=argparse.BooleanOptionalAction, default=None,
                         help="give entries the source's owner, by name (default: when the destination's rcpd "
                              "runs as root, as rsync -a and cp -a)")
    copying.add_argument("--group", action=argparse.BooleanOptionalAction, default=None,
                         help="give entries the source's group, by name (default: as --owner)")
    copying.add_argument("--numeric-ids", action="store_true",
                         help="map owners and groups by number, not by name (rsync --numeric-ids)")
    copying.add_argument("-X", "--xattrs", action="store_true",
                         help="copy user.* extended attributes (and trusted.* when both rcpds run as root) (rsync -X)")
    copying.add_argument("--acls", action="store_true",
                         help="copy POSIX ACLs (as their attributes; named users and groups by number) (rsync -A)")
    copying.add_argument("--keep-capabilities", action="store_true",
                         help="copy security.capability too (file capabilities grant privilege: off by default)")
    copying.add_argument("-L", "--dereference", action="store_true",
                         help="copy what symlinks point to, not the links; loops are reported (rsync -L)")
    # scp's habits: accepted, and what they ask for is what rcp always does.
    copying.add_argument("-r", "-R", "--recursive", action="store_true", help="accepted for scp compatibility; "
                         "directories are always copied recursively")
    copying.add_argument("-p", "--preserve", action="store_true", help="accepted for scp compatibility; "
                         "modification times and modes are always preserved")

    scale = parser.add_argument_group("sharded copy over many hosts (docs/scale-out.md)")
    scale.add_argument("--source-hosts", metavar="[USER@]HOST[=ADDR],...",
                       help="copy SRC_PATH (no host part, on storage every one of these sees) sharded over these "
                            "hosts; ADDR: where the destinations reach that host")
    scale.add_argument("--destination-hosts", metavar="[USER@]HOST,...",
                       help="the hosts that write into the directory DST_PATH (on storage every one of them "
                            "sees): the copy is DST_PATH/<name of SRC_PATH>, as with rcp SRC DST/")
    scale.add_argument("--shards", metavar="N", type=int, help="cut the tree into N shards (default: one per pair)")
    scale.add_argument("--dask", metavar="SCHEDULER",
                       help="run each shard as a task on this Dask scheduler's workers (python3-distributed; "
                            "the workers need rcp and the SSH configuration)")

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
                      help="log what happens: -v the SSH phase and info, -vv debug, -vvv trace (each chunk sent)")
    loud.add_argument("-q", "--quiet", action="store_true", help="show errors only, and no live view by default")
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
    args = parser.parse_intermixed_args(_short_flags(parser, argv))
    args.operands = list(args.operands) + rest
    return args


# scp's digit flags. Declared to argparse as such, they would make it read
# every "-N" as an option, so "--connect-timeout -1" would lose its value.
DIGIT_FLAGS = {"3": "--relay", "4": "--ipv4", "6": "--ipv6"}


def _short_flags(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Short options as scp reads them (getopt): clusters split (-rpv,
    -4P2222), digit flags named, and any unknown one a usage error naming
    it, never an operand ("-3" was once taken for a file). A value of an
    option that takes one passes as it is."""
    flags = {s[1] for a in parser._actions if a.nargs == 0 for s in a.option_strings if len(s) == 2}
    valued = {s[1] for a in parser._actions if a.nargs != 0 for s in a.option_strings if len(s) == 2}
    takes_value = {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}
    out: list[str] = []
    value_next = False
    for arg in argv:
        if value_next or not arg.startswith("-") or arg == "-" or arg.startswith("--"):
            out.append(arg)
            value_next = not value_next and arg in takes_value
            continue
        body = arg[1:]
        for i, c in enumerate(body):
            if c in DIGIT_FLAGS:
                out.append(DIGIT_FLAGS[c])
            elif c in flags:
                out.append("-" + c)
            elif c in valued:  # the rest is its value (-P2222), else the next argument is
                out.append("-" + body[i:])
                value_next = i + 1 == len(body)
                break
            else:
                shown = f" (in {arg!r})" if len(body) > 1 else ""
                parser.error(f"unknown option '-{c}'{shown}; operands starting with '-' go after '--'")
    return out


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


class Sharding(NamedTuple):
    """--source-hosts, --destination-hosts, --shards, --dask."""

    source_hosts: list[str]
    destination_hosts: list[str]
    shards: int | None
    dask: str | None


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
        partial=args.partial,
        fsync=args.fsync,
        filters=_filters(args),
        delete=args.delete or args.delete_excluded,
        delete_excluded=args.delete_excluded,
        dry_run=args.dry_run,
        sparse=args.sparse,
        hard_links=args.hard_links,
        owner=args.owner,
        group=args.group,
        numeric_ids=args.numeric_ids,
        xattrs=args.xattrs,
        acls=args.acls,
        keep_capabilities=args.keep_capabilities,
        dereference=args.dereference,
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
        port=args.port,
        address_family=args.address_family,
        bandwidth_limit=args.limit_kbit * 128 if args.limit_kbit else 0,
    )
    check_options(options)
    live = args.progress if args.progress is not None else (stderr_is_tty and not args.quiet)
    view = ViewOptions(live=bool(live) and not args.json, verbosity=QUIET if args.quiet else args.verbose,
                       summary=args.summary and not args.json, json=args.json)
    return Invocation(operands[:-1], operands[-1], options, view)


def sharding_from_args(args: argparse.Namespace) -> Sharding | None:
    """The sharded copy's options, checked; None for an ordinary copy."""
    if not args.source_hosts and not args.destination_hosts:
        if args.shards is not None or args.dask:
            raise UsageError("--shards and --dask need --source-hosts and --destination-hosts")
        return None
    if not args.source_hosts or not args.destination_hosts:
        raise UsageError("a sharded copy needs both --source-hosts and --destination-hosts")
    if len(args.operands) != 2:
        raise UsageError("a sharded copy takes exactly SRC_PATH and DST_PATH")
    if args.shards is not None and args.shards < 1:
        raise UsageError("--shards must be at least 1")
    from rcp.scaleout import parse_hosts

    parse_hosts(args.source_hosts, "--source-hosts")
    parse_hosts(args.destination_hosts, "--destination-hosts")
    return Sharding(args.source_hosts.split(","), args.destination_hosts.split(","), args.shards, args.dask)


def _error(message: str) -> None:
    print(f"rcp: {message}", file=sys.stderr, flush=True)


def print_plan(result: CopyResult, verbose: bool, out: TextIO) -> None:
    """A dry run's plan: one line per entry with -v, the counts always."""
    counts = dict.fromkeys(PLAN_ACTIONS, 0)
    for entry in result.plan:
        counts[entry.action] += 1
        if verbose:
            size = f" ({entry.size} bytes)" if entry.size else ""
            print(f"{entry.action:<9} {printable(entry.path)}{size}", file=out)
    more = f" (and {result.plan_omitted} entries not listed)" if result.plan_omitted else ""
    print(f"dry run, nothing written: {counts['create']} to create, {counts['update']} to update, "
          f"{counts['unchanged']} unchanged, {counts['kept']} kept, {counts['ignored']} left alone, "
          f"{counts['delete']} to delete{more}", file=out, flush=True)


def report(result: CopyResult, view: ViewOptions) -> int:
    """Exit status of a finished copy; prints its errors unless the summary (or the JSON result) did."""
    if not result.ok and not (view.summary or view.live or view.json):
        for line in error_lines(result):
            _error(line)
        kept = kept_line(result)
        if kept:
            _error(kept)
    return EXIT_OK if result.ok else EXIT_PARTIAL


# logging's levels for the CLI's verbosity (-q, default, -v, -vv, -vvv).
_LOGGING_LEVEL = {QUIET: logging.ERROR, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: TRACE}
_LEVEL_NAME = {logging.ERROR: "error", logging.WARNING: "warn", logging.INFO: "info", logging.DEBUG: "debug",
               TRACE: "trace"}


class SinkHandler(logging.Handler):
    """The master's own log records (rcp.ssh, rcp.orchestration, ...) shown
    through the copy's view, tagged with where they come from; those the
    view has shown already (rcpd lines, marked SHOWN) are skipped."""

    def __init__(self, sink: TerminalProgress | JsonProgress) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, SHOWN, False):
            return
        origin = record.name.removeprefix("rcp.").removeprefix("rcp") or "master"
        if origin in ("orchestration", "api", "daemon", "transfer"):
            origin = "master"
        level = _LEVEL_NAME.get(record.levelno, "info" if record.levelno > logging.DEBUG else "trace")
        try:
            self.sink.log(origin, level, record.getMessage())
        except Exception:  # noqa: BLE001 - logging must not fail the copy
            self.handleError(record)


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
        sharding = sharding_from_args(args)
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
    logger = logging.getLogger("rcp")
    handler = SinkHandler(sink)
    saved_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(_LOGGING_LEVEL[max(QUIET, min(view.verbosity, 3))])
    try:
        return _run(invocation, sink, sharding)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved_level)
        mark("cli done")


def _run(invocation: Invocation, sink: TerminalProgress | JsonProgress, sharding: Sharding | None = None) -> int:
    view = invocation.view

    def failed(message: str, code: int, kind: str) -> int:
        if isinstance(sink, JsonProgress):
            sink.fail(message, code, kind)
        else:
            sink.finish(None)
            _error(message)
        return code

    try:
        from rcp.api import copy

        if sharding is not None:
            result = _copy_sharded(invocation, sharding, sink)
        else:
            result = copy(invocation.sources, invocation.destination, progress=sink, options=invocation.options)
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
    if invocation.options.dry_run and not view.json:  # --json: the plan went as `plan` lines
        print_plan(result, view.verbosity >= 1, sys.stdout)
    return report(result, view)


def _copy_sharded(invocation: Invocation, sharding: Sharding, sink: TerminalProgress | JsonProgress) -> CopyResult:
    from rcp.api import copy

    client = None
    if sharding.dask:
        try:
            dist: Any = importlib.import_module("distributed")  # untyped to mypy
        except ImportError as exc:
            raise UsageError(f"--dask needs Dask distributed (Debian: python3-distributed): {exc}") from exc
        client = dist.Client(sharding.dask, timeout=invocation.options.connect_timeout)
    try:
        return copy(invocation.sources[0], invocation.destination, progress=sink, options=invocation.options,
                    source_hosts=sharding.source_hosts, destination_hosts=sharding.destination_hosts,
                    client=client, shards=sharding.shards)
    finally:
        if client is not None:
            client.close()


def run() -> NoReturn:
    """The `rcp` command: main(), then out without the interpreter's teardown of
    every module and object (15-20 ms of a 0.4 s one-file copy), as nothing is
    left to do but flush what was printed."""
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: what Python's own exit gives it
            code = code or 120
    os._exit(code)


if __name__ == "__main__":
    run()
