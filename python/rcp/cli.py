"""The `rcp` command line."""

from __future__ import annotations

import argparse
import subprocess
import sys

from rcp import __version__
from rcp.daemon import rcpd_path

EXIT_OK = 0
EXIT_USAGE = 2


def _rcpd_version() -> str:
    try:
        out = subprocess.run([str(rcpd_path()), "--version"], capture_output=True, text=True, timeout=10)
    except OSError as exc:
        return f"rcpd not found ({exc.strerror})"
    return out.stdout.strip() or f"rcpd exited {out.returncode}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcp",
        description="Copy files and directory trees between machines over pinned QUIC, set up through SSH.",
    )
    parser.add_argument("--version", action="store_true", help="print the versions of rcp and rcpd, then exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"rcp {__version__} ({_rcpd_version()})")
        return EXIT_OK
    parser.print_usage(sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
