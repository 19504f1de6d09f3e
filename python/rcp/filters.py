"""Filter rules (rsync's include/exclude, matched by the rcpds: cpp/copy/filter_rules.h)
as the CLI and the API take them, checked before anything connects."""

from __future__ import annotations

import os
from collections.abc import Sequence

from rcp import _core
from rcp.errors import UsageError


def check_filters(rules: object) -> list[str]:
    """`rules` as a list of "+ PATTERN" / "- PATTERN" strings, each parsed as the
    rcpds will; raises UsageError naming the first bad one."""
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence) \
            or not all(isinstance(r, str) for r in rules):
        raise UsageError('filters must be a list of rules such as ["- *.o", "+ keep/"]')
    out = list(rules)
    try:
        _core.check_filters(out)
    except (ValueError, _core.RcpError) as exc:
        raise UsageError(str(exc)) from None
    return out


def read_filter_file(path: str) -> list[str]:
    """The rules of a --filter-from file: one a line, "+ " or "- " first;
    blank lines and lines starting with '#' are skipped. "-" reads stdin."""
    try:
        if path == "-":
            import sys
            text = sys.stdin.read()
        else:
            with open(os.path.expanduser(path), encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
    except OSError as exc:
        raise UsageError(f"--filter-from {path!r}: {exc.strerror}") from None
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(("+ ", "- ")):
            raise UsageError(f"--filter-from {path}:{number}: {line!r} is not '+ PATTERN' or '- PATTERN'")
        rules.append(line)
    return rules
