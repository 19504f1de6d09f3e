"""Progress views, formatters and the sanitiser, driven by a fake clock and a StringIO."""

from __future__ import annotations

import io
import sys
import threading
import unicodedata

import pytest

from rcp.errors import UsageError
from rcp.model import CopyResult, Progress
from rcp.progress import (
    Aggregator,
    NotebookProgress,
    NullProgress,
    ProgressSink,
    RateMeter,
    TerminalProgress,
    format_bytes,
    format_duration,
    format_eta,
    error_lines,
    format_count_rate,
    format_rate,
    kept_line,
    make_progress,
    shorten,
    shown,
    summary_line,
)
from rcp.sanitize import printable

MiB = 1 << 20


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def prog(role: str, done: int, files: int = 0, total: int = 0, files_total: int = 0, elapsed: float = 0.0) -> Progress:
    return Progress(role, done, files, total, files_total, elapsed)


# -- sanitize


@pytest.mark.parametrize("raw, safe", [
    ("plain name.txt", "plain name.txt"),
    ("héllo 日本語 🙂", "héllo 日本語 🙂"),
    ("evil\x1b[2Jname", "evil\\x1b[2Jname"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("line1\nline2", "line1\\x0aline2"),
    ("tab\there", "tab\\x09here"),
    ("cr\rover", "cr\\x0dover"),
    ("del\x7f", "del\\x7f"),
    ("c1\x9bcsi\x85nel", "c1\\x9bcsi\\x85nel"),
    ("nul\x00", "nul\\x00"),
    ("abc\u202etxt.exe", "abc\\u202etxt.exe"),  # right-to-left override
    ("x\u2066y\u2069", "x\\u2066y\\u2069"),
    ("sep\u2028x", "sep\\u2028x"),
    ("bad\udcffbyte", "bad\\xffbyte"),  # os.fsdecode of a non-UTF-8 byte
    ("lone\ud800", "lone\\ud800"),
    ("back\\slash", "back\\slash"),
    ("", ""),
])
def test_printable(raw: str, safe: str) -> None:
    assert printable(raw) == safe


def test_printable_output_is_plain_and_stable() -> None:
    raw = "".join(chr(c) for c in range(0, 0x200)) + "\u202e\udc80"
    safe = printable(raw)
    assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in safe)
    assert "\u202e" not in safe
    assert "\u00a0" in safe and "\u00e9" in safe  # ordinary non-ASCII text stays
    assert printable(safe) == safe
    safe.encode("utf-8")  # no lone surrogates left


def test_printable_accepts_bytes_and_objects() -> None:
    assert printable(b"a\x1b\xff") == "a\\x1b\\xff"
    assert printable(ValueError("x\ny")) == "x\\x0ay"


# -- formatters


@pytest.mark.parametrize("n, text", [
    (0, "0 B"),
    (1, "1 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (1536, "1.5 KiB"),
    (10 * 1024, "10.0 KiB"),
    (100 * 1024, "100 KiB"),
    (1023 * 1024, "1023 KiB"),
    (1024 * 1024 - 1, "1.0 MiB"),  # rounds up into the next unit, never "1024 KiB"
    (5 * MiB + MiB // 2, "5.5 MiB"),
    (123456789, "118 MiB"),
    (3 << 30, "3.0 GiB"),
    (5 << 40, "5.0 TiB"),
    (1 << 70, "1024 EiB"),
    (-2048, "-2.0 KiB"),
    (float("nan"), "?"),
])
def test_format_bytes(n: float, text: str) -> None:
    assert format_bytes(n) == text


@pytest.mark.parametrize("rate, text", [
    (None, "--"),
    (-1.0, "--"),
    (float("inf"), "--"),
    (0.0, "0 B/s"),
    (512.0, "512 B/s"),
    (12.34 * MiB, "12.3 MiB/s"),
])
def test_format_rate(rate: float | None, text: str) -> None:
    assert format_rate(rate) == text


@pytest.mark.parametrize("s, text", [
    (None, "--"),
    (-1, "--"),
    (float("inf"), "--"),
    (0, "0.0s"),
    (0.42, "0.4s"),
    (9.9, "9.9s"),
    (9.96, "10s"),
    (42, "42s"),
    (59.4, "59s"),
    (59.6, "1m00s"),
    (62, "1m02s"),
    (3599, "59m59s"),
    (3723, "1h02m"),
    (90000, "25h00m"),
])
def test_format_duration(s: float | None, text: str) -> None:
    assert format_duration(s) == text


@pytest.mark.parametrize("remaining, rate, text", [
    (100 * MiB, 10 * MiB, "10s"),
    (100 * MiB, 1 * MiB, "1m40s"),
    (1, 10 * MiB, "1.0s"),  # rounds up: never claims 0 while bytes remain
    (0, 10 * MiB, "0.0s"),
    (100, 0.0, "--"),
    (100, None, "--"),
    (None, 5.0, "--"),
])
def test_format_eta(remaining: float | None, rate: float | None, text: str) -> None:
    assert format_eta(remaining, rate) == text


# -- rate and aggregation


def test_rate_meter_moving_average() -> None:
    m = RateMeter(window=5.0)
    assert m.rate() is None
    m.add(0.0, 0)
    assert m.rate() is None
    m.add(1.0, 10 * MiB)
    assert m.rate() == pytest.approx(10 * MiB)
    for t in range(2, 11):  # 10 MiB/s for 10 s
        m.add(float(t), t * 10 * MiB)
    for t in range(11, 21):  # then 2 MiB/s
        m.add(float(t), 100 * MiB + (t - 10) * 2 * MiB)
    # Only the last ~5 s count.
    assert m.rate() == pytest.approx(2 * MiB, rel=0.01)


def test_rate_meter_restarts_when_counter_goes_back() -> None:
    m = RateMeter()
    m.add(0.0, 100)
    m.add(1.0, 200)
    m.add(2.0, 50)
    assert m.rate() is None
    m.add(3.0, 150)
    assert m.rate() == pytest.approx(100)


def test_aggregator_takes_totals_from_the_source() -> None:
    clock = FakeClock(0.0)
    agg = Aggregator(clock)
    agg.add(prog("destination", 0))
    agg.add(prog("source", 0, 0, 0, 0))
    clock.advance(1.0)
    agg.add(prog("destination", 10 * MiB, 1, 0, 0))
    agg.add(prog("source", 20 * MiB, 2, 100 * MiB, 10))
    src, dst = agg.sides()
    assert (src.role, dst.role) == ("source", "destination")
    assert (src.bytes_total, src.files_total) == (100 * MiB, 10)
    assert (dst.bytes_total, dst.files_total) == (100 * MiB, 10)  # from the source
    assert src.rate == pytest.approx(20 * MiB) and dst.rate == pytest.approx(10 * MiB)
    assert src.eta == pytest.approx(4.0) and dst.eta == pytest.approx(9.0)
    assert dst.fraction == pytest.approx(0.1)


def test_aggregator_prefers_source_totals_over_destination_ones() -> None:
    agg = Aggregator(FakeClock())
    agg.add(prog("destination", 5, 1, 999, 99))
    assert agg.totals() == (999, 99)  # until the source knows better
    agg.add(prog("source", 5, 1, 0, 0))
    assert agg.totals() == (999, 99)  # the source's walk is not done yet
    agg.add(prog("source", 6, 1, 100, 10))
    assert agg.totals() == (100, 10)


def test_aggregator_keeps_latest_update_per_role() -> None:
    agg = Aggregator(FakeClock())
    agg.add(prog("source", 5, 1, 50, 5))
    agg.add(prog("source", 7, 2, 50, 5))
    [src] = agg.sides()
    assert (src.bytes_done, src.files_done) == (7, 2)
    assert src.rate is None and src.eta is None  # same instant: no rate yet


def test_verbosity_levels() -> None:
    assert shown("error", -1) and not shown("warn", -1)
    assert shown("warn", 0) and not shown("info", 0)
    assert shown("info", 1) and not shown("debug", 1)
    assert shown("debug", 2) and not shown("trace", 2)
    assert shown("trace", 3)
    assert shown("WARNING", 0)


# -- TerminalProgress


def term(live: bool = True, **kw: object) -> tuple[TerminalProgress, io.StringIO, FakeClock]:
    """A view on a StringIO drawn as on a terminal (in place), unless inplace=False."""
    out, clock = io.StringIO(), FakeClock()
    kw.setdefault("inplace", True)
    return TerminalProgress(out, live=live, clock=clock, **kw), out, clock  # type: ignore[arg-type]


def test_sinks_follow_the_protocol() -> None:
    for sink in (NullProgress(), term()[0], NotebookProgress(display=lambda *a, **k: None)):
        assert isinstance(sink, ProgressSink)


def test_live_line_is_throttled_to_ten_per_second() -> None:
    t, out, clock = term()
    t.start()
    for i in range(100):  # 100 updates within 1 s
        t.update(prog("source", i * 1000, 0, 10**6, 1))
        clock.advance(0.01)
    assert 9 <= t.renders <= 11
    assert out.getvalue().count("\r") == t.renders


def test_verbosity_filters_log_lines() -> None:
    def logged(verbosity: int) -> str:
        t, out, _ = term(live=False, verbosity=verbosity)
        for level in ("error", "warn", "info", "debug", "trace"):
            t.log("source", level, f"{level} message")
        return out.getvalue()

    quiet, default, v, vv = logged(-1), logged(0), logged(1), logged(2)
    assert quiet == "[source] error: error message\n"
    assert "warn message" in default and "info message" not in default
    assert "info message" in v and "debug message" not in v
    assert "debug message" in vv and "trace message" not in vv


def test_not_live_prints_no_progress() -> None:
    t, out, clock = term(live=False)
    t.start()
    for i in range(5):
        t.update(prog("source", i, 0, 10, 1))
        clock.advance(1)
    t.finish(CopyResult(files_copied=1, bytes_copied=10, duration=1.0))
    assert out.getvalue() == ""
    assert t.renders == 0


def result_with_errors() -> CopyResult:
    return CopyResult(files_copied=3, bytes_copied=3 * MiB, dirs_created=1, kept=2, failed=1, unchanged=4,
                      errors=[("a/b\x1b[2J", "Permission denied")], duration=2.0)


def test_finish_clears_the_line_and_prints_the_summary() -> None:
    t, out, clock = term(summary=True)
    t.update(prog("source", 5, 1, 10, 2))
    t.finish(result_with_errors())
    text = out.getvalue()
    live, rest = text.rsplit("\r", 1)[0], text.rsplit("\r", 1)[1]
    assert live.split("\r")[-1].strip() == ""  # the line was blanked out
    assert rest.splitlines() == [
        "rcp: 3 files (+1 dir), 3.0 MiB in 2.0s (1.5 MiB/s), 4 unchanged, 2 kept, 1 failed",
        "rcp: error: a/b\\x1b[2J: Permission denied",
        "rcp: 2 files exist and differ; kept (use --overwrite, --update or --ignore-existing)",
    ]


def test_finish_without_summary_prints_nothing_and_is_idempotent() -> None:
    t, out, clock = term(summary=False)
    t.finish(result_with_errors())
    t.finish(result_with_errors())
    t.update(prog("source", 5, 1, 10, 2))  # late updates are ignored
    assert out.getvalue() == ""


def test_finish_none_only_clears() -> None:
    t, out, _ = term(summary=True)
    t.update(prog("source", 5))
    t.finish(None)
    assert out.getvalue().endswith("\r")
    assert "rcp:" not in out.getvalue()


def test_summary_line() -> None:
    r = CopyResult(files_copied=1, bytes_copied=1024, symlinks_copied=2, duration=0.5)
    assert summary_line(r) == "1 file (+2 symlinks), 1.0 KiB in 0.5s (2.0 KiB/s), 0 unchanged, 0 kept, 0 failed"
    assert "(--)" in summary_line(CopyResult(duration=0.0))
    resumed = CopyResult(files_copied=1, bytes_copied=1 << 30, resumed_bytes=512 << 20, duration=2.0)
    assert summary_line(resumed).endswith(", 0 failed, 512 MiB resumed (not sent)"), summary_line(resumed)


def test_summary_lists_at_most_100_errors() -> None:
    t, out, _ = term(live=False, summary=True)
    t.finish(CopyResult(failed=150, errors=[(f"f{i}", "bad") for i in range(150)]))
    lines = out.getvalue().splitlines()
    assert lines[1] == "rcp: error: f0: bad"
    assert lines[-1] == "rcp: error: ... and 50 more error(s)"
    assert len(lines) == 1 + 100 + 1


def test_width_truncates_the_live_line() -> None:
    t, out, _ = term(width=40)
    t.update(prog("source", 123456, 7, 999999, 10))
    assert len(out.getvalue().lstrip("\r")) == 39


def test_concurrent_updates_from_two_relays() -> None:
    out = io.StringIO()
    t = TerminalProgress(out, live=True, min_interval=0.0)

    def relay(role: str) -> None:
        for i in range(300):
            t.update(prog(role, i, 0, 300, 1))
            if i % 50 == 0:
                t.log(role, "warn", f"line {i}")

    threads = [threading.Thread(target=relay, args=(r,)) for r in ("source", "destination")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.finish(None)
    lines = [ln.split("\r")[-1] for ln in out.getvalue().split("\n")]
    logs = [ln for ln in lines if ln.startswith("[")]
    assert len(logs) == 12  # each log line whole, on its own line


def test_rich_is_not_used_for_a_non_tty_stream() -> None:
    t, out, _ = term()
    t.start()
    t.update(prog("source", 1))
    assert t._live is None and "\x1b" not in out.getvalue()


# -- NotebookProgress


class FakeHandle:
    def __init__(self, shown: list) -> None:
        self.shown = shown

    def update(self, obj: object) -> None:
        self.shown.append(obj)


class FakeDisplay:
    def __init__(self) -> None:
        self.calls = 0
        self.shown: list = []

    def __call__(self, obj: object, display_id: bool = False) -> FakeHandle:
        assert display_id is True
        self.calls += 1
        self.shown.append(obj)
        return FakeHandle(self.shown)


def test_notebook_updates_one_display_in_place() -> None:
    display, clock = FakeDisplay(), FakeClock()
    nb = NotebookProgress(display=display, clock=clock)
    nb.start()
    for i in range(30):  # 16 updates per second
        nb.update(prog("source", i * MiB, i, 30 * MiB, 30))
        clock.advance(0.0625)
    nb.log("destination", "warn", "<script>alert(1)</script>\x1b")
    nb.log("destination", "debug", "hidden")
    nb.finish(CopyResult(files_copied=30, bytes_copied=30 * MiB, duration=1.5))
    assert display.calls == 1  # one display, then updates in place
    assert len(display.shown) == 1 + 14 + 2  # start, every other update (>= 0.1 s apart), log, finish
    final = display.shown[-1]
    page = final._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\\x1b" in page and "hidden" not in page
    assert 'class="rcp-bar"' not in page  # the summary replaces the bar
    assert 'class="rcp-bar"' in display.shown[-3]._repr_html_() and "<progress" not in page
    assert "30 files, 30.0 MiB in 1.5s" in repr(final)


def test_notebook_without_ipython_falls_back_to_plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    out = io.StringIO()
    nb = NotebookProgress(stream=out, clock=FakeClock())
    assert nb.fallback is not None and nb.fallback.live is False
    nb.start()
    nb.update(prog("source", 1, 0, 2, 1))
    nb.log("source", "error", "boom")
    nb.finish(CopyResult(files_copied=1, bytes_copied=2, duration=1.0))
    assert out.getvalue().splitlines() == ["[source] error: boom",
                                           "rcp: 1 file, 2 B in 1.0s (2 B/s), 0 unchanged, 0 kept, 0 failed"]


# -- make_progress


def test_make_progress_kinds() -> None:
    assert isinstance(make_progress(None), NullProgress)
    assert isinstance(make_progress(False), NullProgress)
    assert isinstance(make_progress("none"), NullProgress)
    out = io.StringIO()
    live = make_progress("terminal", stream=out, verbosity=2, summary=True)
    assert isinstance(live, TerminalProgress) and live.live and live.verbosity == 2 and live.summary
    plain = make_progress("plain", stream=out)
    assert isinstance(plain, TerminalProgress) and not plain.live
    auto = make_progress(True, stream=out)
    assert isinstance(auto, TerminalProgress) and auto.live  # not inside a Jupyter kernel
    assert isinstance(make_progress("notebook", stream=out), NotebookProgress)
    sink = NullProgress()
    assert make_progress(sink) is sink


def test_make_progress_refuses_unknown_kinds() -> None:
    with pytest.raises(UsageError, match="unknown progress kind"):
        make_progress("fancy")
    with pytest.raises(UsageError):
        make_progress(42)  # type: ignore[arg-type]


def test_kept_line_names_the_first_few() -> None:
    assert kept_line(CopyResult()) is None
    one = CopyResult(kept=1, kept_paths=["d/a"])
    assert kept_line(one) == "1 file exists and differs; kept (use --overwrite, --update or --ignore-existing): d/a"
    many = CopyResult(kept=250, kept_paths=[f"d/f{i}" for i in range(100)])
    assert kept_line(many) == ("250 files exist and differ; kept (use --overwrite, --update or --ignore-existing): "
                               "d/f0, d/f1, d/f2 and 247 more")
    hostile = CopyResult(kept=1, kept_paths=["x\x1b[2J"])
    assert "\x1b" not in (kept_line(hostile) or "")


def test_an_error_naming_its_path_shows_the_path_once() -> None:
    r = CopyResult(failed=1, errors=[("nope", "/data/nope: No such file or directory")])
    assert error_lines(r) == ["/data/nope: No such file or directory"]
    r = CopyResult(failed=1, errors=[("a/b", "Permission denied")])
    assert error_lines(r) == ["a/b: Permission denied"]


# -- the view of the copy as a whole (issue 14 item 2)


def test_overall_is_the_destination_against_the_source_totals() -> None:
    clock = FakeClock(0.0)
    agg = Aggregator(clock)
    agg.add(prog("source", 0, 0, 100 * MiB, 10))
    agg.add(prog("destination", 0, 0))
    clock.advance(2.0)
    agg.add(Progress("source", 60 * MiB, 6, 100 * MiB, 10, 2.0, current="/src/f6"))  # the source runs ahead
    agg.add(Progress("destination", 40 * MiB, 4, 0, 0, 2.0, current="/dst/f5"))
    o = agg.overall()
    assert (o.bytes_done, o.bytes_total, o.files_done, o.files_total) == (40 * MiB, 100 * MiB, 4, 10)
    assert o.bytes_per_second == pytest.approx(20 * MiB) and o.files_per_second == pytest.approx(2.0)
    assert o.eta == pytest.approx(3.0)  # one ETA: 60 MiB at 20 MiB/s, 6 files at 2/s
    assert o.current == "/dst/f5" and o.fraction == pytest.approx(0.4)
    assert o.describe() == " 40%, 40.0 MiB/100 MiB, 4/10 files, 20.0 MiB/s, 2.0 files/s, ETA 3.0s, /dst/f5"


def test_overall_eta_is_the_slower_of_bytes_and_files() -> None:
    clock = FakeClock(0.0)
    agg = Aggregator(clock)
    agg.add(prog("source", 0, 0, 1000, 1000))
    agg.add(prog("destination", 0, 0))
    clock.advance(1.0)
    agg.add(prog("destination", 900, 100))  # bytes nearly done, files not: tiny files left
    o = agg.overall()
    assert o.eta == pytest.approx(9.0)  # 900 files at 100/s, not 100 B at 900 B/s
    assert format_count_rate(o.files_per_second) == "100 files/s"


def test_overall_never_passes_the_totals_and_is_empty_before_the_destination_reports() -> None:
    agg = Aggregator(FakeClock())
    agg.add(prog("source", 50, 5, 100, 10))
    o = agg.overall()
    assert (o.bytes_done, o.files_done, o.bytes_per_second, o.eta) == (0, 0, None, None)
    agg.add(prog("destination", 150, 12))  # a file grew while being copied
    o = agg.overall()
    assert (o.bytes_done, o.files_done, o.fraction) == (100, 10, 1.0)


@pytest.mark.parametrize("text, width, short", [
    ("a/b/c.txt", 20, "a/b/c.txt"),
    ("data/run-42/part-0003/shard-0017.bin", 24, "data/ru...shard-0017.bin"),
    ("abcdef", 3, "abc"),
])
def test_shorten_keeps_both_ends(text: str, width: int, short: str) -> None:
    assert shorten(text, width) == short
    assert len(shorten(text, width)) == min(len(text), width)


def test_plain_view_one_line_with_bar_figures_and_current_file() -> None:
    t, out, clock = term(width=120)
    t.phase("connecting to host")
    assert out.getvalue() == "\rconnecting to host... 0.0s"  # from the first moment
    t.update(prog("source", 0, 0, 100 * MiB, 10))
    t.update(prog("destination", 0, 0))
    clock.advance(2.0)
    t.update(Progress("destination", 50 * MiB, 5, 0, 0, 2.0, current="/data/copy/part-1/shard-7.bin"))
    line = out.getvalue().split("\r")[-1]
    assert line.startswith("[##########..........]  50% 50.0 MiB/100 MiB 5/10 files 25.0 MiB/s 2.5 files/s ETA 2.0s")
    assert line.rstrip().endswith("/data/copy/part-1/shard-7.bin")
    assert "\x1b" not in out.getvalue()  # one line: no escape sequences, ever
    assert "source" not in line and "destination" not in line  # one view, not one per side


def test_plain_view_fits_the_width_shortening_the_path_first() -> None:
    t, out, clock = term(width=100)
    t.update(prog("source", 0, 0, 100 * MiB, 10))
    clock.advance(1.0)
    t.update(Progress("destination", 1 * MiB, 1, 0, 0, 1.0, current="/very/long/" + "x" * 200 + "/name.bin"))
    line = t.lines()[0]
    assert len(line) <= 99 and "..." in line and line.endswith("name.bin")


def test_plain_view_with_v_adds_one_line_per_side_redrawn_in_place() -> None:
    t, out, clock = term(width=200, verbosity=1)
    t.update(prog("source", 10 * MiB, 1, 100 * MiB, 10))
    t.update(prog("destination", 5 * MiB, 0))
    assert [ln.split()[0] for ln in t.lines()[1:]] == ["source", "destination"]
    clock.advance(1.0)
    t.update(prog("destination", 8 * MiB, 1))
    clock.advance(1.0)
    t.update(prog("destination", 9 * MiB, 1))
    text = out.getvalue()
    assert "\r\x1b[2A\x1b[2K[" in text  # back up over the three lines drawn before
    t.finish(None)
    assert out.getvalue().endswith("\r\x1b[2A\x1b[2K\n\x1b[2K\n\x1b[2K\r\x1b[2A")  # all three erased


def test_log_lines_go_above_the_view_tagged_and_sanitised() -> None:
    t, out, clock = term(width=200)
    t.update(prog("source", 10, 1, 100, 2))
    t.update(prog("destination", 10, 1))
    t.log("destination", "warn", "cannot write x\x1b[31m\n[source] fake")
    text = out.getvalue()
    assert "[destination] warn: cannot write x\\x1b[31m\\x0a[source] fake\n" in text
    before, after = text.split("[destination]")
    assert before.endswith("\r")  # the view was cleared before the log line and redrawn after it
    assert after.split("\n", 1)[1].startswith("\r[##..................]  10% 10 B/100 B 1/2 files")
    assert "\x1b" not in text


def test_summary_replaces_the_live_view_by_default() -> None:
    t, out, clock = term()  # live, summary not asked: shown anyway
    t.update(prog("destination", 5, 1, 10, 2))
    t.finish(CopyResult(files_copied=2, bytes_copied=10, duration=1.0))
    assert out.getvalue().rsplit("\r", 1)[1] == "rcp: 2 files, 10 B in 1.0s (10 B/s), 0 unchanged, 0 kept, 0 failed\n"
    quiet, out, _ = term(live=False)
    quiet.finish(CopyResult(files_copied=2, bytes_copied=10, duration=1.0))
    assert out.getvalue() == ""  # no view, no summary unless asked


def test_not_a_terminal_gets_plain_lines_every_few_seconds() -> None:
    t, out, clock = term(inplace=False, width=None, line_interval=5.0)
    t.phase("connecting to host")
    t.update(prog("source", 0, 0, 100, 10))
    for i in range(1, 61):  # 12 s, four updates a second
        clock.advance(0.2)
        t.update(prog("destination", i, i // 6))
    t.finish(CopyResult(files_copied=10, bytes_copied=100, duration=12.0))
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "rcp: connecting to host..."
    progress = [ln for ln in lines if " ETA " in ln]
    assert len(progress) == 3  # at 0 s, 5 s and 10 s
    assert progress[0].startswith("rcp:   0%, 0 B/100 B, 0/10 files")
    assert lines[-1] == "rcp: 10 files, 100 B in 12s (8 B/s), 0 unchanged, 0 kept, 0 failed"


def test_rich_view_when_forced() -> None:
    import rich  # python3-rich is installed by bootstrap: a missing one must fail, not skip

    assert rich.__name__ == "rich"
    out, clock = io.StringIO(), FakeClock()
    t = TerminalProgress(out, live=True, clock=clock, use_rich=True, width=140, summary=True)
    t.phase("connecting to host")
    t.update(prog("source", 0, 0, 100 * MiB, 10))
    t.update(prog("destination", 0, 0))
    clock.advance(1)
    t.update(Progress("destination", 50 * MiB, 5, 0, 0, 1.0, current="part-1/shard-7.bin"))
    t.log("source", "warn", "[bold]not markup[/bold] \x1b[31m")
    t.finish(CopyResult(files_copied=10, bytes_copied=100 * MiB, duration=4.0))
    text = out.getvalue()
    assert t.renders >= 2
    assert "connecting to host... 0.0s" in text
    assert "50.0 MiB/100 MiB" in text and "5/10 files" in text and "50.0 MiB/s" in text and "5.0 files/s" in text
    assert "part-1/shard-7.bin" in text
    assert "[source] warn: [bold]not markup[/bold] \\x1b[31m" in text  # rich markup not interpreted
    assert text.rstrip().endswith("rcp: 10 files, 100 MiB in 4.0s (25.0 MiB/s), 0 unchanged, 0 kept, 0 failed")


def test_plain_view_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # import rich -> ImportError
    monkeypatch.setitem(sys.modules, "rich.console", None)
    out = io.StringIO()
    t = TerminalProgress(out, live=True, use_rich=True, clock=FakeClock(), inplace=True, min_interval=0)
    t.update(prog("source", 0, 1, 4096, 2))
    t.update(prog("destination", 2048, 1))
    assert t._live is None
    assert out.getvalue().split("\r")[-1].startswith("[##########..........]  50% 2.0 KiB/4.0 KiB 1/2 files")


def test_notebook_view_is_one_bar_and_shows_phases_and_the_current_file() -> None:
    display, clock = FakeDisplay(), FakeClock()
    nb = NotebookProgress(display=display, clock=clock)
    nb.phase("connecting to host")
    assert "connecting to host... 0.0s" in display.shown[-1]._repr_html_()
    nb.update(prog("source", 0, 0, 10 * MiB, 2))
    clock.advance(1)
    nb.update(Progress("destination", 5 * MiB, 1, 0, 0, 1.0, current="d/<b>x</b>"))
    page = display.shown[-1]._repr_html_()
    assert page.count('class="rcp-bar"') == 1 and "width: 50.0%" in page
    assert "5.0 MiB/10.0 MiB" in page and "1/2 files" in page and "d/&lt;b&gt;x&lt;/b&gt;" in page
    assert "destination" not in page  # per side only with verbosity >= 1
    assert display.calls == 1


def test_notebook_progress_outside_a_kernel_writes_nothing_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    import IPython  # installed by bootstrap (python3-ipykernel): present, yet not a kernel

    assert IPython.get_ipython() is None
    nb = NotebookProgress(clock=FakeClock())
    assert nb.fallback is not None
    nb.phase("connecting")
    nb.update(prog("destination", 1, 1, 2, 1))
    nb.finish(CopyResult(files_copied=1, bytes_copied=2, duration=1.0))
    out, err = capsys.readouterr()
    assert out == "" and err == "rcp: 1 file, 2 B in 1.0s (2 B/s), 0 unchanged, 0 kept, 0 failed\n"


def test_the_file_in_flight_is_sanitised() -> None:
    from rcp.model import Endpoint
    from rcp.orchestration import Side, _progress

    side = Side("destination", Endpoint("/x"))
    p = _progress(side, [1, 2, 3, 4, "d/\x1b]0;owned\x07name"], 0.5)
    assert p.current == "d/\\x1b]0;owned\\x07name"
    assert _progress(side, [1, 2, 3, 4], 0.5).current == ""  # absent (appended in protocol 5): none
    with pytest.raises(ValueError, match="current"):
        _progress(side, [1, 2, 3, 4, 5], 0.5)


def test_the_first_figures_replace_the_phase_at_once() -> None:
    """A copy shorter than the throttle still shows its bar (it did not: the
    phase drawn a moment before held the first progress back)."""
    t, out, clock = term()
    t.phase("linking the source and the destination")
    clock.advance(0.01)
    t.update(prog("source", 0, 0, 100, 1))
    assert out.getvalue().split("\r")[-1].startswith("[....................]   0% 0 B/100 B 0/1 files")
    clock.advance(0.01)
    t.update(prog("destination", 50, 0))
    assert "  0%" in out.getvalue().split("\r")[-1]  # later ones are throttled as before
