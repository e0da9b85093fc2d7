"""Making server-controlled text safe to show: visible, bounded, and never markup.

HTML escaping is Jinja2's autoescape's job (always on, see ``html.py``); these helpers do what
autoescape does not: they make control and invisible formatting characters visible (a status
reason or header value can carry ``\\r``, ESC or a right-to-left override) and cap lengths, so
a hostile or huge value cannot reshape or swamp the page.
"""
from __future__ import annotations

import unicodedata

# Caps, in characters, for what a server controls.
REASON_CAP = 200
HEADER_NAME_CAP = 120
HEADER_VALUE_CAP = 400
TEXT_CAP = 2000          # observed/expected lines (they quote server bytes)
URL_CAP = 300
ID_CAP = 80
STDERR_CAP = 4000

_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\"}


def clip(s: object, limit: int) -> str:
    """``s`` as text of at most ``limit`` characters (plus a note saying how much was cut)."""
    text = "" if s is None else str(s)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def visible(s: object, limit: int = TEXT_CAP, keep_newlines: bool = False) -> str:
    """Text with control, format (bidi overrides, zero-width) and separator characters shown as
    escapes, then clipped. Printable characters, including non-ASCII letters, are kept."""
    text = "" if s is None else str(s)
    cut = max(0, len(text) - limit)
    text = text[:limit]  # do not walk megabytes to show a few hundred characters
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch in _NAMED and ch != "\\":
            out.append(_NAMED[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    shown = "".join(out)
    return f"{shown}… [{cut} more characters]" if cut else shown


def escape_bytes(latin1: str, limit: int | None = None) -> str:
    """Wire bytes (kept as latin-1 text) the way Python shows bytes: printable ASCII as is,
    ``\\r \\n \\t \\\\`` named, everything else ``\\xNN``. ``limit`` caps the input bytes."""
    if limit is not None:
        latin1 = latin1[:limit]
    out = []
    for ch in latin1:
        o = ord(ch)
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{o & 0xFF:02x}")
    return "".join(out)


def ms(seconds: float | None, digits: int | None = None) -> str:
    """A time for people: ``12.3 ms`` below 10 s… as milliseconds, seconds above."""
    if seconds is None:
        return "–"
    if seconds == 0:
        return "0 ms"
    a = abs(seconds)
    if a >= 10:
        return f"{seconds:.2f} s"
    value = seconds * 1000
    if digits is None:
        digits = 0 if a >= 0.1 else 1 if a >= 0.01 else 2
    return f"{value:.{digits}f} ms"


def size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"
