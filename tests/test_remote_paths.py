"""Remote paths as scp means them, through the real sshd fixture: `host:` and
`host:rel` below the login's home, `~` and `~user` expanded by the remote
rcpd, `/abs` as is, and remote wildcards expanded by the source rcpd (no
shell). The fixture's login is the current user, so the remote home is the
real one: each test works in a uniquely named directory there and removes it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import rcp
from rcp.errors import EXIT_OK, EXIT_PARTIAL
from sshd import Sshd
from test_copy_ssh import RCPD, opts, rcp_cli


@dataclass(frozen=True)
class Home:
    """The remote login's home and this test's own directory in it."""
    home: Path
    dir: Path  # home / name, created empty

    @property
    def name(self) -> str:
        return self.dir.name


@pytest.fixture
def home() -> Iterator[Home]:
    """A fresh directory under the login's home; it, and anything else a test
    put in the home under its name, is removed afterwards."""
    entry = pwd.getpwuid(os.getuid())
    base = Path(entry.pw_dir)
    name = f"rcp-test-{uuid.uuid4().hex[:12]}"
    (base / name).mkdir(mode=0o700)
    try:
        yield Home(base, base / name)
    finally:
        for p in base.iterdir():
            if p.name.startswith(name):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def cli(sshd: Sshd, *operands: str) -> tuple[int, str]:
    out = rcp_cli("--no-progress", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD, *operands)
    return out.returncode, out.stderr


def user_name() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def test_relative_source_is_below_the_home(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    (home.dir / "notes.txt").write_bytes(b"relative")
    code, err = cli(sshd, f"{sshd.alias}:{home.name}/notes.txt", str(tmp_path))
    assert code == EXIT_OK, err
    assert (tmp_path / "notes.txt").read_bytes() == b"relative"


def test_relative_source_ignores_the_masters_cwd(sshd: Sshd, home: Home, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The same relative name exists in the master's cwd: the remote home's is the one copied."""
    (home.dir / "f").write_bytes(b"from the remote home")
    (tmp_path / home.name).mkdir()
    (tmp_path / home.name / "f").write_bytes(b"from the master's cwd")
    monkeypatch.chdir(tmp_path)
    result = rcp.copy(f"{sshd.alias}:{home.name}/f", str(tmp_path / "out"), **opts(sshd))
    assert result.ok, result.errors
    assert (tmp_path / "out").read_bytes() == b"from the remote home"


def test_tilde_source(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    (home.dir / "sub").mkdir()
    (home.dir / "sub" / "a").write_bytes(b"tilde")
    code, err = cli(sshd, f"{sshd.alias}:~/{home.name}/sub", str(tmp_path))
    assert code == EXIT_OK, err
    assert (tmp_path / "sub" / "a").read_bytes() == b"tilde"


def test_tilde_user_source(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    (home.dir / "mine.txt").write_bytes(b"tilde user")
    code, err = cli(sshd, f"{sshd.alias}:~{user_name()}/{home.name}/mine.txt", str(tmp_path / "copy.txt"))
    assert code == EXIT_OK, err
    assert (tmp_path / "copy.txt").read_bytes() == b"tilde user"


def test_unknown_tilde_user_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    code, err = cli(sshd, f"{sshd.alias}:~no-such-user-rcp/x", str(dest))
    assert code == EXIT_PARTIAL, err
    assert "~no-such-user-rcp/x: no such user 'no-such-user-rcp'" in err, err
    assert list(dest.iterdir()) == []


def test_absolute_source(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "abs.txt").write_bytes(b"absolute")
    code, err = cli(sshd, f"{sshd.alias}:{tmp_path / 'abs.txt'}", str(tmp_path / "out.txt"))
    assert code == EXIT_OK, err
    assert (tmp_path / "out.txt").read_bytes() == b"absolute"


def test_bare_host_as_source_names_nothing_to_copy(sshd: Sshd, tmp_path: Path) -> None:
    """`host:` is the home itself, which is not copied whole by accident."""
    code, err = cli(sshd, f"{sshd.alias}:", str(tmp_path))
    assert code == EXIT_PARTIAL, err
    assert "name a file or directory inside it" in err, err
    assert list(tmp_path.iterdir()) == []


def test_wildcard_copies_only_what_matches(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    logs = home.dir / "logs"
    logs.mkdir()
    for name in ("b.txt", "a.txt", "c.log", ".hidden.txt", "txt"):
        (logs / name).write_bytes(name.encode())
    (logs / "d.txt").mkdir()  # a directory that matches is copied as one
    (logs / "d.txt" / "inner").write_bytes(b"inner")
    dest = tmp_path / "dest"
    dest.mkdir()
    code, err = cli(sshd, f"{sshd.alias}:{home.name}/logs/*.txt", str(dest))
    assert code == EXIT_OK, err
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "b.txt", "d.txt"]
    assert (dest / "a.txt").read_bytes() == b"a.txt"
    assert (dest / "d.txt" / "inner").read_bytes() == b"inner"


def test_wildcard_under_tilde_and_absolute(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    for name in ("x1.gz", "x2.gz", "y.gz"):
        (home.dir / name).write_bytes(name.encode())
    into = tmp_path / "tilde"
    into.mkdir()
    result = rcp.copy(f"{sshd.alias}:~/{home.name}/x?.gz", str(into), **opts(sshd))
    assert result.ok and result.files_copied == 2, result.errors
    assert sorted(p.name for p in into.iterdir()) == ["x1.gz", "x2.gz"]
    into = tmp_path / "abs"
    into.mkdir()
    result = rcp.copy(f"{sshd.alias}:{home.dir}/[xy]*.gz", str(into), **opts(sshd))
    assert result.ok and result.files_copied == 3, result.errors


def test_wildcard_matching_nothing_is_a_clear_error(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    (home.dir / "a.txt").write_bytes(b"a")
    dest = tmp_path / "dest"
    dest.mkdir()
    code, err = cli(sshd, f"{sshd.alias}:{home.name}/*.zip", str(dest))
    assert code == EXIT_PARTIAL, err
    assert f"{home.dir}/*.zip: No such file or directory" in err, err
    assert list(dest.iterdir()) == []


def test_wildcard_matching_too_much_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    """Past 100 000 matches the expansion stops with an error: nothing is copied."""
    many = tmp_path / "many"
    many.mkdir()
    for i in range(100_001):
        os.close(os.open(many / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
    dest = tmp_path / "dest"
    dest.mkdir()
    code, err = cli(sshd, f"{sshd.alias}:{many}/f*", str(dest))
    assert code == EXIT_PARTIAL, err
    assert "the pattern matches more than 100000 entries" in err, err
    assert list(dest.iterdir()) == []


def test_wildcard_is_never_run_by_a_shell(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    """Shell syntax in a remote operand is a file name or a pattern, never a command."""
    canary = home.dir / "canary"
    (home.dir / "a.txt").write_bytes(b"a")
    dest = tmp_path / "dest"
    dest.mkdir()
    for path in (f"{home.name}/$(touch {canary})*", f"{home.name}/`touch {canary}`", f"{home.name}/*;touch {canary}"):
        code, err = cli(sshd, f"{sshd.alias}:{path}", str(dest))
        assert code == EXIT_PARTIAL, err
        assert "No such file or directory" in err, err
    assert not canary.exists()
    assert list(dest.iterdir()) == []


def test_wildcard_with_several_matches_needs_a_directory(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt"):
        (home.dir / name).write_bytes(name.encode())
    code, err = cli(sshd, f"{sshd.alias}:{home.name}/*.txt", str(tmp_path / "single"))
    assert code == EXIT_PARTIAL, err
    assert "not a directory, but the source operand matches 2 names" in err, err
    assert list(tmp_path.iterdir()) == []
    # One match may become DST itself, as with scp.
    code, err = cli(sshd, f"{sshd.alias}:{home.name}/a*", str(tmp_path / "single"))
    assert code == EXIT_OK, err
    assert (tmp_path / "single").read_bytes() == b"a.txt"


def test_relative_remote_destination(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"to a relative dir")
    (home.dir / "in").mkdir()
    code, err = cli(sshd, str(tmp_path / "f.txt"), f"{sshd.alias}:{home.name}/in/")
    assert code == EXIT_OK, err
    assert (home.dir / "in" / "f.txt").read_bytes() == b"to a relative dir"
    # A relative destination that does not exist yet is a new name below the home.
    code, err = cli(sshd, str(tmp_path / "f.txt"), f"{sshd.alias}:{home.name}/renamed.txt")
    assert code == EXIT_OK, err
    assert (home.dir / "renamed.txt").read_bytes() == b"to a relative dir"


def test_tilde_remote_destination(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_bytes(b"to ~/x")
    code, err = cli(sshd, str(tmp_path / "t.txt"), f"{sshd.alias}:~/{home.name}/x")
    assert code == EXIT_OK, err
    assert (home.dir / "x").read_bytes() == b"to ~/x"
    code, err = cli(sshd, str(tmp_path / "t.txt"), f"{sshd.alias}:~{user_name()}/{home.name}/")
    assert code == EXIT_OK, err
    assert (home.dir / "t.txt").read_bytes() == b"to ~/x"


def test_unknown_tilde_user_as_destination_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    code, err = cli(sshd, str(tmp_path / "f"), f"{sshd.alias}:~no-such-user-rcp/")
    assert code != EXIT_OK
    assert "destination: ~no-such-user-rcp/: no such user 'no-such-user-rcp'" in err, err


def test_bare_host_destination_is_the_home(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    """`rcp file host:` puts file in the home, as scp does (named under the
    fixture's prefix, so the fixture removes it)."""
    src = tmp_path / f"{home.name}-top.txt"
    src.write_bytes(b"to the home")
    code, err = cli(sshd, str(src), f"{sshd.alias}:")
    assert code == EXIT_OK, err
    assert (home.home / src.name).read_bytes() == b"to the home"


def test_missing_relative_destination_dir(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    code, err = cli(sshd, str(tmp_path / "f"), f"{sshd.alias}:{home.name}/absent/")
    assert code != EXIT_OK
    assert f"{home.dir}/absent/: destination directory does not exist" in err, err


def test_remote_to_remote_wildcard_into_tilde(sshd: Sshd, home: Home) -> None:
    """Both rcpds resolve: the source's wildcard and the destination's `~`."""
    (home.dir / "src").mkdir()
    (home.dir / "out").mkdir()
    for name in ("one.csv", "two.csv", "skip.tsv"):
        (home.dir / "src" / name).write_bytes(name.encode())
    result = rcp.copy(f"{sshd.alias}:{home.name}/src/*.csv", f"{sshd.alias}:~/{home.name}/out/", **opts(sshd))
    assert result.ok and result.files_copied == 2, result.errors
    assert sorted(p.name for p in (home.dir / "out").iterdir()) == ["one.csv", "two.csv"]


def test_local_operands_stay_literal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local path is the local shell's business: `*` and `~` in it are names."""
    (tmp_path / "a*b").write_bytes(b"star")
    (tmp_path / "axb").write_bytes(b"not me")
    (tmp_path / "~x").write_bytes(b"tilde")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    result = rcp.copy(["a*b", "./~x"], str(tmp_path / "out"))
    assert result.ok, result.errors
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a*b", "~x"]


def test_local_name_with_brackets_to_a_remote_destination(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    """A local path is literal: `[1]` in it is no pattern the destination should hold it to."""
    (tmp_path / "photo [1].jpg").write_bytes(b"brackets")
    code, err = cli(sshd, str(tmp_path / "photo [1].jpg"), f"{sshd.alias}:{home.name}/")
    assert code == EXIT_OK, err
    assert (home.dir / "photo [1].jpg").read_bytes() == b"brackets"


def test_local_name_with_brackets_to_a_local_destination(tmp_path: Path) -> None:
    (tmp_path / "photo [1].jpg").write_bytes(b"brackets")
    (tmp_path / "out").mkdir()
    result = rcp.copy(str(tmp_path / "photo [1].jpg"), str(tmp_path / "out"))
    assert result.ok, result.errors
    assert (tmp_path / "out" / "photo [1].jpg").read_bytes() == b"brackets"


def test_remote_name_with_brackets_needs_no_escaping(sshd: Sshd, home: Home, tmp_path: Path) -> None:
    """`host:'dir/photo [1].jpg'` matches no `photo 1.jpg`, so it stands for
    itself, as scp's remote shell leaves a pattern that matches nothing."""
    (home.dir / "dir").mkdir()
    (home.dir / "dir" / "photo [1].jpg").write_bytes(b"brackets")
    dest = tmp_path / "dest"
    dest.mkdir()
    code, err = cli(sshd, f"{sshd.alias}:{home.name}/dir/photo [1].jpg", str(dest))
    assert code == EXIT_OK, err
    assert sorted(p.name for p in dest.iterdir()) == ["photo [1].jpg"]
    assert (dest / "photo [1].jpg").read_bytes() == b"brackets"
    # Escaped, it names the file too; as a pattern that matches, it means what it matches.
    (home.dir / "dir" / "photo 1.jpg").write_bytes(b"matched")
    out = tmp_path / "out"
    out.mkdir()
    escaped, pattern = f"{home.name}/dir/photo \\[1\\].jpg", f"{home.name}/dir/p?oto [1].jpg"
    code, err = cli(sshd, f"{sshd.alias}:{escaped}", f"{sshd.alias}:{pattern}", str(out))
    assert code == EXIT_OK, err
    assert sorted(p.name for p in out.iterdir()) == ["photo 1.jpg", "photo [1].jpg"]


@pytest.mark.parametrize("name", ["*", "a?b", "[x]"])
def test_a_file_named_like_a_pattern_is_copied_when_it_is_the_only_match(
        sshd: Sshd, home: Home, tmp_path: Path, name: str) -> None:
    (home.dir / "d").mkdir()
    (home.dir / "d" / name).write_bytes(name.encode())
    dest = tmp_path / "dest"
    dest.mkdir()
    code, err = cli(sshd, f"{sshd.alias}:{home.name}/d/{name}", str(dest))
    assert code == EXIT_OK, err
    assert [p.name for p in dest.iterdir()] == [name]
    assert (dest / name).read_bytes() == name.encode()
