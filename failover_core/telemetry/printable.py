"""Model keys shown to people: a key can come from anyone who may write to the shared
store, so a log line or a terminal shows it escaped, never raw control characters."""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: object) -> str:
    """``text`` with control characters, ANSI escapes, line breaks, lone surrogates and
    backslashes escaped Python-style (``\\n``, ``\\x1b``, ``\\udcff``): one line, inert in a
    terminal, and two different keys never look the same. Ordinary keys come back as
    they are."""
    text = str(text)
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        else:
            out.append(ascii(char)[1:-1])
    return "".join(out)
