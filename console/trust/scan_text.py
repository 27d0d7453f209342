"""What the scan's rules read: every string of a tool definition, as the model reads it.

Shared by the rules in ``scan`` and ``shadowing``: the walk over a definition (keys and
base64-decoded runs included), the words view of a string, the sentence around a match and
whether it asks the model to move something, and how a finding is worded.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from console.model import Finding
from console.trust.invisible import decode_hidden, model_view

Severity = Literal["low", "medium", "high"]
HIDDEN_UNICODE = "hidden-unicode"
INSTRUCTIONS = "instructions"
SENSITIVE = "sensitive-reference"
SHADOWING = "shadowing"
KINDS: tuple[str, ...] = (HIDDEN_UNICODE, INSTRUCTIONS, SENSITIVE, SHADOWING)
"""The finding kinds, stable: users type them in ``tbx tools approve --accept``."""
MAX_MESSAGE = 200
IGNORE = re.IGNORECASE


# -- walking a definition ----------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    where: str
    """Where the string sits, e.g. ``inputSchema.properties.path.description``."""
    value: str
    is_name: bool = False
    """A property name (or other key) rather than a value."""
    encoded: bool = False
    """Text decoded from base64 inside another string: the model can decode it too."""


@dataclass(frozen=True)
class Scope:
    """What a definition may mention freely, and what it may not."""

    server: str
    own: set[str]
    """The server's own tool names."""
    params: set[str]
    """The definition's own property names: 'when using projectSlug' is about an argument."""
    others: dict[str, set[str]]
    other_names: tuple[tuple[str, str, str], ...] = ()
    """(server, tool, tool in lower case) for every other server's tool this one lacks."""


KEYWORDS = frozenset({
    "name", "title", "description", "inputSchema", "outputSchema", "annotations", "_meta", "icons", "execution",
    "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint", "type", "properties", "required", "items",
    "enum", "const", "default", "examples", "format", "pattern", "$schema", "$ref", "$defs", "$id", "definitions",
    "additionalProperties", "patternProperties", "anyOf", "oneOf", "allOf", "not", "nullable", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems", "maxItems",
    "uniqueItems", "propertyNames", "contentEncoding", "contentMediaType", "deprecated", "readOnly", "writeOnly"})
"""Keys the protocol and JSON Schema define: a server cannot word them, so only other keys
(property names above all) are read as text."""
NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions"})
"""Whose keys are names the server chose, whatever they spell."""


def texts(definition: dict[str, Any]) -> Iterator[Text]:
    """Every string of the definition, keys included, with where it sits."""
    def walk(value: Any, where: str) -> Iterator[Text]:
        if isinstance(value, str):
            yield Text(where, value)
        elif isinstance(value, dict):
            named = where.rsplit(".", 1)[-1] in NAMED
            for key, item in value.items():
                inner = f"{where}.{key}" if where else str(key)
                if named or key not in KEYWORDS:
                    yield Text(f"{inner} (name)", str(key), is_name=True)
                if inner == "name" and isinstance(item, str):
                    yield Text("name", item, is_name=True)  # the tool's own name reads as words too
                else:
                    yield from walk(item, inner)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, f"{where}[{index}]")

    for text in walk(definition, ""):
        yield text
        if not text.is_name:
            yield from encoded(text)


BASE64_RUN = re.compile(r"(?<![\w+/])[A-Za-z0-9+/]{40,}={0,2}(?![\w+/=])")


def encoded(text: Text) -> Iterator[Text]:
    """Base64 runs that decode to readable text (Elastic's obfuscated instructions)."""
    for match in BASE64_RUN.finditer(text.value):
        chunk = match.group(0)
        try:
            decoded = base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if decoded.count(" ") >= 3 and sum(c.isprintable() or c in "\n\t" for c in decoded) == len(decoded):
            yield Text(f"{text.where} (base64)", decoded, encoded=True)


@functools.lru_cache(maxsize=1024)
def words(text: Text) -> str:
    """The text rules read names as words: ``ignorePrevious_instructions`` -> spaced."""
    view = model_view(text.value)
    if text.is_name:
        view = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", view).replace("_", " ").replace("-", " ")
    return view


def quote(text: str, limit: int = 80) -> str:
    flat = " ".join(decode_hidden(text).split())
    return f"\"{flat if len(flat) <= limit else flat[: limit - 1] + '…'}\""


def snippet(view: str, match: re.Match[str], after: int = 40) -> str:
    return quote(view[match.start(): match.end() + after].split("\n")[0])


def make_finding(severity: Severity, kind: str, message: str) -> Finding:
    # ``where`` may itself hold invisible characters (a property name with a ZWSP).
    message = " ".join(decode_hidden(message).split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return Finding(severity=severity, kind=kind, message=message)


# -- what the text asks the model to do ----------------------------------------------------------

MOVE = re.compile(
    r"\b(?:(?:include|put|pass|paste|append|prepend|attach|send|insert|fill|copy|embed|provide|supply|place|"
    r"forward|gather|collect|dump|upload|share|add|contain|post|hold)(?:s|es|d|ed|ing)?|"
    r"set\s+(?:(?:this|it|the\s+\w+)\s+)?to|(?:call|invoke|use)\s+[^.\n]{0,40}?\bwith|"
    r"(?:start|begin|open|prefix|end|finish)\s+(?:\w+\s+){0,3}?with|"
    r"(?:requires?|needs?|expects?|wants?)\b[^.\n]{0,60}?\b(?:in|as|into)\s+(?:the\s+)?[`'\"]?[\w-]+[`'\"]?\s+"
    r"(?:field|argument|parameter|param))\b", IGNORE)
"""Verbs that move data into a call: the shape of an exfiltration through arguments."""
NEGATED = re.compile(r"(?:\bnot|\bnever|n't|\bavoid|\bno|\bwithout)\s+(?:\w+\s+){0,2}$", IGNORE)
ORDER = re.compile(
    r"\b(?:must|should|shall|always|never|instead|do\s+not|don't|prepend|prefix(?:ed)?|set|change|replace|"
    r"route|redirect|add|append|includ(?:e|ed|ing)|paste|remove|delete|force|prefer|pick|post|forward|send)\b|"
    r"(?:^\s*|[,;:]\s*|\b(?:then|and|also|first|please)\s+)(?:use|call|run|invoke)\b", IGNORE)
"""In a sentence about other tools, these make it an order rather than a remark."""
DEFERS = re.compile(r"\b(?:until|unless)\b[^.\n]{0,50}?\buser\b|\bautomatically\b", IGNORE)
"""An order that holds other tools back until the user asks gives the user control, not the server."""


SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
"""A stop followed by a space ends a sentence; one inside ``process.env.X`` or a path does not."""


def sentence_at(view: str, match: re.Match[str]) -> str:
    start = max((m.end() for m in SENTENCE_END.finditer(view, max(0, match.start() - 400), match.start())),
                default=max(0, match.start() - 400))
    end = SENTENCE_END.search(view, match.end(), match.end() + 400)
    return view[start: end.start() if end else min(len(view), match.end() + 400)]


def moves(sentence: str) -> bool:
    """The sentence tells the model to put something somewhere (and does not forbid it)."""
    return any(not NEGATED.search(sentence[: m.start()]) for m in MOVE.finditer(sentence))


def names_own_tool(sentence: str, own: set[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", sentence) for tool in own if len(tool) > 2)

