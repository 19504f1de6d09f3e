"""Progress samples a copy keeps (CopyResult.samples), their rates, and the
throughput plot of `CopyResult.plot()`.

The log is bounded: once full, every other sample goes and the spacing
between kept samples doubles, so a copy of any length keeps at most
MAX_SAMPLES, spread evenly over all of it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rcp.model import Sample

MAX_SAMPLES = 512
MIN_SPACING = 0.2  # seconds: the rcpds report about four times a second


class SampleLog:
    """Thread-safe, bounded record of the destination's verified totals."""

    def __init__(self, limit: int = MAX_SAMPLES, spacing: float = MIN_SPACING) -> None:
        if limit < 4:
            raise ValueError("a sample log needs room for at least 4 samples")
        self.limit = limit
        self.spacing = spacing
        self._samples: list[Sample] = []
        self._latest: Sample | None = None
        self._lock = threading.Lock()

    def add(self, elapsed: float, bytes_done: int, files_done: int) -> None:
        s = Sample(elapsed, bytes_done, files_done)
        with self._lock:
            if self._samples and elapsed - self._samples[-1].elapsed < self.spacing:
                self._latest = s  # too soon after the last kept one: kept aside, so the end is never lost
                return
            self._latest = None
            self._samples.append(s)
            if len(self._samples) >= self.limit:
                self._samples = self._samples[::2]
                self.spacing *= 2

    def samples(self) -> list[Sample]:
        """The kept samples, and the latest one if it came too soon to be kept."""
        with self._lock:
            return self._samples + ([self._latest] if self._latest is not None else [])


@dataclass(frozen=True)
class Rate:
    """Throughput between two consecutive samples, at the later one's time."""

    elapsed: float
    bytes_per_second: float
    files_per_second: float


def rates(samples: Sequence[Sample]) -> list[Rate]:
    out = []
    for a, b in zip(samples, samples[1:]):
        dt = b.elapsed - a.elapsed
        if dt <= 0:
            continue
        out.append(Rate(b.elapsed, max(0, b.bytes_done - a.bytes_done) / dt,
                        max(0, b.files_done - a.files_done) / dt))
    return out


def plot(samples: Sequence[Sample], ax: Any = None) -> Any:
    """Bytes/s (left axis, MiB/s) and files/s (right axis) over time. Needs matplotlib."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("CopyResult.plot() needs matplotlib (Debian: python3-matplotlib)") from exc
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    points = rates(samples)
    t = [r.elapsed for r in points]
    ax.plot(t, [r.bytes_per_second / (1 << 20) for r in points], color="tab:blue", label="MiB/s")
    ax.set_xlabel("seconds")
    ax.set_ylabel("MiB/s", color="tab:blue")
    ax.set_ylim(bottom=0)
    files = ax.twinx()
    files.plot(t, [r.files_per_second for r in points], color="tab:orange", label="files/s")
    files.set_ylabel("files/s", color="tab:orange")
    files.set_ylim(bottom=0)
    ax.set_title("rcp throughput" if points else "rcp throughput (no samples: the copy was too short)")
    return ax
