"""Making text from remote hosts safe to print on a terminal.

File names and error messages come from rcpds on other machines. Printed
raw, a name containing ESC could move the cursor, retitle the window, rewrite
earlier output or worse; a newline could forge a whole log line. `printable`
turns every such character into a visible escape instead.
"""

from __future__ import annotations

# Invisible characters that reorder how the rest of a line is displayed
# ("Trojan Source"): they could make one file name look like another.
_BIDI = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _escape(ch: str) -> str | None:
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:  # C0 controls (incl. ESC, \n, \t), DEL, C1 controls
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by os.fsdecode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF or code in _BIDI or code in (0x2028, 0x2029):
        return f"\\u{code:04x}"
    return None


def printable(text: object) -> str:
    """`text` with control characters, ESC, DEL, C1 controls, bidi overrides
    and lone surrogates replaced by visible escapes such as `\\x1b`; other
    unicode is kept. The result only contains printable characters, so
    applying it twice changes nothing more."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    elif not isinstance(text, str):
        text = str(text)
    out: list[str] = []
    for ch in text:
        esc = _escape(ch)
        out.append(ch if esc is None else esc)
    return "".join(out)
