"""Text for a terminal: what the command line prints from event data, made harmless.

Event data comes from outside. Printed raw, an ESC sequence recolours or clears the
screen, rewrites the title or moves the cursor, a newline or carriage return forges a
line of output, and a bidi override reorders what follows. So control characters (C0,
DEL, C1), format characters and line separators are printed as visible escapes.
"""

from __future__ import annotations

import unicodedata

_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN


def visible(text: str) -> str:
    r"""`text` with each hidden character as `\xNN`, `\uNNNN` or `\UNNNNNNNN`, and each
    backslash doubled, so that an escape shown was never in the data as such."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(char) for char in text)


def visible_json(text: str) -> str:
    r"""JSON text (as orjson writes it) with the hidden characters JSON leaves raw in strings
    (DEL, C1, format characters, line separators) as `\uNNNN`: the same value, safe to
    print. A newline is left alone: orjson escapes it in strings, so it is indentation."""
    if text.isprintable():
        return text
    return "".join(_json_escape(c) if c != "\n" and _hidden(c) else c for c in text)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if not _hidden(char):
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
