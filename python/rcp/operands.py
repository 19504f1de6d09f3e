"""Command-line operands, written as for scp.

    path                       a local path
    [user@]host:path           a path on host ("" means the remote home)
    [user@][ipv6]:path         an IPv6 literal in brackets

As in scp, there is no port in an operand: `host:2222:x` is the remote file
`2222:x`; the SSH port is -P (CopyOptions.port) or the ssh config's.

An operand is local when it starts with '/', './' or '../', or when no ':'
comes before its first '/'; so `./a:b`, `dir/a:b` and `/tmp/x:y` are local
files, and a local file called `a:b` is written `./a:b`.

A remote path travels as written; the rcpd on that host resolves it as scp
means it (cpp/base/remote_path.h): relative to the login's home, `~` and
`~/x` in that home, `~user/x` in the user's home (from its /etc/passwd),
`/abs` as is, and on a source a wildcard (`*`, `?`, `[...]`) expands there
with glob(3)'s meaning, by no shell. A local path is the local shell's
business and is taken literally.
"""

from __future__ import annotations

import os
import posixpath

from rcp.errors import UsageError
from rcp.model import Endpoint

REMOTE_HOME = "."


def _is_local(text: str) -> bool:
    if text.startswith(("/", "./", "../")):
        return True
    colon = text.find(":")
    if colon < 0:
        return True
    slash = text.find("/")
    return 0 <= slash < colon


def _hint(text: str) -> str:
    return f"; if {text!r} is a local file, write it as './{text}'"


def _split_user(head: str, text: str) -> tuple[str | None, str]:
    """Splits `user@host` at the last '@' (as scp does)."""
    if "@" not in head:
        return None, head
    user, host = head.rsplit("@", 1)
    if not user:
        raise UsageError(f"empty user name before '@' in {text!r}")
    if user.startswith("-"):
        raise UsageError(f"user name may not start with '-' in {text!r}")
    if _undecodable(user):
        raise UsageError(f"user name of {text!r} is not valid UTF-8")
    return user, host


def _undecodable(text: str) -> bool:
    """Holds a byte that was not UTF-8 (a surrogate escape from os.fsdecode)."""
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _check_host(host: str, text: str) -> None:
    if _undecodable(host):
        raise UsageError(f"host name of {text!r} is not valid UTF-8")
    if not host:
        raise UsageError(f"empty host name in {text!r}{_hint(text)}")
    if host.startswith("-"):
        raise UsageError(f"host name may not start with '-' in {text!r}{_hint(text)}")
    bad = sorted({c for c in host if c.isspace() or c in "[]@/" or ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise UsageError(f"invalid character(s) {shown} in host name of {text!r}{_hint(text)}")


def parse_operand(text: str) -> Endpoint:
    """Parses one operand into an Endpoint (host None = local). Raises UsageError."""
    if not isinstance(text, str):
        raise UsageError(f"operand must be a string, not {type(text).__name__}")
    if not text:
        raise UsageError("empty operand")
    if "\0" in text:
        raise UsageError(f"NUL character in operand {text!r}")
    try:
        # Paths travel as their exact bytes (surrogate escapes from argv or
        # os.fsdecode become the raw bytes again); other lone surrogates stand
        # for no byte at all.
        os.fsencode(text)
    except UnicodeError:
        raise UsageError(f"operand {text!r} is not a valid file name (it holds a lone surrogate)") from None
    if _is_local(text):
        return Endpoint(path=text)

    colon = text.index(":")
    head = text[:colon]
    bracket = head.find("[")
    if bracket >= 0 and (bracket == 0 or head[bracket - 1] == "@"):
        # [ipv6]:path, user@[ipv6]:path: the first ':' is inside the brackets.
        user = _split_user(head[:bracket], text)[0] if bracket else None
        close = text.find("]", bracket)
        slash = text.find("/", bracket)
        if close < 0 or 0 <= slash < close:
            raise UsageError(f"unclosed '[' in {text!r}{_hint(text)}")
        if text[close + 1:close + 2] != ":":
            raise UsageError(f"expected ':' after ']' in {text!r}{_hint(text)}")
        host = text[bracket + 1:close]
        rest = text[close + 2:]
    else:
        user, host = _split_user(head, text)
        rest = text[colon + 1:]
    _check_host(host, text)
    return Endpoint(path=rest or REMOTE_HOME, host=host, user=user)


_GLOB_CHARS = frozenset("*?[")


def _rest(path: str) -> str:
    """The part of a remote operand the rcpd may read as a pattern: not `~user`."""
    return path.partition("/")[2] if path.startswith("~") else path


def _live_wildcard(text: str) -> bool:
    """A '*', '?' or '[' that no backslash escapes (as fnmatch reads it)."""
    escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in _GLOB_CHARS:
            return True
    return False


def _unescape(text: str) -> str:
    """A pattern read literally: `a\\*b` names `a*b` (a trailing backslash stays)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def has_wildcard(path: str, *, local: bool = False) -> bool:
    """True when a source operand may stand for several roots: a remote one
    holding an unescaped wildcard anywhere (the rcpd expands it). A local
    path never does: the local shell expanded it already."""
    return not local and _live_wildcard(_rest(path))


def root_rule(path: str, *, local: bool = False) -> tuple[str, str]:
    """What the destination lets the source call the root of `path`
    (docs/security.md, scp's CVE-2019-6111): ("name", last component),
    ("glob", pattern) when that component is a live wildcard, or ("any", "")
    when the operand names no component (`host:`, `host:.`, `host:~`, `/`).
    A local path is literal, so always a name; a remote one is read as the
    rcpd reads it: when it holds any wildcard character, escapes in a
    literal last component are dropped (`a\\*b` names `a*b`)."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last in ("", ".", ".."):
        return "any", ""
    if local:
        return "name", last
    if last.startswith("~") and "/" not in path.rstrip("/"):
        return "any", ""
    if _live_wildcard(last):
        return "glob", last
    if any(c in _GLOB_CHARS for c in _rest(path)):
        return "name", _unescape(last)
    return "name", last


def _where(ep: Endpoint) -> str:
    if ep.is_local:
        return "the local host"
    host = f"[{ep.host}]" if ep.host and ":" in ep.host else ep.host
    return f"{ep.user + '@' if ep.user else ''}{host}{':' + str(ep.port) if ep.port else ''}"


def _host_key(ep: Endpoint) -> tuple[str | None, str | None, int | None]:
    return (ep.host.lower() if ep.host else None, ep.user, ep.port)


def resolve_plan(operands: list[str]) -> tuple[list[Endpoint], Endpoint]:
    """Parses SRC... DST; checks there is at least one source and that all
    sources are on one host (same user and port too). Raises UsageError."""
    if isinstance(operands, str):
        raise UsageError("operands must be a list of strings")
    if len(operands) < 2:
        raise UsageError("need at least one SRC and a DST" if operands else "missing SRC and DST operands")
    endpoints = [parse_operand(op) for op in operands]
    sources, destination = endpoints[:-1], endpoints[-1]
    first = sources[0]
    for text, other in zip(operands[1:-1], sources[1:]):
        if _host_key(other) != _host_key(first):
            raise UsageError(f"all sources must be on one host, but {operands[0]!r} is on {_where(first)} and "
                             f"{text!r} on {_where(other)}; "
                             f"rcp copies from one source host at a time: run it once per source host")
    for text, src in zip(operands[:-1], sources):
        if _host_key(src) == _host_key(destination) and _inside(destination.path, src.path, src.is_local):
            raise UsageError(f"cannot copy {text!r} into itself or onto itself ({operands[-1]!r})")
    return sources, destination


def _remote_key(path: str) -> str:
    """A remote path as the rcpd will read it, as far as the master can tell
    without the remote home: `~` and `~/x` are the home-relative `.` and `x`."""
    if path == "~" or path.startswith("~/"):
        path = "." + path[1:]
    return posixpath.normpath(path)


def _inside(dst: str, src: str, local: bool) -> bool:
    """DST is SRC or below it on the same host: the copy would feed on itself
    (or replace a file by itself). Local paths are resolved (symlinks, ..);
    remote ones compared as the rcpd will read them, home-relative."""
    d, s = (os.path.realpath(os.path.expanduser(p)) if local else _remote_key(p) for p in (dst, src))
    if s == "." and not local:  # the remote home holds every relative path
        return not (d == ".." or d.startswith(("/", "../", "~")))  # ~user: another home
    return d == s or (s != "/" and d.startswith(s.rstrip("/") + "/"))
