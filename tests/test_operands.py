"""Operand parsing: scp's rules for local paths, [user@]host:path and [ipv6] forms."""

from __future__ import annotations

import pytest

from rcp.errors import UsageError
from rcp.model import Endpoint
from rcp.operands import has_wildcard, parse_operand, resolve_plan, root_rule


def local(path: str) -> Endpoint:
    return Endpoint(path=path)


def remote(host: str, path: str, user: str | None = None, port: int | None = None) -> Endpoint:
    return Endpoint(path=path, host=host, user=user, port=port)


@pytest.mark.parametrize("text, expected", [
    # local paths
    ("file.txt", local("file.txt")),
    ("/abs/path", local("/abs/path")),
    ("dir/", local("dir/")),
    (".", local(".")),
    ("..", local("..")),
    ("./a:b", local("./a:b")),
    ("../x:y", local("../x:y")),
    ("/tmp/x:y", local("/tmp/x:y")),
    ("dir/a:b", local("dir/a:b")),  # a '/' before the first ':'
    ("dir/sub/c:d:e", local("dir/sub/c:d:e")),
    ("./-x", local("./-x")),
    ("-x", local("-x")),  # no ':' at all: a local name (the CLI needs '--' before it)
    ("my file", local("my file")),
    ("héllo wörld/日本語.txt", local("héllo wörld/日本語.txt")),
    ("[abc", local("[abc")),  # no ':' anywhere: just a strange local name
    ("[abc/x:y", local("[abc/x:y")),  # '/' before the first ':'
    ("a@b", local("a@b")),
    # host:path
    ("host:path", remote("host", "path")),
    ("host:", remote("host", ".")),  # remote home
    ("host:/abs", remote("host", "/abs")),
    ("host:dir/", remote("host", "dir/")),
    ("host:-x", remote("host", "-x")),  # a leading '-' in a path is fine
    ("host:a:b", remote("host", "a:b")),
    ("host:/p/with:colons:x", remote("host", "/p/with:colons:x")),
    ("host::x", remote("host", ":x")),
    ("host:file with spaces", remote("host", "file with spaces")),
    ("host:日本語/ファイル", remote("host", "日本語/ファイル")),
    ("example.com:~/x", remote("example.com", "~/x")),  # resolved by the remote rcpd, not here
    ("host:~", remote("host", "~")),
    ("host:~alice/x", remote("host", "~alice/x")),
    ("host:logs/*.gz", remote("host", "logs/*.gz")),  # a wildcard the remote rcpd expands
    ("host:[ab].txt", remote("host", "[ab].txt")),
    ("host:a\\*b", remote("host", "a\\*b")),
    ("häst.example:x", remote("häst.example", "x")),
    ("10.0.0.1:/data", remote("10.0.0.1", "/data")),
    # user@
    ("alice@host:path", remote("host", "path", user="alice")),
    ("alice@host:", remote("host", ".", user="alice")),
    ("a@b@host:x", remote("host", "x", user="a@b")),  # the last '@' splits, as in scp
    ("first.last@host:x", remote("host", "x", user="first.last")),
    # No port in an operand, as in scp (-P gives it): digits and ':' are the path's.
    ("host:2222:path", remote("host", "2222:path")),
    ("host:2024:notes", remote("host", "2024:notes")),
    ("host:22:", remote("host", "22:")),
    ("bob@host:65535:/x", remote("host", "65535:/x", user="bob")),
    ("host:0:x", remote("host", "0:x")),
    ("host:22", remote("host", "22")),
    ("host:22a:x", remote("host", "22a:x")),  # not all digits: part of the path
    ("host:/22:x", remote("host", "/22:x")),
    ("host:٣:x", remote("host", "٣:x")),  # non-ASCII digits are not a port
    # IPv6
    ("[::1]:path", remote("::1", "path")),
    ("[::1]:", remote("::1", ".")),
    ("[2001:db8::5]:/srv/a:b", remote("2001:db8::5", "/srv/a:b")),
    ("[fe80::1%eth0]:x", remote("fe80::1%eth0", "x")),
    ("[::1]:2222:path", remote("::1", "2222:path")),
    ("carol@[::1]:path", remote("::1", "path", user="carol")),
    ("carol@[2001:db8::1]:443:/x", remote("2001:db8::1", "443:/x", user="carol")),
    ("[myhost]:x", remote("myhost", "x")),
])
def test_parse(text: str, expected: Endpoint) -> None:
    assert parse_operand(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty operand"),
    ("a\0b", "NUL"),
    ("host:a\0", "NUL"),
    (":path", "empty host"),
    ("user@:path", "empty host"),
    ("@host:path", "empty user"),
    ("-oProxyCommand=evil:x", "may not start with '-'"),
    ("-host:x", "may not start with '-'"),
    ("user@-host:x", "may not start with '-'"),
    ("-user@host:x", "user name may not start with '-'"),
    ("[-x]:y", "may not start with '-'"),
    ("[::1", "unclosed '['"),
    ("[::1:x", "unclosed '['"),
    ("user@[::1:x", "unclosed '['"),
    ("[::1/x", "unclosed '['"),
    ("[::1]", "expected ':' after ']'"),
    ("[::1]x:y", "expected ':' after ']'"),
    ("[]:x", "empty host"),
    ("host name:x", "invalid character"),
    ("ho[st:x", "invalid character"),
    ("ho\x1bst:x", "invalid character"),
])
def test_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        parse_operand(text)


def test_non_utf8_paths_pass_through_but_not_in_host_or_user() -> None:
    raw = "caf\udce9"  # b"caf\xe9" as Python decodes argv and file names
    assert parse_operand(raw) == local(raw)
    assert parse_operand(f"h:/x/{raw}") == Endpoint(path=f"/x/{raw}", host="h")
    with pytest.raises(UsageError, match="host name .* not valid UTF-8"):
        parse_operand(f"{raw}:/x")
    with pytest.raises(UsageError, match="user name .* not valid UTF-8"):
        parse_operand(f"{raw}@h:/x")
    with pytest.raises(UsageError, match="not a valid file name"):
        parse_operand("h:/x/\ud800")  # a lone surrogate no file system byte stands for


def test_refusal_suggests_dot_slash_for_local_names() -> None:
    with pytest.raises(UsageError, match=r"\./-x:y"):
        parse_operand("-x:y")


def test_usage_error_is_an_rcp_error_with_exit_2() -> None:
    import rcp
    from rcp.errors import EXIT_USAGE

    assert issubclass(UsageError, rcp.RcpError)
    assert EXIT_USAGE == 2


def test_endpoint_is_local() -> None:
    assert parse_operand("a").is_local
    assert not parse_operand("h:a").is_local


# -- resolve_plan


def test_plan_one_source() -> None:
    sources, dst = resolve_plan(["a", "host:b/"])
    assert sources == [local("a")]
    assert dst == remote("host", "b/")


def test_plan_several_sources_on_one_host() -> None:
    sources, dst = resolve_plan(["u@h:a", "u@h:b c", "u@h:", "/tmp/out/"])
    assert [s.path for s in sources] == ["a", "b c", "."]
    assert {(s.host, s.user, s.port) for s in sources} == {("h", "u", None)}
    assert dst == local("/tmp/out/")


def test_plan_host_names_compare_case_insensitively() -> None:
    sources, _ = resolve_plan(["Host:a", "host:b", "dst"])
    assert len(sources) == 2


def test_plan_local_sources_together() -> None:
    sources, dst = resolve_plan(["a", "./b", "/c", "h:d"])
    assert all(s.is_local for s in sources) and not dst.is_local


@pytest.mark.parametrize("operands", [
    ["h1:a", "h2:b", "dst"],
    ["a", "h:b", "dst"],
    ["h:a", "b", "dst"],
    ["u@h:a", "v@h:b", "dst"],
    ["[::1]:a", "[::2]:b", "dst"],
])
def test_plan_refuses_sources_on_different_hosts(operands: list[str]) -> None:
    with pytest.raises(UsageError, match="one source host at a time"):
        resolve_plan(operands)


def test_plan_error_names_both_hosts() -> None:
    with pytest.raises(UsageError) as info:
        resolve_plan(["alpha:x", "alpha:y", "bob@beta:2200:z", "dst"])
    assert "alpha" in str(info.value) and "bob@beta:2200" in str(info.value)


@pytest.mark.parametrize("operands, message", [
    ([], "missing SRC and DST"),
    (["only"], "at least one SRC and a DST"),
    (["a", ""], "empty operand"),
    (["-h:x", "dst"], "may not start with '-'"),
])
def test_plan_usage_errors(operands: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_plan(operands)


def test_plan_refuses_a_bare_string() -> None:
    with pytest.raises(UsageError):
        resolve_plan("ab")  # type: ignore[arg-type]


@pytest.mark.parametrize("operands", [
    ["d", "d/sub"], ["d", "d/"], ["d/", "d/sub/"], ["./d", "d/x/../sub"], ["f", "f"],
    ["h:/data", "h:/data/backup"], ["u@h:2222:/data", "u@h:2222:/data/"],
    ["h:d", "h:~/d/sub"], ["h:~/d", "h:d/"], ["h:~", "h:x"], ["h:", "h:~/x"],
])
def test_copy_into_itself_is_refused(operands: list[str], tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    with pytest.raises(UsageError, match="into itself"):
        resolve_plan(operands)


@pytest.mark.parametrize("operands", [["d", "dd"], ["d", "e/d"], ["h:/data", "g:/data/x"], ["h:/data", "/data/x"],
                                      ["h:/data", "h:2222:/data/x"], ["h:", "h:../x"], ["h:~", "h:~alice/x"],
                                      ["h:d", "h:~/dd"], ["h:~/d", "h:/d"]])
def test_similar_paths_elsewhere_are_fine(operands: list[str], tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    resolve_plan(operands)


@pytest.mark.parametrize("path, rule", [
    ("report.pdf", ("name", "report.pdf")),
    ("/data/run-42/", ("name", "run-42")),
    ("dir//", ("name", "dir")),
    ("logs/*.txt", ("glob", "*.txt")),
    ("a/b[0-9]", ("glob", "b[0-9]")),
    (".", ("any", "")),
    ("", ("any", "")),
    ("/", ("any", "")),
    ("~", ("any", "")),
    ("~alice", ("any", "")),
    ("a/..", ("any", "")),
    ("~/notes", ("name", "notes")),
    ("~/", ("any", "")),
    ("~alice/", ("any", "")),
    ("~alice/x", ("name", "x")),
    ("a/~b", ("name", "~b")),
    ("dir/*/", ("glob", "*")),
    ("*/x.txt", ("name", "x.txt")),  # every match of the pattern ends in x.txt
    ("a\\*b", ("name", "a*b")),  # no live wildcard: the rcpd names the file without its escape
    ("d*/a\\?", ("name", "a?")),
    ("d/a\\b", ("name", "a\\b")),  # no wildcard at all: the rcpd takes the path as written
    ("photo [1].jpg", ("glob", "photo [1].jpg")),  # the destination also allows it literally
    ("~al*ce", ("any", "")),
])
def test_root_rule_is_what_the_operand_names(path: str, rule: tuple[str, str]) -> None:
    assert root_rule(path) == rule


@pytest.mark.parametrize("path, rule", [
    ("photo [1].jpg", ("name", "photo [1].jpg")),  # the local shell's business: literal
    ("dir/a*b", ("name", "a*b")),
    ("a\\*b", ("name", "a\\*b")),
    ("~x", ("name", "~x")),
    ("/", ("any", "")),
    (".", ("any", "")),
])
def test_a_local_root_rule_is_the_literal_name(path: str, rule: tuple[str, str]) -> None:
    assert root_rule(path, local=True) == rule


@pytest.mark.parametrize("path, local, expected", [
    ("logs/*.gz", False, True),
    ("d[12]/x", False, True),
    ("photo [1].jpg", False, True),
    ("a\\*b", False, False),  # escaped: one file
    ("", False, False),          # host: stands for the home alone
    ("~", False, False),
    ("~/notes", False, False),
    ("~al*ce/x", False, False),  # a user name is never a pattern
    ("logs/*.gz", True, False),  # the local shell expanded it already
])
def test_has_wildcard_says_which_operands_may_have_several_roots(path: str, local: bool, expected: bool) -> None:
    assert has_wildcard(path, local=local) is expected
