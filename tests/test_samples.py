"""CopyResult.samples (bounded progress samples) and CopyResult.plot()."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# matplotlib keeps a font cache in ~/.cache/matplotlib unless told otherwise: never in the real home.
if "matplotlib" not in sys.modules:
    _MPL = tempfile.mkdtemp(prefix="rcp-test-mpl-")
    os.environ["MPLCONFIGDIR"] = _MPL
    atexit.register(shutil.rmtree, _MPL, True)
import matplotlib  # noqa: E402 - python3-matplotlib, installed by bootstrap

import rcp
from rcp.model import CopyResult, Sample
from rcp.samples import MAX_SAMPLES, SampleLog, rates

matplotlib.use("Agg")


def test_sample_log_keeps_the_latest_within_the_spacing() -> None:
    log = SampleLog(spacing=0.2)
    log.add(0.0, 0, 0)
    log.add(0.1, 5, 0)  # too soon after the first: the first stays
    assert log.samples() == [Sample(0.0, 0, 0), Sample(0.1, 5, 0)]
    log.add(0.25, 10, 1)
    log.add(0.3, 12, 1)  # too soon: kept aside, so the newest figures are there
    assert log.samples() == [Sample(0.0, 0, 0), Sample(0.25, 10, 1), Sample(0.3, 12, 1)]
    log.add(0.5, 20, 2)
    assert log.samples() == [Sample(0.0, 0, 0), Sample(0.25, 10, 1), Sample(0.5, 20, 2)]


def test_sample_log_is_bounded_and_spans_the_whole_copy() -> None:
    log = SampleLog(limit=100, spacing=0.25)
    for i in range(10_000):  # 2500 s at four reports a second
        log.add(i * 0.25, i * 1000, i)
    kept = log.samples()
    assert len(kept) <= 100 + 1
    assert kept[0] == Sample(0.0, 0, 0) and kept[-1] == Sample(9999 * 0.25, 9_999_000, 9999)
    gaps = [b.elapsed - a.elapsed for a, b in zip(kept[:-1], kept[1:-1])]  # the last is the latest report
    assert len(kept) >= 50 and max(gaps) <= 2 * min(gaps)  # evenly thinned, not just the start or the end
    assert MAX_SAMPLES <= 1024


def test_rates_between_samples() -> None:
    r = rates([Sample(0.0, 0, 0), Sample(1.0, 100, 10), Sample(1.0, 100, 10), Sample(3.0, 500, 10)])
    got = [(x.elapsed, x.bytes_per_second, x.files_per_second) for x in r]
    assert got == [(1.0, 100.0, 10.0), (3.0, 200.0, 0.0)]


def test_plot_draws_bytes_and_files_per_second() -> None:
    result = CopyResult(samples=[Sample(t * 0.5, t * 1 << 20, t * 3) for t in range(10)])
    ax = result.plot()
    [bytes_line] = ax.get_lines()
    [files_line] = [a for a in ax.figure.axes if a is not ax][0].get_lines()
    assert list(bytes_line.get_ydata()) == pytest.approx([2.0] * 9)  # MiB/s
    assert list(files_line.get_ydata()) == pytest.approx([6.0] * 9)
    assert ax.get_ylabel() == "MiB/s"
    empty = CopyResult().plot()
    assert "no samples" in empty.get_title()


def test_a_copy_keeps_its_samples(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(64 << 20))
    for i in range(200):
        (src / f"f{i}").write_bytes(os.urandom(4096))
    result = rcp.copy(src, tmp_path / "dst")
    assert result.ok
    samples = result.samples
    assert len(samples) >= 2, samples
    assert all(a.elapsed < b.elapsed for a, b in zip(samples, samples[1:]))
    assert all(a.bytes_done <= b.bytes_done and a.files_done <= b.files_done for a, b in zip(samples, samples[1:]))
    assert samples[-1].files_done == result.files_copied == 201  # the last report is the final one
    assert samples[-1].bytes_done == result.bytes_copied
