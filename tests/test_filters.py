"""Filters, --delete and --dry-run (issue 13 items 1-3), through the real sshd
fixture: every filter result is compared with what `rsync -r` does with the
same rules (rsync is the oracle), and a dry run with what the real run then does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp.errors import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UsageError
from rcp.model import MAX_PLAN_BYTES, CopyResult, Endpoint, Progress
from rcp.orchestration import Side, _add_plan
from rcp.progress import NullProgress
from sshd import Sshd
from treeutil import leftovers, snapshot

RCPD = str(rcp.daemon.rcpd_path())
OLD = 1_000_000_000


class Received(NullProgress):
    """The destination's last progress (the bytes that arrived) and its log lines."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines: list[str] = []

    def update(self, p: Progress) -> None:
        if p.role == "destination":
            self.bytes = p.bytes_done

    def log(self, role: str, level: str, text: str) -> None:
        self.lines.append(f"{role} {level} {text}")


def ssh_opts(sshd: Sshd, **extra: object) -> dict[str, object]:
    return {"ssh_config": str(sshd.config), "rcpd_path": RCPD, **extra}


def copy(sshd: Sshd, src: Path, dst: Path, **options: object) -> tuple[CopyResult, Received]:
    seen = Received()
    return rcp.copy(str(src), f"{sshd.alias}:{dst}", progress=seen, **ssh_opts(sshd, **options)), seen


def rcp_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run([sys.executable, "-m", "rcp.cli", "--no-progress", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def rcp_ssh(sshd: Sshd, *argv: str) -> subprocess.CompletedProcess[str]:
    return rcp_cli("--ssh-config", str(sshd.config), "--rcpd-path", RCPD, *argv)


def rsync(rules: list[str], src: Path, dst: Path, *extra: str) -> None:
    """rsync -r with the same rules, src's contents into dst, as rcp copies src to a new dst."""
    args = [f"--filter={r}" for r in rules]
    subprocess.run(["rsync", "-r", "--links", *extra, *args, f"{src}/", f"{dst}/"], check=True, capture_output=True)


def listing(root: Path) -> set[str]:
    """Relative paths with a '/' after directories: what a filter result is compared by."""
    out = set()
    for p in root.rglob("*"):
        rel = str(p.relative_to(root))
        out.add(rel + "/" if p.is_dir() and not p.is_symlink() else rel)
    return out


def put(root: Path, rel: str, data: bytes = b"x", mtime: int = OLD) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.utime(p, (mtime, mtime))


def make_source(root: Path) -> Path:
    for rel in ["a.o", "a.c", "b.c", "top.txt", "keep/x.o", "keep/y.c", "build/out.o", "build/log.txt",
                "src/build/deep.o", "src/main.c", "src/lib/util.c", "src/lib/util.o", "docs/a1.md", "docs/b2.md",
                "docs/c3.md", "x/sub/top.txt", "[br]acket", "build.txt"]:
        put(root, rel, rel.encode())
    (root / "empty").mkdir()
    (root / "link.o").symlink_to("a.o")
    return root


FILTER_CASES = [
    pytest.param(["- *.o"], id="star-last-component-any-depth"),
    pytest.param(["- ?.c"], id="question-mark"),
    pytest.param(["- docs/[ab]?.md"], id="class-with-slash"),
    pytest.param(["- [!ab]*.c"], id="negated-class"),
    pytest.param(["- src/**.o"], id="double-star"),
    pytest.param(["- /top.txt"], id="anchored"),
    pytest.param(["- top.txt"], id="unanchored-name"),
    pytest.param(["- build/"], id="trailing-slash-dirs-only"),
    pytest.param(["- build/***"], id="dir-and-all-below"),
    pytest.param(["+ keep/x.o", "- *.o"], id="include-first-wins"),
    pytest.param(["- *.o", "+ keep/x.o"], id="exclude-first-wins"),
    pytest.param(["+ */", "+ *.c", "- *"], id="only-c-files"),
    pytest.param(["- keep", "+ keep/x.o"], id="excluded-dir-never-entered"),
    pytest.param(["- \\[br]acket"], id="escaped-bracket"),
]


@pytest.mark.parametrize("rules", FILTER_CASES)
def test_filters_leave_out_what_rsync_leaves_out(sshd: Sshd, tmp_path: Path, rules: list[str]) -> None:
    src = make_source(tmp_path / "src")
    result, _ = copy(sshd, src, tmp_path / "rcp", filters=rules)
    assert result.ok, result.errors
    rsync(rules, src, tmp_path / "rsync")
    assert listing(tmp_path / "rcp") == listing(tmp_path / "rsync")
    assert listing(tmp_path / "rcp") != listing(src)  # each rule leaves something out


def test_cli_rules_keep_their_order_and_filter_from_reads_a_file(sshd: Sshd, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    rules = tmp_path / "rules"
    rules.write_text("# object files, except one\n\n+ keep/x.o\n- *.o\n   \n- /docs/\n")
    r = rcp_ssh(sshd, "--filter-from", str(rules), "--exclude", "b.c",
                str(src), f"{sshd.alias}:{tmp_path / 'from_file'}")
    assert r.returncode == EXIT_OK, r.stderr
    rsync(["+ keep/x.o", "- *.o", "- /docs/", "- b.c"], src, tmp_path / "rsync")
    assert listing(tmp_path / "from_file") == listing(tmp_path / "rsync")
    assert "keep/x.o" in listing(tmp_path / "from_file")
    # The same rules the other way round: the exclude comes first and wins.
    r = rcp_ssh(sshd, "--exclude", "*.o", "--include", "keep/x.o",
                str(src), f"{sshd.alias}:{tmp_path / 'reversed'}")
    assert r.returncode == EXIT_OK, r.stderr
    assert "keep/x.o" not in listing(tmp_path / "reversed") and "keep/y.c" in listing(tmp_path / "reversed")


@pytest.mark.parametrize("argv", [
    ["--exclude", "[ab"],
    ["--include", "a\\"],
    ["--filter-from", "RULES"],
    ["--filter-from", "/nonexistent/rules"],
])
def test_a_bad_rule_is_a_usage_error_before_connecting(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "RULES").write_text("- ok\nexclude *.o\n")
    argv = [a.replace("RULES", str(tmp_path / "RULES")) for a in argv]
    # A host that does not exist: connecting would be exit 3, not 2.
    r = rcp_cli(*argv, str(tmp_path), "no-such-host.invalid:dst", timeout=30)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "no-such-host" not in r.stderr


def test_python_filters_are_checked_before_connecting(tmp_path: Path) -> None:
    for bad in (["- [ab"], ["*.o"], "- *.o", [b"- x"]):
        with pytest.raises(UsageError):
            rcp.copy(str(tmp_path), "no-such-host.invalid:dst", filters=bad)


def test_delete_removes_what_the_source_lacks_and_protects_excluded(sshd: Sshd, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    rules = ["- *.o"]
    # Each destination already holds a copy named as the source: the copy goes into its parent.
    mine, theirs = tmp_path / "rcp" / "src", tmp_path / "rsync" / "src"
    for dst in (mine, theirs):
        shutil.copytree(src, dst, symlinks=True)
        put(dst, "extra.txt")
        put(dst, "extra_dir/deep/file")
        put(dst, "src/lib/extra.c")
        put(dst, "stale.o")  # excluded: protected
        put(dst, "gone_dir/old.o")  # a directory the source lacks holding an excluded file: both stay
    result, seen = copy(sshd, src, mine.parent, filters=rules, delete=True)
    assert result.ok, result.errors
    rsync(rules, src, theirs, "--delete")
    assert listing(mine) == listing(theirs)
    assert "stale.o" in listing(mine) and "extra.txt" not in listing(mine)
    assert result.deleted == 5  # extra.txt, extra_dir/, extra_dir/deep/, extra_dir/deep/file, src/lib/extra.c
    assert any("extra.txt: deleted" in line for line in seen.lines), seen.lines


def test_delete_excluded_removes_excluded_entries_too(sshd: Sshd, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    rules = ["- *.o", "- build/"]
    mine, theirs = tmp_path / "rcp" / "src", tmp_path / "rsync" / "src"
    for dst in (mine, theirs):
        shutil.copytree(src, dst, symlinks=True)
        put(dst, "stale.o")
        put(dst, "extra.txt")
    result, _ = copy(sshd, src, mine.parent, filters=rules, delete_excluded=True)
    assert result.ok, result.errors
    rsync(rules, src, theirs, "--delete-excluded")
    assert listing(mine) == listing(theirs)
    assert not any(p.endswith(".o") for p in listing(mine))
    assert "build/" not in listing(mine)


def test_delete_never_follows_a_symlink_out_of_the_tree(sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "src"
    put(src, "sub/file")
    outside = tmp_path / "outside"
    put(outside, "precious")
    put(outside, "inner/precious2")
    dst = tmp_path / "dst" / "src"
    put(dst, "sub/file")
    (dst / "escape").symlink_to(outside)  # the source has no "escape": the link goes, not what it points to
    (dst / "sub" / "escape2").symlink_to(outside / "inner")
    result, _ = copy(sshd, src, dst.parent, delete=True)
    assert result.ok, result.errors
    assert result.deleted == 2
    assert not os.path.lexists(dst / "escape") and not os.path.lexists(dst / "sub" / "escape2")
    assert (outside / "precious").exists() and (outside / "inner" / "precious2").exists()


def test_delete_deletes_nothing_when_an_entry_failed(sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "src"
    put(src, "ok.txt")
    put(src, "blocked/inside")
    dst = tmp_path / "dst" / "src"
    put(dst, "blocked")  # a file where the source has a directory: that entry fails
    put(dst, "extra.txt")
    result, seen = copy(sshd, src, dst.parent, delete=True)
    assert not result.ok and result.failed >= 1
    assert result.deleted == 0 and (dst / "extra.txt").exists()
    assert any("nothing deleted" in line and "failed" in line for line in seen.lines), seen.lines


def full_listing(root: Path) -> dict[str, tuple]:
    """Every entry with kind, mode, mtime and content: a dry run must change none of it."""
    return snapshot(root) if root.exists() else {}


def test_dry_run_writes_nothing_and_counts_what_the_real_run_does(sshd: Sshd, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    dst = tmp_path / "dst" / "src"  # the copy goes into dst's parent
    shutil.copytree(src, dst, symlinks=True)  # copytree keeps mtimes: unchanged
    shutil.rmtree(dst / "src")  # to create (a whole directory)
    put(dst, "a.c", b"different", OLD + 5)  # differs: kept
    put(dst, "extra.txt")  # to delete
    put(dst, "old_dir/inner")  # to delete, with its directory
    (dst / "docs" / "a1.md").unlink()  # to create
    before = full_listing(dst.parent)
    options = {"delete": True, "filters": ["- *.md~"]}
    dry, seen = copy(sshd, src, dst.parent, dry_run=True, **options)
    assert full_listing(dst.parent) == before
    assert leftovers(dst.parent) == []
    assert seen.bytes == 0  # the source sent no data
    actions = {(e.action, os.path.relpath(e.path.rstrip("/"), dst)) for e in dry.plan}
    assert ("create", "src") in actions and ("create", "src/main.c") in actions
    assert ("create", "docs/a1.md") in actions and ("kept", "a.c") in actions
    assert ("delete", "extra.txt") in actions and ("delete", "old_dir") in actions
    assert ("delete", "old_dir/inner") in actions and ("unchanged", "b.c") in actions
    assert dry.plan_omitted == 0
    real, seen_real = copy(sshd, src, dst.parent, **options)
    assert seen_real.bytes > 0
    for field in ("files_copied", "bytes_copied", "dirs_created", "symlinks_copied", "kept", "unchanged",
                  "ignored", "deleted", "failed"):
        assert getattr(dry, field) == getattr(real, field), field
    assert dry.ok == real.ok is False  # a.c was kept: both would exit 1


def test_dry_run_into_a_new_directory_creates_nothing(sshd: Sshd, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    dst = tmp_path / "new"
    dry, seen = copy(sshd, src, dst, dry_run=True)
    assert dry.ok and not dst.exists() and seen.bytes == 0
    assert dry.files_copied == sum(1 for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    assert {e.action for e in dry.plan} == {"create"}
    assert all(isinstance(e, rcp.PlanEntry) for e in dry.plan)


def test_the_master_keeps_a_dry_run_plan_bounded_in_bytes() -> None:
    """The plan the master holds from a destination rcpd (a hostile one may
    send any number of `plan` messages) stops at MAX_PLAN_BYTES, not only at
    MAX_PLAN_ENTRIES: the rest is counted as omitted."""
    side = Side(role="destination", endpoint=Endpoint("/dst"))
    path = "/dst/" + "p" * (60 << 10)
    for _ in range(700):  # 42 MiB of paths
        _add_plan(side, [[["create", path, 1]]])
    assert side.plan_dropped > 0 and len(side.plan) + side.plan_dropped == 700
    assert side.plan_bytes <= MAX_PLAN_BYTES
    assert sum(len(e.path) for e in side.plan) <= MAX_PLAN_BYTES


def test_cli_dry_run_prints_the_plan_and_exits_as_the_real_run(sshd: Sshd, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    dst = tmp_path / "dst" / "src"
    shutil.copytree(src, dst, symlinks=True)
    put(dst, "a.c", b"different", OLD + 5)
    put(dst, "extra.txt")
    before = full_listing(dst.parent)
    target = f"{sshd.alias}:{dst.parent}"
    quiet = rcp_ssh(sshd, "-n", "--delete", str(src), target)
    assert quiet.returncode == EXIT_PARTIAL, quiet.stderr  # a.c differs and is kept, as the real run would
    assert "dry run, nothing written: 0 to create, 0 to update" in quiet.stdout
    assert "1 kept" in quiet.stdout and "1 to delete" in quiet.stdout
    assert "extra.txt" not in quiet.stdout  # entries only with -v
    loud = rcp_ssh(sshd, "-v", "--dry-run", "--delete", str(src), target)
    assert loud.returncode == EXIT_PARTIAL
    assert any(line.startswith("delete") and "/src/extra.txt (" in line for line in loud.stdout.splitlines())
    assert any(line.startswith("kept") and "a.c" in line for line in loud.stdout.splitlines())
    assert full_listing(dst.parent) == before
    real = rcp_ssh(sshd, "--delete", str(src), target)
    assert real.returncode == EXIT_PARTIAL
    assert not (dst / "extra.txt").exists()


def test_filters_apply_on_a_remote_source_too(sshd: Sshd, tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    rules = ["+ keep/x.o", "- *.o", "- /docs/"]
    seen = Received()
    result = rcp.copy(f"{sshd.alias}:{src}", str(tmp_path / "rcp"), progress=seen, filters=rules,
                      **ssh_opts(sshd))
    assert result.ok, result.errors
    rsync(rules, src, tmp_path / "rsync")
    assert listing(tmp_path / "rcp") == listing(tmp_path / "rsync")
