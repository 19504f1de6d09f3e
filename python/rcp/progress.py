"""Progress views: what the master shows while both rcpds work.

A ProgressSink receives, from the master's relay threads, the latest
Progress of each side (source, destination) and their log lines, and at the
end the CopyResult. Implementations:

- NullProgress: ignores everything.
- TerminalProgress: log lines on a stream (stderr), filtered by verbosity,
  tagged with their side and sanitised; optionally one live view (rich when
  available and the stream is a TTY, else one carriage-return-updated line)
  and a summary at the end.
- NotebookProgress: the same view as an IPython display updated in place.

Everything takes an injectable clock and stream, so it can be tested
deterministically.
"""

from __future__ import annotations

import html
import math
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol, runtime_checkable

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
QUIET, DEFAULT, INFO, DEBUG = -1, 0, 1, 2


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
                f"ETA {format_duration(self.eta)}")


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

    def add(self, p: Progress) -> None:
        self.latest[p.role] = p
        self.meters.setdefault(p.role, RateMeter(self.window)).add(self.clock(), int(p.bytes_done))

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
            out.append(SideStatus(role, int(p.bytes_done), bytes_total, int(p.files_done), files_total, rate, eta))
        return out


def summary_line(result: CopyResult) -> str:
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


# ---------------------------------------------------------------------------
# Terminal


def isatty(stream: IO[str]) -> bool:
    """stream.isatty(), False for a stream without one or a closed one."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _load_rich() -> Any | None:
    try:
        import rich.console  # noqa: F401
        import rich.live  # noqa: F401
        import rich.table  # noqa: F401
        import rich.text  # noqa: F401
    except ImportError:
        return None
    import rich

    return rich


class TerminalProgress:
    """Log lines, an optional live view and an optional summary on a text stream.

    live: show a live view of both sides (rich Live when rich is importable and
    the stream is a TTY, or `use_rich=True`; otherwise one line rewritten with
    '\\r', at most once per `min_interval` seconds).
    verbosity: -1 errors only, 0 warnings and errors, 1 info, 2 debug, 3 trace.
    summary: at finish, print a totals line and the errors.
    """

    def __init__(self, stream: IO[str] | None = None, live: bool = True, *, verbosity: int = DEFAULT,
                 summary: bool = False, clock: Clock = time.monotonic, use_rich: bool | None = None,
                 min_interval: float = MIN_INTERVAL, width: int | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = live
        self.verbosity = verbosity
        self.summary = summary
        self.clock = clock
        self.min_interval = min_interval
        self.agg = Aggregator(clock)
        self._lock = threading.RLock()
        self._started = False
        self._finished = False
        self._last_render: float | None = None
        self._line_len = 0  # length of the '\r' line currently on screen
        tty = isatty(self.stream)
        self._rich_width = width  # None: rich follows the terminal's size
        if width is None and tty:
            width = shutil.get_terminal_size((100, 24)).columns
        self.width = width
        self._rich = None
        if live and (use_rich or (use_rich is None and tty)):
            self._rich = _load_rich()
        self._console: Any = None
        self._live: Any = None
        self.renders = 0  # live view refreshes so far (for tests and curiosity)

    # -- ProgressSink

    def start(self) -> None:
        with self._lock:
            if self._started or self._finished:
                return
            self._started = True
            if self.live and self._rich is not None:
                from rich.console import Console
                from rich.live import Live

                self._console = Console(file=self.stream, force_terminal=True, width=self._rich_width,
                                        highlight=False, soft_wrap=False)
                self._live = Live(self._rich_view(), console=self._console, auto_refresh=False,
                                  transient=True, redirect_stdout=False, redirect_stderr=False)
                self._live.start()

    def update(self, p: Progress) -> None:
        with self._lock:
            if self._finished:
                return
            self.agg.add(p)
            if not self.live:
                return
            if not self._started:
                self.start()
            now = self.clock()
            if self._last_render is not None and now - self._last_render < self.min_interval:
                return
            self._render(now)

    def log(self, role: str, level: str, text: str) -> None:
        if not shown(level, self.verbosity):
            return
        line = f"[{printable(role)}] {printable(level)}: {printable(text)}"
        with self._lock:
            self._print(line)

    def finish(self, result: CopyResult | None) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._clear()
            if result is not None and self.summary:
                self._write(f"rcp: {summary_line(result)}\n")
                for line in error_lines(result):
                    self._write(f"rcp: error: {line}\n")
                if kept_line(result):
                    self._write(f"rcp: {kept_line(result)}\n")
            self._flush()

    # -- rendering

    def status_line(self) -> str:
        """The one-line live view (also what the plain mode prints)."""
        sides = self.agg.sides()
        line = " | ".join(s.describe() for s in sides) if sides else "starting..."
        if self.width:
            line = line[: max(10, self.width - 1)]
        return line

    def _render(self, now: float) -> None:
        self._last_render = now
        self.renders += 1
        if self._live is not None:
            self._live.update(self._rich_view(), refresh=True)
            return
        line = self.status_line()
        pad = " " * max(0, self._line_len - len(line))
        self._write(f"\r{line}{pad}")
        self._line_len = len(line)
        self._flush()

    def _clear(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self._line_len:
            self._write("\r" + " " * self._line_len + "\r")
            self._line_len = 0

    def _print(self, line: str) -> None:
        """One line above the live view."""
        if self._live is not None:
            from rich.text import Text

            self._console.print(Text(line), markup=False, highlight=False)  # Live redraws below it
            return
        had_line = self._line_len > 0
        self._clear()
        self._write(line + "\n")
        if had_line and not self._finished:
            self._render(self.clock())
        self._flush()

    def _rich_view(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        for _ in range(6):
            table.add_column()
        sides = self.agg.sides()
        if not sides:
            table.add_row(Text("starting..."))
        for s in sides:
            bar = ProgressBar(total=float(s.bytes_total) if s.bytes_total > 0 else None,
                              completed=float(s.bytes_done), width=20)
            nbytes = (f"{format_bytes(s.bytes_done)}/{format_bytes(s.bytes_total)}" if s.bytes_total > 0
                      else format_bytes(s.bytes_done))
            files = f"{s.files_done}/{s.files_total} files" if s.files_total > 0 else f"{s.files_done} files"
            table.add_row(Text(printable(s.role), style="bold"), bar, Text(nbytes), Text(files),
                          Text(format_rate(s.rate)), Text(f"ETA {format_duration(s.eta)}"))
        return table

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
        except (OSError, ValueError):
            pass  # a closed or broken stderr must not break the copy

    def _flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


# ---------------------------------------------------------------------------
# Notebook


class _NotebookView:
    """What the notebook shows: HTML for Jupyter, plain text elsewhere."""

    def __init__(self, sides: list[SideStatus], logs: list[str], footer: list[str]) -> None:
        self.sides, self.logs, self.footer = sides, logs, footer

    def __repr__(self) -> str:
        lines = [s.describe() for s in self.sides] or ["starting..."]
        return "\n".join(lines + self.logs + self.footer)

    def _repr_html_(self) -> str:
        rows = []
        for s in self.sides:
            bar = (f'<progress value="{s.bytes_done}" max="{s.bytes_total}"></progress>' if s.bytes_total > 0
                   else "<progress></progress>")
            rows.append(f"<tr><td><b>{html.escape(s.role)}</b></td><td>{bar}</td>"
                        f"<td>{html.escape(s.describe().split(' ', 1)[1])}</td></tr>")
        parts = [f"<table>{''.join(rows)}</table>" if rows else "<div>starting...</div>"]
        for line in self.logs + self.footer:
            parts.append(f"<div><code>{html.escape(line)}</code></div>")
        return "".join(parts)


class NotebookProgress:
    """An IPython display updated in place; without IPython (or `display`
    injected), the same as TerminalProgress(live=False)."""

    MAX_LOG_LINES = 20

    def __init__(self, *, verbosity: int = DEFAULT, summary: bool = True, clock: Clock = time.monotonic,
                 display: Callable[..., Any] | None = None, stream: IO[str] | None = None,
                 min_interval: float = MIN_INTERVAL) -> None:
        self.verbosity = verbosity
        self.summary = summary
        self.clock = clock
        self.min_interval = min_interval
        self.agg = Aggregator(clock)
        self._lock = threading.RLock()
        self._logs: deque[str] = deque(maxlen=self.MAX_LOG_LINES)
        self._footer: list[str] = []
        self._handle: Any = None
        self._last_render: float | None = None
        self._finished = False
        self.fallback: TerminalProgress | None = None
        if display is None:
            try:
                from IPython.display import display as ipython_display
            except ImportError:
                ipython_display = None
            display = ipython_display
        self._display = display
        if display is None:
            self.fallback = TerminalProgress(stream, live=False, verbosity=verbosity, summary=summary, clock=clock)

    def view(self) -> _NotebookView:
        return _NotebookView(self.agg.sides(), list(self._logs), list(self._footer))

    def _show(self) -> None:
        self._last_render = self.clock()
        if self._handle is None:
            self._handle = self._display(self.view(), display_id=True)
        else:
            self._handle.update(self.view())

    def start(self) -> None:
        if self.fallback is not None:
            return self.fallback.start()
        with self._lock:
            if self._handle is None and not self._finished:
                self._show()

    def update(self, p: Progress) -> None:
        if self.fallback is not None:
            return self.fallback.update(p)
        with self._lock:
            if self._finished:
                return
            self.agg.add(p)
            if self._last_render is not None and self.clock() - self._last_render < self.min_interval:
                return
            self._show()

    def log(self, role: str, level: str, text: str) -> None:
        if self.fallback is not None:
            return self.fallback.log(role, level, text)
        if not shown(level, self.verbosity):
            return
        with self._lock:
            self._logs.append(f"[{printable(role)}] {printable(level)}: {printable(text)}")
            if not self._finished:
                self._show()

    def finish(self, result: CopyResult | None) -> None:
        if self.fallback is not None:
            return self.fallback.finish(result)
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if result is not None and self.summary:
                self._footer = ([summary_line(result)] + [f"error: {line}" for line in error_lines(result)]
                                + [line for line in [kept_line(result)] if line])
            self._show()


# ---------------------------------------------------------------------------


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
        return TerminalProgress(stream, live=True, verbosity=verbosity, summary=summary, clock=clock)
    if name in ("plain", "log"):
        return TerminalProgress(stream, live=False, verbosity=verbosity, summary=summary, clock=clock)
    if name == "notebook":
        return NotebookProgress(verbosity=verbosity, clock=clock, stream=stream)
    raise UsageError(f"unknown progress kind {kind!r} (expected True, False, 'terminal', 'plain' or 'notebook')")
