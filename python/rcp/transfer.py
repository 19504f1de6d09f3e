"""A copy running in the background: what `rcp.start` returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rcp.model import CopyOptions, CopyResult, Endpoint, Progress
from rcp.orchestration import run_copy
from rcp.progress import ProgressSink


class _Watch:
    """A ProgressSink in front of the caller's: keeps the latest report of each side."""

    def __init__(self, inner: ProgressSink) -> None:
        self.inner = inner
        self.latest: dict[str, Progress] = {}

    def start(self) -> None:
        self.inner.start()

    def update(self, p: Progress) -> None:
        self.latest[p.role] = p
        self.inner.update(p)

    def log(self, role: str, level: str, text: str) -> None:
        self.inner.log(role, level, text)

    def phase(self, text: str) -> None:
        """Passed on to a sink that shows phases ("connecting to host…")."""
        phase = getattr(self.inner, "phase", None)
        if callable(phase):
            phase(text)

    def finish(self, result: CopyResult | None) -> None:
        self.inner.finish(result)


@dataclass(frozen=True)
class Plan:
    """A copy ready to run: operands parsed, options checked."""

    sources: list[Endpoint]
    destination: Endpoint
    options: CopyOptions
    sink: ProgressSink


class Transfer:
    """One copy on its own thread (rcp.start). Thread-safe; several may run at once."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._watch = _Watch(plan.sink)
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._result: CopyResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rcp-transfer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = run_copy(self._plan.sources, self._plan.destination, self._plan.options, self._watch,
                                    cancel=self._cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            self._error = exc
        finally:
            self._done.set()

    @property
    def progress(self) -> Progress | None:
        """The latest progress report: the destination's (what it has
        verified), else the source's; None before the first."""
        latest = self._watch.latest
        return latest.get("destination") or latest.get("source")

    @property
    def done(self) -> bool:
        """The copy has ended (finished, failed or cancelled)."""
        return self._done.is_set()

    @property
    def result(self) -> CopyResult | None:
        """The CopyResult once the copy has ended, None while it runs. Raises
        what the copy raised (a ConnectionFailure, say) if it failed."""
        if not self._done.is_set():
            return None
        if self._error is not None:
            raise self._error
        return self._result

    def wait(self, timeout: float | None = None) -> CopyResult:
        """Blocks until the copy ends and returns its CopyResult (raises what
        the copy raised); raises TimeoutError if it is still running after
        `timeout` seconds (it goes on running)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the copy is still running after {timeout} s")
        result = self.result
        assert result is not None
        return result

    def cancel(self) -> CopyResult:
        """Stops the copy: both rcpds are hung up on (the destination keeps
        only files it finished, and removes its temporaries), then returns
        the partial CopyResult (cancelled=True). A copy that had already
        ended returns its result unchanged."""
        self._cancel.set()
        return self.wait()

    def __repr__(self) -> str:
        p = self.progress
        state = "done" if self.done else "running"
        shown = f", {p.files_done} files, {p.bytes_done} bytes" if p is not None else ""
        return f"<rcp.Transfer {state}{shown}>"
