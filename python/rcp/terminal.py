"""The terminal view of a copy (rcp's stderr): log lines, a live view of the
copy as a whole, and a one-line summary at the end.

The live view has three forms, by where it goes:

- a terminal with rich importable: a rich Live display (bar, figures, the
  file in flight; per side with -v), refreshed a few times a second, so it
  shows from the first moment ("connecting to host... 1.2s");
- a terminal without rich: the same as plain text, rewritten in place with
  '\\r' (one line; with -v, one more per side, redrawn with cursor-up);
- not a terminal (a log file, a pipe): with --progress only, a plain line
  every few seconds and one per phase, never a '\\r'.

At the end the view is replaced by the summary line (files, bytes, time,
average rate, unchanged, kept, failed) and the errors.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import IO, Any

from rcp.model import CopyResult, Progress
from rcp.progress import (
    DEFAULT,
    INFO,
    MIN_INTERVAL,
    Aggregator,
    Clock,
    Overall,
    error_lines,
    format_duration,
    kept_line,
    shorten,
    shown,
    summary_line,
)
from rcp.sanitize import printable

LINE_INTERVAL = 5.0  # seconds between plain lines when the stream is not a terminal
BAR_WIDTH = 20


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
        import rich.progress_bar  # noqa: F401
        import rich.table  # noqa: F401
        import rich.text  # noqa: F401
    except ImportError:
        return None
    import rich

    return rich


def text_bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """'[#######.............]'; unknown: '[   ?   ]' of the same width."""
    if fraction is None:
        return "[" + "?".center(width) + "]"
    full = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * full + "." * (width - full) + "]"


class TerminalProgress:
    """Log lines, an optional live view and a summary on a text stream.

    live: show the live view (rich when importable and the stream is a TTY, or
    `use_rich=True`; else plain text: rewritten in place on a TTY or when
    `inplace=True`, else a line every `line_interval` seconds).
    verbosity: -1 errors only, 0 warnings and errors, 1 info (and the view
    per side), 2 debug, 3 trace.
    summary: at finish, print the summary line and the errors; None (the
    default): when the live view is on.
    """

    def __init__(self, stream: IO[str] | None = None, live: bool = True, *, verbosity: int = DEFAULT,
                 summary: bool | None = None, clock: Clock = time.monotonic, use_rich: bool | None = None,
                 min_interval: float = MIN_INTERVAL, width: int | None = None, inplace: bool | None = None,
                 line_interval: float = LINE_INTERVAL) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = live
        self.verbosity = verbosity
        self.summary = live if summary is None else summary
        self.clock = clock
        self.min_interval = min_interval
        self.line_interval = line_interval
        self.agg = Aggregator(clock)
        self._lock = threading.RLock()
        self._started = False
        self._finished = False
        self._phase = "starting"
        self._figures_shown = False
        self._last_render: float | None = None
        self._drawn: list[str] = []  # the in-place lines now on screen
        tty = isatty(self.stream)
        self.inplace = tty if inplace is None else inplace
        self._rich_width = width  # None: rich follows the terminal's size
        if width is None and tty:
            width = shutil.get_terminal_size((100, 24)).columns
        self.width = width
        self._rich = None
        if live and (use_rich or (use_rich is None and tty)):
            self._rich = _load_rich()
        self._auto_refresh = tty  # a real terminal: rich redraws on its own thread (the clock ticks)
        self._console: Any = None
        self._live: Any = None
        self._snapshot: tuple[str, Overall | None, list[str]] = (self._phase, None, [])
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
                self._snapshot = (self._phase, None, [])
                self._live = Live(_RichView(self), console=self._console, auto_refresh=self._auto_refresh,
                                  refresh_per_second=4, transient=True, redirect_stdout=False,
                                  redirect_stderr=False)
                self._live.start()
            self._render(self.clock(), force=True)

    def phase(self, text: str) -> None:
        """What the copy is doing before its first progress ("connecting to host")."""
        with self._lock:
            if self._finished:
                return
            self._phase = printable(text)
            if not self.live:
                return
            if not self.inplace and self._rich is None:
                self.start()
                self._write(f"rcp: {self._phase}...\n")
                self._flush()
            elif not self._started:
                self.start()  # which draws it
            else:
                self._render(self.clock(), force=True)

    def update(self, p: Progress) -> None:
        with self._lock:
            if self._finished:
                return
            self.agg.add(p)
            if not self.live:
                return
            first = not self._figures_shown  # the first figures replace the phase at once
            self._figures_shown = True
            if not self._started:
                self.start()  # which draws them
            else:
                self._render(self.clock(), force=first)

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

    # -- what the view says

    def lines(self) -> list[str]:
        """The live view as plain text: the copy as a whole, then (with -v) each side."""
        if not self.agg.latest:
            elapsed = format_duration(max(0.0, self.clock() - self.agg.started))
            return self._fit([f"{self._phase}... {elapsed}"])
        o = self.agg.overall()
        first = " ".join([text_bar(o.fraction)] + o.figures())
        if o.current and self.width:
            room = self.width - 1 - len(first) - 2
            first += f"  {shorten(o.current, room)}" if room >= 12 else ""
        elif o.current:
            first += f"  {o.current}"
        out = [first]
        if self.verbosity >= INFO:
            out += [f"  {s.describe()}" for s in self.agg.sides()]
        return self._fit(out)

    def status_line(self) -> str:
        """The first line of the live view (what the plain lines mode prints)."""
        return self.lines()[0]

    def _fit(self, lines: list[str]) -> list[str]:
        if not self.width:
            return lines
        return [line[: max(10, self.width - 1)] for line in lines]

    # -- rendering

    def _render(self, now: float, force: bool = False) -> None:
        if not self.live or not self._started:
            return
        if not self.inplace and self._live is None:
            # Plain lines: one every line_interval (the first when the first progress comes).
            if self.agg.latest and (self._last_render is None or now - self._last_render >= self.line_interval):
                self._last_render = now
                self.renders += 1
                self._write(f"rcp: {self.agg.overall().describe()}\n")
                self._flush()
            return
        if not force and self._last_render is not None and now - self._last_render < self.min_interval:
            return
        self._last_render = now
        self.renders += 1
        if self._live is not None:
            self._snapshot = (self._phase, self.agg.overall() if self.agg.latest else None,
                              [s.describe() for s in self.agg.sides()] if self.verbosity >= INFO else [])
            if force or not self._auto_refresh:
                self._live.refresh()  # a new phase shows at once, not at rich's next tick
            return
        self._draw(self.lines())

    def _draw(self, lines: list[str]) -> None:
        """Rewrites the lines in place: '\\r' and spaces for one line (no escape
        sequences), cursor-up and erase-line for several."""
        old = self._drawn
        if len(old) <= 1 and len(lines) == 1:
            pad = " " * max(0, len(old[0]) - len(lines[0])) if old else ""
            self._write(f"\r{lines[0]}{pad}")
        else:
            up = f"\x1b[{len(old) - 1}A" if len(old) > 1 else ""
            self._write("\r" + up + "\n".join(f"\x1b[2K{line}" for line in lines))
            for _ in range(len(old) - len(lines)):
                self._write("\n\x1b[2K")
            if len(old) > len(lines):
                self._write(f"\x1b[{len(old) - len(lines)}A")
        self._drawn = lines
        self._flush()

    def _clear(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif len(self._drawn) == 1:
            self._write("\r" + " " * len(self._drawn[0]) + "\r")
        elif self._drawn:
            up = f"\x1b[{len(self._drawn) - 1}A"
            self._write("\r" + up + "\n".join("\x1b[2K" for _ in self._drawn) + "\r" + up)
        self._drawn = []

    def _print(self, line: str) -> None:
        """One line above the live view."""
        if self._live is not None:
            from rich.text import Text

            self._console.print(Text(line), markup=False, highlight=False)  # Live redraws below it
            return
        had_view = bool(self._drawn)
        self._clear()
        self._write(line + "\n")
        if had_view and not self._finished:
            self._draw(self.lines())
        self._flush()

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


class _RichView:
    """What rich's Live draws, each refresh. Reads the view's snapshot
    without its lock: rich calls this holding its own lock, which the view's
    log lines take too."""

    def __init__(self, view: TerminalProgress) -> None:
        self.view = view

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        view = self.view
        phase, overall, sides = view._snapshot
        if overall is None:
            elapsed = format_duration(max(0.0, view.clock() - view.agg.started))
            return Text(f"{phase}... {elapsed}")
        frac = overall.fraction
        bar = ProgressBar(total=1.0 if frac is not None else None, completed=frac or 0.0, width=BAR_WIDTH)
        row = Table.grid(padding=(0, 1))
        figures = overall.figures()
        for _ in range(1 + len(figures)):
            row.add_column(no_wrap=True)
        row.add_row(bar, *(Text(f) for f in figures))
        parts: list[Any] = [row]
        if overall.current:
            width = (view._console.width if view._console is not None else 80) - 2
            parts.append(Text("  " + shorten(overall.current, max(12, width)), style="dim", no_wrap=True))
        parts += [Text(f"  {line}", no_wrap=True) for line in sides]
        return Group(*parts)
