"""The notebook view of a copy: one HTML display, updated in place
(IPython.display with a display_id; no ipywidgets), with the same figures as
the terminal's: a bar over the total bytes, bytes and files done of their
totals, bytes/s and files/s, one ETA and the file in flight; each side with
verbosity >= 1; log lines; and at the end the summary line.

Outside a Jupyter kernel (IPython missing, or a plain Python or IPython
shell), NotebookProgress is TerminalProgress(live=False): log lines and the
summary on stderr, nothing on stdout.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from collections.abc import Callable
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
    in_notebook,
    kept_line,
    shown,
    summary_line,
)
from rcp.sanitize import printable
from rcp.terminal import TerminalProgress

BAR_COLOR = "#3b7dd8"
STYLE = "font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 1.5"


def _bar(fraction: float | None) -> str:
    inner = (f'<div style="width: {100 * fraction:.1f}%; height: 100%; background: {BAR_COLOR}"></div>'
             if fraction is not None else "")
    return ('<div class="rcp-bar" style="display: inline-block; vertical-align: middle; width: 240px; '
            f'height: 10px; background: #e3e3e3; border-radius: 3px; overflow: hidden">{inner}</div>')


class NotebookView:
    """One state of the view: HTML for Jupyter, plain text elsewhere."""

    def __init__(self, phase: str, overall: Overall | None, sides: list[str], logs: list[str],
                 footer: list[str]) -> None:
        self.phase, self.overall, self.sides, self.logs, self.footer = phase, overall, sides, logs, footer

    def text_lines(self) -> list[str]:
        if self.footer:
            head: list[str] = []
        elif self.overall is None:
            head = [self.phase]
        else:
            head = [self.overall.describe()] + [f"  {s}" for s in self.sides]
        return head + self.logs + self.footer

    def __repr__(self) -> str:
        return "\n".join(self.text_lines())

    def _repr_html_(self) -> str:
        e = html.escape
        parts = []
        if self.footer:
            parts.append(f"<div><b>rcp:</b> {e(self.footer[0])}</div>")
            parts += [f'<div style="color: #b00">{e(line)}</div>' for line in self.footer[1:]]
        elif self.overall is None:
            parts.append(f"<div>{e(self.phase)}</div>")
        else:
            o = self.overall
            parts.append(f"<div>{_bar(o.fraction)} {' &middot; '.join(e(f) for f in o.figures())}</div>")
            if o.current:
                parts.append(f'<div style="color: #666; white-space: nowrap; overflow: hidden; '
                             f'text-overflow: ellipsis">{e(o.current)}</div>')
            parts += [f'<div style="color: #666">{e(s)}</div>' for s in self.sides]
        if self.logs:
            parts.append("<pre style=\"margin: 4px 0; padding: 0; background: none\">"
                         + "\n".join(e(line) for line in self.logs) + "</pre>")
        return f'<div class="rcp-progress" style="{STYLE}">{"".join(parts)}</div>'


class NotebookProgress:
    """An IPython display updated in place, inside a Jupyter kernel (or with
    `display` injected); elsewhere the same as TerminalProgress(live=False)."""

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
        self._phase = "starting"
        self._handle: Any = None
        self._last_render: float | None = None
        self._finished = False
        self.fallback: TerminalProgress | None = None
        if display is None and in_notebook():
            try:
                from IPython.display import display as ipython_display
            except ImportError:
                ipython_display = None
            display = ipython_display
        self._display = display
        if display is None:
            self.fallback = TerminalProgress(stream, live=False, verbosity=verbosity, summary=summary, clock=clock)

    def view(self) -> NotebookView:
        elapsed = format_duration(max(0.0, self.clock() - self.agg.started))
        return NotebookView(f"{self._phase}... {elapsed}", self.agg.overall() if self.agg.latest else None,
                            [s.describe() for s in self.agg.sides()] if self.verbosity >= INFO else [],
                            list(self._logs), list(self._footer))

    def _show(self) -> None:
        self._last_render = self.clock()
        assert self._display is not None, "a fallback view never shows itself"
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

    def phase(self, text: str) -> None:
        if self.fallback is not None:
            return self.fallback.phase(text)
        with self._lock:
            if not self._finished:
                self._phase = printable(text)
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
            elif result is None:
                self._footer = ["stopped"]
            self._show()
