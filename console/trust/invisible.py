"""Invisible characters in text a model reads: find them, decode them, show them.

Unicode tag characters (U+E0000-E007F) mirror ASCII yet render as nothing, and models
read them as the text they mirror ("ASCII smuggling"); runs of variation selectors can
carry arbitrary bytes the same way. Bidi controls reorder what a person sees; zero-width
characters split words so that filters miss them. People reviewing a tool must see all
of it, so everything here has a visible rendering.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

TAGS = range(0xE0000, 0xE0080)
"""Unicode tag characters: invisible, yet models read them as the ASCII they mirror."""
BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
"""Embeddings, overrides and isolates: they reorder what a reader sees (Trojan Source)."""
TERMINAL = {0x1B, 0x9B}
"""ESC and CSI start terminal escape sequences that can rewrite what tbx itself shows."""
JOINERS = {0x200C, 0x200D}
FLAG = "\U0001F3F4"
CANCEL_TAG = "\U000E007F"
ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def selector_byte(char: str) -> int | None:
    """Variation selectors as the byte they smuggle (the emoji-smuggling encoding)."""
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F:
        return code - 0xFE00
    if 0xE0100 <= code <= 0xE01EF:
        return code - 0xE0100 + 16
    return None


def is_invisible(char: str) -> bool:
    return char not in ALLOWED_CONTROLS and unicodedata.category(char) in ("Cf", "Cc")


def escape(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def runs(text: str) -> Iterator[tuple[str, str]]:
    """Split ``text`` into ("plain" | "tags" | "selectors" | "invisible", chunk) runs.
    Printable ASCII is plain as it stands; only the stretches around other characters are
    walked one character at a time."""
    pos = 0
    for stretch in _NOT_PRINTABLE_ASCII.finditer(text):
        if stretch.start() > pos:
            yield "plain", text[pos: stretch.start()]
        yield from _walk(text, stretch.start(), stretch.end())
        pos = stretch.end()
    if pos < len(text):
        yield "plain", text[pos:]


_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e\n\r\t]+")


def _walk(text: str, begin: int, end: int) -> Iterator[tuple[str, str]]:
    def kind(i: int) -> str:
        c = text[i]
        if ord(c) in TAGS:
            return "tags"
        if selector_byte(c) is not None:
            # One selector after a character is ordinary (emoji style); a run carries data.
            near = [j for j in (i - 1, i + 1) if 0 <= j < len(text)]
            return "selectors" if any(selector_byte(text[j]) is not None for j in near) else "plain"
        return "invisible" if is_invisible(c) else "plain"

    start = begin
    for i in range(begin + 1, end + 1):
        if i == end or kind(i) != kind(start) or kind(start) == "invisible":
            chunk = text[start:i]
            yield ("plain" if _flag_tags(text, start, chunk) else kind(start)), chunk
            start = i


def _flag_tags(text: str, start: int, chunk: str) -> bool:
    """The one honest use of tag characters: subdivision flags such as England's, a black
    flag followed by a region code in tags and a cancel tag."""
    return (start > 0 and text[start - 1] == FLAG and chunk[-1] == CANCEL_TAG
            and 2 <= len(chunk) - 1 <= 6 and all(chr(ord(c) - 0xE0000).isalnum() for c in chunk[:-1]))


def decode_selectors(chunk: str) -> str:
    return bytes(b for c in chunk if (b := selector_byte(c)) is not None).decode("utf-8", "replace")


def decode_tags(chunk: str) -> str:
    # U+E0001 (language tag) and U+E007F (cancel tag) carry no text.
    return "".join(chr(ord(c) - 0xE0000) for c in chunk if 0xE0001 < ord(c) < 0xE007F)


def decode_hidden(text: str) -> str:
    """``text`` with every invisible made visible: ‹U+200B› for a zero-width space,
    ‹hidden: ...› for the ASCII that tag characters (or a variation-selector run) spell."""
    out = []
    for kind, chunk in runs(text):
        if kind == "tags" and (hidden := decode_tags(chunk)):
            out.append(f"‹hidden: {escape(hidden)}›")
        elif kind == "tags":
            out.append("".join(f"‹U+{ord(c):04X}›" for c in chunk))
        elif kind == "selectors":
            out.append(f"‹hidden: {escape(decode_selectors(chunk))}›")
        elif kind == "invisible":
            out.append(f"‹U+{ord(chunk):04X}›")
        else:
            out.append(chunk)
    return "".join(out)


def model_view(text: str) -> str:
    """What a model reads: tag characters as their ASCII, other invisibles dropped, so a
    word split by a zero-width space, or tag-encoded text, cannot slip past text rules."""
    if _NOT_PRINTABLE_ASCII.search(text) is None:
        return text  # nothing in printable ASCII hides or normalises
    plain = "".join(decode_tags(chunk) if kind == "tags" else chunk
                    for kind, chunk in runs(text) if kind in ("plain", "tags"))
    return unicodedata.normalize("NFKC", plain)


def benign_joiner(text: str, char: str) -> bool:
    """ZWJ/ZWNJ belong in emoji sequences and in scripts that use them (Arabic, Indic):
    only ones next to plain ASCII are suspicious."""
    if ord(char) not in JOINERS:
        return False
    for i, c in enumerate(text):
        if c == char:
            neighbours = [text[j] for j in (i - 1, i + 1) if 0 <= j < len(text)]
            if not neighbours or any(n.isascii() for n in neighbours):
                return False
    return True
