"""JSON with comments and trailing commas, as VS Code writes its settings and mcp.json.

Comments are replaced by blanks (newlines kept) and trailing commas dropped, outside
strings only, so ``json`` reports errors at the same line and column as in the file.
"""

from __future__ import annotations

import json
from typing import Any


def strip_jsonc(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    pending_comma: int | None = None  # index in ``out`` of a comma that may be trailing
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
            pending_comma = None
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:end]))
            i = end
        else:
            if ch in "}]" and pending_comma is not None:
                out[pending_comma] = " "
            if ch == ",":
                pending_comma = len(out)
            elif not ch.isspace():
                pending_comma = None
            out.append(ch)
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the closing quote of the string opening at ``start``."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return len(text)  # unterminated: let json report it


def loads_jsonc(text: str) -> Any:
    """Parse JSONC; raises ``json.JSONDecodeError`` with positions in the original text."""
    return json.loads(strip_jsonc(text.removeprefix("\ufeff")))
