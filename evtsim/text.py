"""Text from elsewhere (a trace file, a command line) made safe to show on a terminal."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on or not show written as an escape.

    Control characters (ESC, NUL, CR, TAB...), lone surrogates, and format characters such as
    U+202E (right-to-left override) become ``\\x1b``, ``\\x00``, ``\\r``, ``\\ud800``, ``\\u202e``, as
    ``repr`` writes them, so a crafted string can neither drive the terminal nor fail to encode.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
