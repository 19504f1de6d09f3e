#!/usr/bin/env python3
"""Checks the parameters in python/rcp/_core.pyi against the built rcp._core.

mypy.stubtest checks that the stub and the module have the same names, but it
cannot see the parameters of pybind11 functions (they have no __signature__).
pybind11 writes them in the first line of each docstring instead,
`name(self: rcp._core.Link, timeout: float = 10.0) -> tuple`; this compares
those with the stub: the names and their order, which are keyword-only, which
have defaults and the defaults' values. Arguments bound without py::arg (named
arg0, arg1... by pybind11) must be positional-only in the stub. Types are left
to the reader (pybind11 spells them differently)."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from typing import Any, NamedTuple

STUB = Path(__file__).resolve().parent.parent / "python" / "rcp" / "_core.pyi"


class Param(NamedTuple):
    name: str
    kind: str  # "positional", "keyword" or "both"
    default: str | None  # source text; None when there is none


def split_top(text: str) -> list[str]:
    """Splits at commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([<{":
            depth += 1
        elif ch in ")]>}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def runtime_params(name: str, doc: str, method: bool) -> list[Param] | None:
    first = doc.lstrip("\n").splitlines()[0] if doc else ""
    if not first.startswith(name + "(") or "Overloaded function" in doc:
        return None
    inner = first[len(name) + 1:first.rindex(") ->")]
    params, keyword_only = [], False
    for part in split_top(inner):
        if part == "*":
            keyword_only = True
            continue
        head, _, default = part.partition(" = ")
        pname = head.split(":")[0].strip()
        unnamed = pname.startswith("arg") and pname[3:].isdigit()  # bound without py::arg
        kind = "keyword" if keyword_only else "positional" if unnamed else "both"
        params.append(Param(pname, kind, default or None))
    return params[1:] if method else params


def stub_params(fn: ast.FunctionDef, method: bool) -> list[Param]:
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [Param(arg.arg, "positional" if arg in a.posonlyargs else "both",
                    ast.unparse(d) if d is not None else None) for arg, d in zip(positional, defaults)]
    params += [Param(arg.arg, "keyword", ast.unparse(d) if d is not None else None)
               for arg, d in zip(a.kwonlyargs, a.kw_defaults)]
    is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)
    return params[1:] if method and not is_static else params


def same_default(runtime: str | None, stub: str | None) -> bool:
    if runtime is None or stub is None:
        return runtime is None and stub is None
    if stub == "...":
        return True
    try:
        return bool(ast.literal_eval(runtime) == ast.literal_eval(stub))
    except (ValueError, SyntaxError):
        return runtime == stub


def compare(where: str, runtime: list[Param], stub: list[Param]) -> list[str]:
    if len(runtime) != len(stub):
        return [f"{where}: {len(runtime)} parameters at runtime {[p.name for p in runtime]}, "
                f"{len(stub)} in the stub {[p.name for p in stub]}"]
    problems = []
    for r, s in zip(runtime, stub):
        if r.kind != s.kind or (r.kind != "positional" and r.name != s.name):
            problems.append(f"{where}: parameter {r.name} ({r.kind}) at runtime, {s.name} ({s.kind}) in the stub")
        elif not same_default(r.default, s.default):
            problems.append(f"{where}: parameter {r.name} defaults to {r.default} at runtime, {s.default} in the stub")
    return problems


def check(module: Any, tree: ast.Module) -> list[str]:
    problems = []
    checked = 0

    def visit(owner: Any, body: list[ast.stmt], prefix: str, method: bool) -> None:
        nonlocal checked
        for node in body:
            if isinstance(node, ast.ClassDef) and inspect.isclass(getattr(owner, node.name, None)):
                visit(getattr(owner, node.name), node.body, f"{prefix}{node.name}.", True)
            elif isinstance(node, ast.FunctionDef):
                is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)
                target = owner.__dict__.get(node.name) if method else getattr(owner, node.name, None)
                if is_property or target is None:
                    continue  # properties have no parameters; missing names are stubtest's
                target = target.__func__ if isinstance(target, staticmethod) else target
                params = runtime_params(node.name, target.__doc__ or "", method and not isinstance(
                    owner.__dict__.get(node.name), staticmethod))
                if params is None:
                    continue  # not a pybind11 function (e.g. an inherited __init__)
                checked += 1
                problems.extend(compare(prefix + node.name, params, stub_params(node, method)))

    visit(module, tree.body, module.__name__ + ".", False)
    if checked == 0:
        problems.append("no pybind11 signature found: is rcp._core built with docstrings?")
    return problems


def main() -> int:
    import rcp._core

    problems = check(rcp._core, ast.parse(STUB.read_text(), str(STUB)))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
