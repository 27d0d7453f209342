"""Does a URI fall under a resource template (RFC 6570)?

A grant on a template lets an agent read the URIs the template can expand to, and no
others. Matching is conservative: a simple ``{var}`` matches what simple expansion can
produce (reserved characters are percent-encoded, so never ``/``, ``?`` or ``#``);
only the ``+`` and ``#`` operators, which pass reserved characters through, may span
path segments.
"""

from __future__ import annotations

import re
from functools import lru_cache

_EXPRESSION = re.compile(r"\{([^{}]*)\}")
_UNRESERVED = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})"
_SEGMENT = rf"(?:{_UNRESERVED}|[!$&'()*+,;=:@])*"
_PIECE = {
    "": rf"{_UNRESERVED}*(?:,{_UNRESERVED}*)*",
    "+": r"[^#]*",
    "#": r"(?:#.*)?",
    ".": rf"(?:\.{_UNRESERVED}*)*",
    "/": rf"(?:/{_SEGMENT})*",
    ";": r"(?:;[^/?#]*)*",
    "?": r"(?:\?[^#]*)?",
    "&": r"(?:&[^#]*)*",
}


@lru_cache(maxsize=4096)
def template_pattern(template: str) -> re.Pattern[str] | None:
    """The regex of URIs ``template`` can expand to; None for a malformed template."""
    parts, end = [], 0
    for match in _EXPRESSION.finditer(template):
        literal = template[end:match.start()]
        if "{" in literal or "}" in literal:
            return None
        parts.append(re.escape(literal))
        body = match.group(1)
        operator = body[:1] if body[:1] in _PIECE and body[:1] else ""
        names = body[len(operator):]
        if not names or not all(re.fullmatch(r"[A-Za-z0-9_.%]+(?::\d{1,4}|\*)?", n) for n in names.split(",")):
            return None
        parts.append(_PIECE[operator])
        end = match.end()
    tail = template[end:]
    if "{" in tail or "}" in tail:
        return None
    parts.append(re.escape(tail))
    return re.compile("".join(parts), re.DOTALL)


def matches(template: str, uri: str) -> bool:
    pattern = template_pattern(template)
    return pattern is not None and pattern.fullmatch(uri) is not None
