#!/usr/bin/env python3
"""Fails on an #include that points up the layer order (docs/architecture.md).

Each folder of cpp/ is a layer and a library; a file may include headers of its
own layer and of the layers it stands on, never one above it. Static libraries
alone would not stop such a back-edge, so `make lint` runs this."""

from __future__ import annotations

import re
import sys
from pathlib import Path

# layer -> the layers it may include (itself included)
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "net": {"base", "net"},
    "quic": {"base", "net", "quic"},
    "wire": {"base", "wire"},
    "link": {"base", "net", "quic", "wire", "link"},
    "copy": {"base", "net", "quic", "wire", "link", "copy"},
    "ssh": {"base", "ssh"},
    "wanem": {"base", "net", "wanem"},
    # on top: the daemon never links SSH; the Python module takes everything
    "rcpd": {"base", "net", "quic", "wire", "link", "copy", "rcpd"},
    "bindings": {"base", "net", "quic", "wire", "link", "copy", "ssh", "bindings"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def check(root: Path) -> list[str]:
    problems = []
    for path in sorted((root / "cpp").rglob("*")):
        if path.suffix not in (".h", ".cpp"):
            continue
        layer = path.relative_to(root / "cpp").parts[0]
        if layer not in ALLOWED:
            problems.append(f"{path.relative_to(root)}: cpp/{layer}/ is not a known layer (scripts/check_layers.py)")
            continue
        text = path.read_text()
        for m in INCLUDE.finditer(text):
            target = m.group(1).split("/")[0] if "/" in m.group(1) else None
            line = text.count("\n", 0, m.start()) + 1
            if target is None:
                problems.append(f"{path.relative_to(root)}:{line}: include \"{m.group(1)}\" without its layer folder")
            elif target not in ALLOWED[layer]:
                problems.append(f"{path.relative_to(root)}:{line}: {layer}/ may not include {m.group(1)} "
                                f"({target}/ is not below {layer}/)")
    return problems


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
