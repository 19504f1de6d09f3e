"""`rcp --json`: the copy as JSON lines on stdout, one object per line, each
with a `type`:

- start: once, before connecting: rcp's version, the operands;
- progress: at most every `interval` seconds while data flows, and once at
  the end: the copy as a whole (the destination's verified bytes and files of
  the source's totals, rates, ETA, the file in flight) and each side;
- warning, error: what the rcpds and the master warn of or report failed, as
  it happens; a fatal one (the copy could not run) has `fatal: true` and the
  exit code, and is the last line;
- plan: with dry_run, one per entry of CopyResult.plan (action, path, size),
  before the result;
- result: the last line of a copy that ran: CopyResult's fields, `ok`, the
  average rates and the exit code.

docs/rcp-json.schema.json is the schema of every line (tests check each
against it); README.md documents the fields. Field names are stable: new
ones may be added, none renamed or removed. Log lines below warning (-v)
stay on stderr as text. To add an entry type: add it to ENTRY_TYPES and to
the schema's `$defs`, then `emit(type, ...)`.
CopyResult fields, lists of dataclasses among them, go into `result`
generically (`jsonable`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

from rcp.errors import EXIT_OK, EXIT_PARTIAL
from rcp.model import CopyResult, Progress
from rcp.progress import DEFAULT, Aggregator, Clock, Overall
from rcp.sanitize import printable
from rcp.terminal import TerminalProgress

SCHEMA_VERSION = 1
ENTRY_TYPES = ("start", "progress", "warning", "error", "plan", "result")
PROGRESS_INTERVAL = 1.0  # seconds
# CopyResult fields left out of `result`: the samples are what the progress lines
# said, and a dry run's plan goes as `plan` lines before it.
RESULT_OMITS = frozenset({"samples", "plan"})
WARNING_LEVELS = frozenset({"warn", "warning", "notice"})


def jsonable(value: Any) -> Any:
    """A value as JSON types: dataclasses as objects, tuples and lists as arrays;
    `errors`' (path, message) pairs as {"path", "message"} objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def result_entry(result: CopyResult) -> dict[str, Any]:
    """`result`: every CopyResult field but RESULT_OMITS, plus ok, rates and the exit code."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        if f.name in RESULT_OMITS:
            continue
        value = getattr(result, f.name)
        if f.name == "errors":
            value = [{"path": p, "message": m} for p, m in value]
        fields[f.name] = jsonable(value)
    seconds = result.duration
    fields["ok"] = result.ok
    fields["bytes_per_second"] = result.bytes_copied / seconds if seconds > 0 else None
    fields["files_per_second"] = result.files_copied / seconds if seconds > 0 else None
    fields["exit_code"] = EXIT_OK if result.ok else EXIT_PARTIAL
    return fields


def _overall_fields(o: Overall) -> dict[str, Any]:
    return {"elapsed": round(o.elapsed, 3), "bytes_done": o.bytes_done, "bytes_total": o.bytes_total,
            "files_done": o.files_done, "files_total": o.files_total, "bytes_per_second": o.bytes_per_second,
            "files_per_second": o.files_per_second, "eta": o.eta, "current": o.current}


class JsonLines:
    """Writes entries, one JSON object a line, flushed; thread-safe."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def emit(self, type_: str, **fields: Any) -> None:
        if type_ not in ENTRY_TYPES:
            raise ValueError(f"unknown JSON entry type {type_!r}")
        line = json.dumps({"type": type_, **jsonable(fields)}, ensure_ascii=False, allow_nan=False)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stdout must not break the copy


class JsonProgress:
    """The ProgressSink of `rcp --json`: progress, warnings and errors, and
    the result as JSON lines; log lines below warning as text on `stderr`."""

    def __init__(self, stream: IO[str] | None = None, *, stderr: IO[str] | None = None,
                 verbosity: int = DEFAULT, interval: float = PROGRESS_INTERVAL,
                 clock: Clock = time.monotonic) -> None:
        self.out = JsonLines(stream)
        self.interval = interval
        self.clock = clock
        self.agg = Aggregator(clock)
        self.verbosity = verbosity
        self._text = TerminalProgress(stderr if stderr is not None else sys.stderr, live=False,
                                      verbosity=verbosity, summary=False, clock=clock)
        self._lock = threading.Lock()
        self._last: float | None = None
        self._finished = False

    def begin(self, sources: Sequence[str], destination: str, version: str) -> None:
        """The `start` line."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        self.out.emit("start", schema=SCHEMA_VERSION, version=version, time=now,
                      sources=[printable(s) for s in sources], destination=printable(destination))

    def start(self) -> None:
        pass

    def phase(self, text: str) -> None:
        pass  # the start line said it all; progress lines follow

    def update(self, p: Progress) -> None:
        with self._lock:
            if self._finished:
                return
            self.agg.add(p)
            now = self.clock()
            if self._last is not None and now - self._last < self.interval:
                return
            self._last = now
        self._progress()

    def _progress(self) -> None:
        sides = {s.role: {"bytes_done": s.bytes_done, "files_done": s.files_done,
                          "bytes_per_second": s.rate, "current": s.current}
                 for s in self.agg.sides()}
        self.out.emit("progress", **_overall_fields(self.agg.overall()), sides=sides)

    def log(self, role: str, level: str, text: str) -> None:
        lvl = level.lower()
        if lvl == "error":
            self.out.emit("error", role=printable(role), message=printable(text), fatal=False)
        elif lvl in WARNING_LEVELS:
            self.out.emit("warning", role=printable(role), message=printable(text))
        else:
            self._text.log(role, level, text)

    def fail(self, message: str, exit_code: int, kind: str) -> None:
        """The copy could not run (or stopped): the last line, an error with fatal: true."""
        with self._lock:
            self._finished = True
        self.out.emit("error", role="master", message=printable(message), fatal=True, exit_code=exit_code,
                      kind=kind)

    def finish(self, result: CopyResult | None) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
        if result is None:
            return
        if self.agg.latest:
            self._progress()  # the last figures, whatever the interval
        for entry in result.plan:
            self.out.emit("plan", action=entry.action, path=printable(entry.path), size=entry.size)
        self.out.emit("result", **result_entry(result))
