"""Progress views: what the master shows while both rcpds work.

A ProgressSink receives, from the master's relay threads, the latest
Progress of each side (source, destination) and their log lines, and at the
end the CopyResult; a sink may also have `phase(text)`, which the master
calls with what it is doing before the first progress ("connecting to
host"). Implementations:

- NullProgress: ignores everything.
- TerminalProgress (rcp.terminal): log lines on a stream (stderr), filtered
  by verbosity, tagged with their side and sanitised; optionally a live view
  of the copy as a whole (rich when available and the stream is a TTY, else
  a plain line rewritten in place, or plain lines every few seconds when the
  stream is not a terminal), and a one-line summary at the end.
- NotebookProgress (rcp.notebook): the same view as HTML updated in place.
- JsonProgress (rcp.jsonout): JSON lines, for `rcp --json`.

This module holds what they share: formatters, and the Aggregator, which
turns both sides' reports into one Overall figure. Everything takes an
injectable clock and stream, so it can be tested deterministically.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol, runtime_checkable

from rcp.errors import UsageError
from rcp.model import CopyResult, Progress
from rcp.sanitize import printable

Clock = Callable[[], float]

ROLES = ("source", "destination")
RATE_WINDOW = 5.0  # seconds of history behind the rate estimate
MIN_INTERVAL = 0.1  # at most ~10 live updates per second
MAX_ERRORS_SHOWN = 100

# Log levels as rcpd names them, ranked against the verbosity (-1 quiet, 0 default, 1 -v, 2 -vv, 3 -vvv).
# "notice" is the master's own (a deploy of rcpd): shown unless -q.
LEVEL_RANK = {"error": -1, "warn": 0, "warning": 0, "notice": 0, "info": 1, "debug": 2, "trace": 3}
QUIET: int = -1
DEFAULT: int = 0
INFO: int = 1
DEBUG: int = 2


@runtime_checkable
class ProgressSink(Protocol):
    def start(self) -> None: ...
    def update(self, p: Progress) -> None: ...
    def log(self, role: str, level: str, text: str) -> None: ...
    def finish(self, result: CopyResult | None) -> None: ...


class NullProgress:
    """Shows nothing."""

    def start(self) -> None:
        pass

    def update(self, p: Progress) -> None:
        pass

    def log(self, role: str, level: str, text: str) -> None:
        pass

    def finish(self, result: CopyResult | None) -> None:
        pass


# ---------------------------------------------------------------------------
# Formatters

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(n: float) -> str:
    """1023 -> '1023 B', 1536 -> '1.5 KiB', 123456789 -> '118 MiB' (binary units, 3 significant digits)."""
    if n is None or not math.isfinite(n):
        return "?"
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1024:
        return f"{sign}{int(n)} B"
    value = float(n)
    for unit in _UNITS[1:]:
        value /= 1024
        text = f"{value:.1f}" if value < 99.95 else f"{value:.0f}"
        if float(text) < 1024 or unit == _UNITS[-1]:
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")


def format_rate(bytes_per_second: float | None) -> str:
    """Bytes per second as '12.3 MiB/s'; '--' when unknown."""
    if bytes_per_second is None or not math.isfinite(bytes_per_second) or bytes_per_second < 0:
        return "--"
    return f"{format_bytes(bytes_per_second)}/s"


def format_duration(seconds: float | None) -> str:
    """0.42 -> '0.4s', 42 -> '42s', 62 -> '1m02s', 3723 -> '1h02m'; '--' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--"
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole // 60 % 60:02d}m"


def format_count_rate(per_second: float | None, unit: str = "files") -> str:
    """Files per second as '12 files/s' (one decimal below 10); '--' when unknown."""
    if per_second is None or not math.isfinite(per_second) or per_second < 0:
        return "--"
    return f"{per_second:.1f} {unit}/s" if per_second < 9.95 else f"{per_second:.0f} {unit}/s"


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters in the middle ('dir/.../name'): the ends of a path say most."""
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    head = (width - 3) // 3
    return text[:head] + "..." + text[len(text) - (width - 3 - head):]


def format_eta(remaining_bytes: float | None, bytes_per_second: float | None) -> str:
    """Time left at the current rate, as format_duration; '--' when unknown or stalled."""
    if remaining_bytes is None or remaining_bytes < 0 or not bytes_per_second or bytes_per_second <= 0:
        return "--"
    return format_duration(math.ceil(remaining_bytes / bytes_per_second))


# ---------------------------------------------------------------------------
# Aggregation of both sides' updates


class RateMeter:
    """Moving average of a growing byte count over the last `window` seconds."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> None:
        if self._samples and (total < self._samples[-1][1] or now < self._samples[-1][0]):
            self._samples.clear()  # counter or clock went back: start over
        if self._samples and now == self._samples[-1][0]:
            self._samples.pop()
        self._samples.append((now, total))
        # Keep one sample at or before the window's start, so the window stays full.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Bytes per second, or None with fewer than two samples."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None


@dataclass(frozen=True)
class SideStatus:
    """What the view shows for one side."""

    role: str
    bytes_done: int
    bytes_total: int  # 0 = not known yet (the source is still walking)
    files_done: int
    files_total: int
    rate: float | None  # bytes per second
    eta: float | None  # seconds
    current: str = ""  # the file in flight, as this side names it

    @property
    def fraction(self) -> float | None:
        if self.bytes_total <= 0:
            return None
        return min(1.0, self.bytes_done / self.bytes_total)

    def describe(self) -> str:
        if self.bytes_total > 0:
            nbytes = f"{format_bytes(self.bytes_done)}/{format_bytes(self.bytes_total)}"
            pct = f" ({100 * (self.fraction or 0):.0f}%)"
        else:
            nbytes, pct = format_bytes(self.bytes_done), ""
        files = f"{self.files_done}/{self.files_total}" if self.files_total > 0 else f"{self.files_done}"
        return (f"{self.role} {nbytes}{pct}, {files} files, {format_rate(self.rate)}, "
                f"ETA {format_duration(self.eta)}" + (f", {self.current}" if self.current else ""))


@dataclass(frozen=True)
class Overall:
    """The copy as a whole: the destination's verified progress against the
    source's totals, one rate and one ETA."""

    bytes_done: int
    bytes_total: int  # 0 = not known yet (the source is still walking)
    files_done: int
    files_total: int
    bytes_per_second: float | None
    files_per_second: float | None
    eta: float | None  # seconds
    current: str  # the file in flight ("" = none known)
    elapsed: float  # seconds since the view started

    @property
    def fraction(self) -> float | None:
        if self.bytes_total <= 0:
            return 1.0 if self.files_total > 0 and self.files_done >= self.files_total else None
        return min(1.0, self.bytes_done / self.bytes_total)

    def figures(self) -> list[str]:
        """The view's parts, most important first: percent, bytes, files, rates, ETA."""
        frac = self.fraction
        if self.bytes_total > 0:
            nbytes = f"{format_bytes(self.bytes_done)}/{format_bytes(self.bytes_total)}"
        else:
            nbytes = format_bytes(self.bytes_done)
        files = (f"{self.files_done}/{self.files_total} files" if self.files_total > 0
                 else f"{self.files_done} files")
        return ([f"{100 * frac:3.0f}%" if frac is not None else "  ?%", nbytes, files,
                 format_rate(self.bytes_per_second), format_count_rate(self.files_per_second),
                 f"ETA {format_duration(self.eta)}"])

    def describe(self) -> str:
        return ", ".join(self.figures()) + (f", {self.current}" if self.current else "")


class Aggregator:
    """Keeps the latest update of each side and a rate meter per side.

    Totals come from the source (it walks the tree); the destination's own
    totals are used only until the source has reported some.
    """

    def __init__(self, clock: Clock = time.monotonic, window: float = RATE_WINDOW) -> None:
        self.clock = clock
        self.window = window
        self.latest: dict[str, Progress] = {}
        self.meters: dict[str, RateMeter] = {}
        self.file_meters: dict[str, RateMeter] = {}
        self.started = clock()

    def add(self, p: Progress) -> None:
        self.latest[p.role] = p
        now = self.clock()
        self.meters.setdefault(p.role, RateMeter(self.window)).add(now, int(p.bytes_done))
        self.file_meters.setdefault(p.role, RateMeter(self.window)).add(now, int(p.files_done))

    def overall(self) -> Overall:
        """One figure for the copy: what the destination has (its bytes and
        verified files; until it reports, nothing) of the source's totals."""
        bytes_total, files_total = self.totals()
        dst = self.latest.get("destination")
        src = self.latest.get("source")
        done = int(dst.bytes_done) if dst else 0
        files = int(dst.files_done) if dst else 0
        if bytes_total:
            done = min(done, bytes_total)  # a file that grew: never past 100%
        if files_total:
            files = min(files, files_total)
        rate = self.meters["destination"].rate() if dst else None
        frate = self.file_meters["destination"].rate() if dst else None
        etas = []
        if bytes_total > 0 and rate and rate > 0:
            etas.append(max(0, bytes_total - done) / rate)
        if files_total > 0 and frate and frate > 0:
            etas.append(max(0, files_total - files) / frate)
        current = (dst.current if dst and dst.current else src.current if src else "")
        return Overall(done, bytes_total, files, files_total, rate, frate, max(etas) if etas else None,
                       current, max(0.0, self.clock() - self.started))

    def totals(self) -> tuple[int, int]:
        src = self.latest.get("source")
        if src is not None and (src.bytes_total or src.files_total):
            return int(src.bytes_total), int(src.files_total)
        best = (0, 0)
        for p in self.latest.values():
            best = max(best, (int(p.bytes_total), int(p.files_total)))
        return best

    def sides(self) -> list[SideStatus]:
        bytes_total, files_total = self.totals()
        order = [r for r in ROLES if r in self.latest] + sorted(r for r in self.latest if r not in ROLES)
        out = []
        for role in order:
            p = self.latest[role]
            rate = self.meters[role].rate()
            eta = None
            if bytes_total > 0 and rate and rate > 0:
                eta = max(0.0, bytes_total - p.bytes_done) / rate
            out.append(SideStatus(role, int(p.bytes_done), bytes_total, int(p.files_done), files_total, rate, eta,
                                  p.current))
        return out


def summary_line(result: CopyResult) -> str:
    """One line for a finished copy: files, bytes, time, average rate, unchanged, kept, failed."""
    rate = result.bytes_copied / result.duration if result.duration > 0 else None
    extra = []
    if result.dirs_created:
        extra.append(f"{result.dirs_created} dir{'s' if result.dirs_created != 1 else ''}")
    if result.symlinks_copied:
        extra.append(f"{result.symlinks_copied} symlink{'s' if result.symlinks_copied != 1 else ''}")
    return (f"{result.files_copied} file{'s' if result.files_copied != 1 else ''}"
            f"{' (+' + ', '.join(extra) + ')' if extra else ''}, {format_bytes(result.bytes_copied)} "
            f"in {format_duration(result.duration)} ({format_rate(rate)}), "
            f"{result.unchanged} unchanged, {result.kept} kept, {result.failed} failed"
            f"{f', {result.ignored} left alone' if result.ignored else ''}"
            f"{f', {format_bytes(result.resumed_bytes)} resumed (not sent)' if result.resumed_bytes else ''}")


KEPT_NAMES_SHOWN = 3


def kept_line(result: CopyResult) -> str | None:
    """One line for the files that exist, differ and were left alone: their
    count and the first few names (-v logs each one as it is decided)."""
    if not result.kept:
        return None
    names = [printable(p) for p in result.kept_paths[:KEPT_NAMES_SHOWN]]
    more = result.kept - len(names)
    listed = ", ".join(names) + (f" and {more} more" if more > 0 and names else "")
    noun = "file exists and differs" if result.kept == 1 else "files exist and differ"
    return (f"{result.kept} {noun}; kept (use --overwrite, --update or --ignore-existing)"
            f"{': ' + listed if listed else ''}")


def error_lines(result: CopyResult, limit: int = MAX_ERRORS_SHOWN) -> list[str]:
    # A message that names its path already (a missing source: "/x/y: No such
    # file...") is shown as it is, so the path appears once.
    lines = [printable(message) if path and path in message else f"{printable(path)}: {printable(message)}"
             for path, message in result.errors[:limit]]
    # rcpds report only their first errors; `failed` counts them all.
    more = max(len(result.errors), result.failed) - len(lines)
    if more > 0:
        lines.append(f"... and {more} more error(s)")
    return lines


def shown(level: str, verbosity: int) -> bool:
    return LEVEL_RANK.get(level.lower(), INFO) <= verbosity


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain IPython terminal)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - any failure means "not a notebook"
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def make_progress(kind: ProgressSink | str | bool | None = None, *, stream: IO[str] | None = None,
                  verbosity: int = DEFAULT, summary: bool = False, clock: Clock = time.monotonic) -> ProgressSink:
    """Chooses a sink:

    None, False, "none", "off": NullProgress
    True, "auto": a notebook view inside Jupyter, else a live terminal view
    "terminal", "live": TerminalProgress(live=True)
    "plain", "log": TerminalProgress(live=False), log lines (and summary) only
    "notebook": NotebookProgress
    a ProgressSink: itself
    """
    if kind is None or kind is False:
        return NullProgress()
    if not isinstance(kind, (str, bool)):
        if all(callable(getattr(kind, m, None)) for m in ("start", "update", "log", "finish")):
            return kind
        raise UsageError(f"progress must be a bool, a string or a ProgressSink, not {type(kind).__name__}")
    name = "auto" if kind is True else str(kind).lower()
    if name in ("none", "off", "false", "no"):
        return NullProgress()
    if name == "auto":
        name = "notebook" if in_notebook() else "terminal"
    if name in ("terminal", "live", "true", "yes", "on"):
        return TerminalProgress(stream, live=True, verbosity=verbosity, summary=summary or None, clock=clock)
    if name in ("plain", "log"):
        return TerminalProgress(stream, live=False, verbosity=verbosity, summary=summary, clock=clock)
    if name == "notebook":
        return NotebookProgress(verbosity=verbosity, clock=clock, stream=stream)
    raise UsageError(f"unknown progress kind {kind!r} (expected True, False, 'terminal', 'plain' or 'notebook')")


# The views live in their own modules and import the above; re-exported here.
from rcp.notebook import NotebookProgress  # noqa: E402
from rcp.terminal import TerminalProgress, isatty  # noqa: E402

__all__ = ["DEFAULT", "DEBUG", "INFO", "QUIET", "Aggregator", "NotebookProgress", "NullProgress", "Overall",
           "ProgressSink", "RateMeter", "SideStatus", "TerminalProgress", "error_lines", "format_bytes",
           "format_count_rate", "format_duration", "format_eta", "format_rate", "in_notebook", "isatty",
           "kept_line", "make_progress", "shorten", "shown", "summary_line"]
