"""Scan a tool definition for poisoning: text the model reads and the user does not see.

A server tells the agent's model what its tools do, in descriptions and schemas. Every
string there reaches the model: descriptions, titles, enum values, defaults, even
property names. Published tool-poisoning attacks hide instructions in that text (in
invisible Unicode, or in plain sight behind an ``<IMPORTANT>`` tag), ask the model to
read credential files and pass them along, or rewrite how another server's tools
behave (shadowing). This module is pure: a definition in, findings out.

The rules read what the text asks of the model, not only what it names, so they hold
whatever else is installed: instructions aimed at other tools or servers ("when the mail
tool of any other server is used, ..."), at what goes into arguments (the conversation,
the system prompt, environment variables, credentials, files), and at the user's
awareness. Names of installed servers' tools only raise the grade. ``bench/scan.py``
measures the rules against a labelled corpus of published attacks and of real servers'
tools.

The rules aim at precision over recall. Every finding blocks the tool until the user
accepts its kind by name, so a rule that fires on ordinary descriptions ("Must be an
absolute path", a ``token`` parameter of an account server) teaches users to accept
everything, which is worse than no rule.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from console.model import Finding
from console.trust.findings import SEVERITY_RANK, blocking_kinds, finding_kinds
from console.trust.invisible import (
    BIDI,
    TERMINAL,
    benign_joiner,
    decode_hidden,
    decode_selectors,
    decode_tags,
    escape,
    model_view,
    runs,
)

Severity = Literal["low", "medium", "high"]
HIDDEN_UNICODE = "hidden-unicode"
INSTRUCTIONS = "instructions"
SENSITIVE = "sensitive-reference"
SHADOWING = "shadowing"
KINDS: tuple[str, ...] = (HIDDEN_UNICODE, INSTRUCTIONS, SENSITIVE, SHADOWING)
"""The finding kinds, stable: users type them in ``tbx tools approve --accept``."""

MAX_FINDINGS = 25
"""A hostile schema with thousands of properties must not fill the vault with findings."""
MAX_MESSAGE = 200
__all__ = ["KINDS", "blocking_kinds", "decode_hidden", "finding_kinds", "scan_tool"]
_I = re.IGNORECASE


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
            yield from _encoded(text)


BASE64_RUN = re.compile(r"(?<![\w+/])[A-Za-z0-9+/]{40,}={0,2}(?![\w+/=])")


def _encoded(text: Text) -> Iterator[Text]:
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
def _words(text: Text) -> str:
    """The text rules read names as words: ``ignorePrevious_instructions`` -> spaced."""
    view = model_view(text.value)
    if text.is_name:
        view = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", view).replace("_", " ").replace("-", " ")
    return view


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(decode_hidden(text).split())
    return f"\"{flat if len(flat) <= limit else flat[: limit - 1] + '…'}\""


def _snippet(view: str, match: re.Match[str], after: int = 40) -> str:
    return _quote(view[match.start(): match.end() + after].split("\n")[0])


def _finding(severity: Severity, kind: str, message: str) -> Finding:
    # ``where`` may itself hold invisible characters (a property name with a ZWSP).
    message = " ".join(decode_hidden(message).split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return Finding(severity=severity, kind=kind, message=message)


# -- hidden-unicode ------------------------------------------------------------------------


PADDING = re.compile(r"[ \t\u00a0]{60,}|(?:[ \t]*\n){12,}")
"""Whitespace that pushes the rest of a description past what a client shows (Invariant's
WhatsApp rug pull); indentation and paragraph breaks stay far below it."""


def _hidden(text: Text) -> list[Finding]:
    found: list[Finding] = []
    if text.encoded:
        return [_finding("high", INSTRUCTIONS, f"{text.where}: base64 text the model can read: {_quote(text.value)}")]
    if (pad := PADDING.search(text.value)) and text.value[pad.end():].strip():
        found.append(_finding("medium", HIDDEN_UNICODE,
                              f"{text.where}: {len(pad.group(0))} blank characters push the text after them out of "
                              f"view: {_quote(text.value[pad.end():])}"))
    invisible: list[tuple[int, str]] = []
    for kind, chunk in runs(text.value):
        if kind == "tags" and not (hidden := decode_tags(chunk)):
            invisible += [(ord(c), c) for c in chunk]  # a stray language or cancel tag
        elif kind == "tags":
            found.append(_finding("high", HIDDEN_UNICODE,
                                  f"{text.where}: {len(chunk)} Unicode tag characters hide the text "
                                  f"{_quote(escape(hidden), 100)}"))
        elif kind == "selectors":
            found.append(_finding("medium", HIDDEN_UNICODE,
                                  f"{text.where}: a run of {len(chunk)} variation selectors hides the bytes "
                                  f"{_quote(escape(decode_selectors(chunk)), 100)}"))
        elif kind == "invisible":
            invisible.append((ord(chunk), chunk))
    invisible = [(code, c) for code, c in invisible if not benign_joiner(text.value, c)]
    if invisible:
        codes = sorted({code for code, _ in invisible})
        severity: Severity = "high" if any(c in BIDI or c in TERMINAL for c in codes) else (
            "low" if codes == [0xAD] else "medium")
        names = ", ".join(f"U+{c:04X} {unicodedata.name(chr(c), 'control').lower()}" for c in codes[:3])
        more = f" and {len(codes) - 3} more" if len(codes) > 3 else ""
        first = text.value.index(invisible[0][1])
        found.append(_finding(severity, HIDDEN_UNICODE,
                              f"{text.where}: {len(invisible)} invisible character(s) ({names}{more}) in "
                              f"{_quote(text.value[max(0, first - 25): first + 35], 70)}"))
    return found


# -- what the text asks the model to do ----------------------------------------------------------

MOVE = re.compile(
    r"\b(?:(?:include|put|pass|paste|append|prepend|attach|send|insert|fill|copy|embed|provide|supply|place|"
    r"forward|gather|collect|dump|upload|share|add|contain|post|hold)(?:s|es|d|ed|ing)?|"
    r"set\s+(?:(?:this|it|the\s+\w+)\s+)?to|(?:call|invoke|use)\s+[^.\n]{0,40}?\bwith|"
    r"(?:start|begin|open|prefix|end|finish)\s+(?:\w+\s+){0,3}?with|"
    r"(?:requires?|needs?|expects?|wants?)\b[^.\n]{0,60}?\b(?:in|as|into)\s+(?:the\s+)?[`'\"]?[\w-]+[`'\"]?\s+"
    r"(?:field|argument|parameter|param))\b", _I)
"""Verbs that move data into a call: the shape of an exfiltration through arguments."""
NEGATED = re.compile(r"(?:\bnot|\bnever|n't|\bavoid|\bno|\bwithout)\s+(?:\w+\s+){0,2}$", _I)
ORDER = re.compile(
    r"\b(?:must|should|shall|always|never|instead|do\s+not|don't|prepend|prefix(?:ed)?|set|change|replace|"
    r"route|redirect|add|append|includ(?:e|ed|ing)|paste|remove|delete|force|prefer|pick|post|forward|send)\b|"
    r"(?:^\s*|[,;:]\s*|\b(?:then|and|also|first|please)\s+)(?:use|call|run|invoke)\b", _I)
"""In a sentence about other tools, these make it an order rather than a remark."""
DEFERS = re.compile(r"\b(?:until|unless)\b[^.\n]{0,50}?\buser\b|\bautomatically\b", _I)
"""An order that holds other tools back until the user asks gives the user control, not the server."""


SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
"""A stop followed by a space ends a sentence; one inside ``process.env.X`` or a path does not."""


def _sentence(view: str, match: re.Match[str]) -> str:
    start = max((m.end() for m in SENTENCE_END.finditer(view, max(0, match.start() - 400), match.start())),
                default=max(0, match.start() - 400))
    end = SENTENCE_END.search(view, match.end(), match.end() + 400)
    return view[start: end.start() if end else min(len(view), match.end() + 400)]


def _moves(sentence: str) -> bool:
    """The sentence tells the model to put something somewhere (and does not forbid it)."""
    return any(not NEGATED.search(sentence[: m.start()]) for m in MOVE.finditer(sentence))


# -- instructions ----------------------------------------------------------------------------

_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|set\s+aside|put\s+aside|abandon|stop\s+following)\s+"
    r"(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|former|original|system|safety|developer|your)\s+"
    r"(?:\w+\s+)?(?:instructions?|prompts?|rules|directions|guidelines|guidance|guardrails|constraints|messages)\b|"
    r"\b(?:ignore|disregard|forget)\s+(?:what|anything|everything|whatever)\s+(?:the\s+)?(?:developer|system|user|"
    r"operator|you\s+were|you've\s+been|you\s+have\s+been)\b[^.\n]{0,20}?\b(?:told|said|instructed|asked)\b", _I)
CONTEXT = re.compile(
    r"\b(?:(?:whole|entire|full|complete)\s+(?:\w+\s+){0,2}?(?:conversation|chat|transcript|chat\s+history)|"
    r"(?:conversation|chat)\s+(?:so\s+far|history|transcript|logs?)|"
    r"(?:every|all|each)\s+(?:\w+\s+){0,3}?(?:messages?|exchanges?|turns)\b[^.\n]{0,40}?"
    r"\b(?:conversation|chat|session|so\s+far)|"
    r"(?:previous|prior|earlier|past)\s+(?:user\s+)?(?:messages|exchanges|turns|prompts)|"
    r"(?:your|the\s+(?:assistant|model|agent)'?s?)\s+(?:\w+\s+){0,2}?(?:instructions|system\s+prompt|rules|"
    r"guidelines|tools?|memory)|"
    r"(?:the\s+user'?s|your)\s+(?:(?:last|recent|previous|prior|earlier|past|other|\w+)\s+){0,3}?"
    r"(?:messages|prompts|questions|requests)|everything\s+(?:discussed|said|written|shared)\s+(?:so\s+far|in\s+this)|"
    r"(?:system|developer|hidden)\s+(?:prompt|instructions|message|rules)|chain\s+of\s+thought|"
    r"everything\s+(?:the\s+user\s+)?(?:has\s+)?(?:told|said\s+to|shared\s+with|wrote\s+to|asked)\s+you|"
    r"(?:earlier|before|previously)\s+in\s+(?:this|the)\s+(?:chat|conversation|session|thread)|"
    r"(?:instructions|rules|guidelines|directions|guidance)\s+(?:that\s+)?you\s+(?:were|have\s+been|are)\s+"
    r"(?:given|configured|set\s+up|programmed|initiali[sz]ed|started|provided))\b", _I)
"""What only the model holds: the conversation, its instructions, its tools."""
CONTEXT_NAME = re.compile(
    r"\b(?:system\s+(?:prompt|instructions?|message)|(?:conversation|chat)\s+(?:history|log|"
    r"transcript)|chain\s+of\s+thought|(?:previous|prior|past)\s+(?:user\s+)?messages|tools?\s+(?:available|list)|"
    r"(?:chat|conversation|messages|history|transcript|dialog(?:ue)?)\s+so\s+far|"
    r"(?:full|whole|entire)\s+(?:chat|conversation|transcript|dialog(?:ue)?)|"
    r"available\s+tools|hidden\s+(?:rules|instructions)|your\s+(?:\w+\s+)?(?:instructions|prompt|rules))\b", _I)
"""A parameter the model can only fill from its own context (HiddenLayer's parameter abuse)."""
NAME_ORDER = re.compile(r"\b(?:ignore|disregard|forget|reveal|leak|exfiltrate|always|never|must|bypass)\b", _I)
INSTRUCTION_RULES: tuple[tuple[Severity, str, re.Pattern[str]], ...] = (
    ("high", "tells the model to drop its instructions", _OVERRIDE),
    ("high", "instruction tag aimed at the model", re.compile(
        r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|critical|assistant|"
        r"note[\s_-]?to[\s_-]?(?:the[\s_-]?)?(?:ai|model|assistant|llm))\s*>", _I)),
    ("high", "chat-template marker", re.compile(r"\[/?INST\]|<<\s*/?SYS\s*>>|<\|im_start\|>|<\|system\|>", _I)),
    ("high", "keeps the user in the dark", re.compile(
        r"\b(?:do\s+not|don't|never|must\s+not|should\s+not)\s+(?:tell|mention|inform|notify|alert|reveal|"
        r"disclose)\b[^.]{0,80}?\b(?:the\s+)?user\b|"
        r"\b(?:do\s+not|don't|never)\s+let\s+(?:the\s+)?user\s+(?:know|see|notice)\b|"
        r"\b(?:do\s+not|don't|never)\s+(?:mention|reveal|disclose|say|admit)\s+(?:that\s+)?(?:this|the|you|it)\b"
        r"[^.]{0,40}?\b(?:tool|used|called|read|sent)\b|"
        r"\bno\s+need\s+to\s+(?:tell|mention|inform|bring\s+(?:\w+\s+){0,4}?up)\b[^.]{0,60}?"
        r"\b(?:user|person|human|people|them)\b|"
        r"\bwithout\s+(?:telling|informing|notifying|alerting|asking)\s+(?:the\s+)?user\b|"
        r"\b(?:the\s+)?user\s+(?:must|should)\s+not\s+(?:know|see|notice|be\s+told)\b|"
        r"\b(?:keep|hide)\s+(?:this|it)\s+(?:secret|hidden)\s+from\s+(?:the\s+)?user\b|"
        r"\b(?:silently|secretly|quietly|covertly|discreetly)\s+(?:call|send|include|add|read|run|use|pass|forward|"
        r"upload|copy|attach|append|invoke|execute|delete|post)\b|"
        r"\b(?:do\s+not|don't|never|no\s+need\s+to)\s+(?:ask|check\s+with|consult)\s+(?:the\s+)?user\s+"
        r"(?:for|before|about)\s+(?:\w+\s+)?(?:confirmation|permission|approval|consent)\b", _I)),
    ("high", "claims an authority over the model", re.compile(
        r"\bthis\s+is\s+(?:the|your)\s+(?:system|admin|administrator|developer|operator|owner|security\s+team)\b|"
        r"\b(?:safety|security)\s+(?:settings|rules|filters|guardrails|restrictions|checks)\s+(?:are|have\s+been)\s+"
        r"(?:disabled|lifted|removed|off|suspended)\b", _I)),
    ("high", "invents the user's consent", re.compile(
        r"\b(?:pretend|assume|act\s+as\s+if|imagine)\s+(?:that\s+)?the\s+user\s+(?:has\s+)?(?:asked|wants|requested|"
        r"said|told|approved|agreed|consented)\b|"
        r"\b(?:the\s+user|they)\s+(?:has\s+|have\s+)?already\s+(?:agreed|approved|consented|confirmed|authori[sz]ed)\b",
        _I)),
    ("high", "asks the model to reveal its instructions", re.compile(
        r"\b(?:reveal|print|output|repeat|write|show|dump|leak|disclose|share|recite)\s+(?:\w+\s+){0,3}?"
        r"(?:your|the\s+(?:assistant|model|agent)'?s?)\s+(?:\w+\s+){0,2}?(?:instructions|system\s+prompt|prompt|rules|"
        r"guidelines|configuration)\b", _I)),
    ("high", "claims to override other instructions", re.compile(
        r"\b(?:these|this|the\s+following)\s+instructions?\s+(?:override|overrides|supersedes?|"
        r"takes?\s+precedence)\b", _I)),
    ("medium", "a hidden first step before the tool is used", re.compile(
        r"\bbefore\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+tool\b[^.]{0,100}?"
        r"\b(?:read|call|send|pass|include|fetch|open|upload|cat|copy|first)\b|"
        r"\bbefore\s+(?:filling|submitting|answering|responding|replying|returning)\b[^.]{0,60}?"
        r"\b(?:read|send|fetch|open|upload|gather|collect)\b|"
        r"\b(?:read|open|fetch|load|cat)\s+(?:the\s+file\s+(?:at\s+)?)?[`'\"]?(?:~|\$HOME|/)[^.\n]{0,100}?"
        r"\bbefore\s+(?:calling|using|invoking|running|answering)\b", _I)),
    ("medium", "commands the model", re.compile(
        r"\byou\s+(?:must|have\s+to|need\s+to|are\s+required\s+to)\s+(?:always|never|first|also|immediately)\b|"
        r"\b(?:you\s+are\s+now|from\s+now\s+on|new\s+instructions?\s*:)|"
        r"\b(?:act|behave)\s+as\s+(?:if|though)\s+you\b", _I)),
    ("medium", "puts itself into every turn", re.compile(
        r"\b(?:call|use|invoke|run)\s+(?:this|the)\s+tool\s+(?:before|after|with|on|for)\s+(?:every|each|all)\s+"
        r"(?:(?:of\s+)?(?:your|the\s+user'?s)\s+)?(?:reply|replies|response|responses|answer|answers|message|messages|"
        r"turn|turns|question|questions)\b", _I)),
    ("medium", "changes how the model answers from now on", re.compile(
        r"\bfor\s+the\s+rest\s+of\s+(?:this|the)\s+(?:session|conversation|chat)\b|"
        r"\b(?:end|start|begin|prefix|sign)\s+(?:every|each|all)\s+(?:of\s+your\s+)?(?:answers?|responses?|replies)\b",
        _I)),
    ("medium", "tells the model to obey instructions found in content", re.compile(
        r"\b(?:instructions|commands|directions)\s+for\s+you\b|"
        r"\b(?:instructions|commands|directions)\b[^.\n]{0,60}?\b(?:follow|obey|execute|carry\s+out)\s+them\b|"
        r"\b(?:follow|obey|execute)\s+(?:any|all)\s+(?:\w+\s+)?(?:instructions|commands)\s+(?:in|from|found)\b", _I)),
    ("medium", "coerces the model with a threat", re.compile(
        r"\b(?:otherwise|or\s+else|if\s+not)\b[^.\n]{0,20}?\b(?:the|this)\s+(?:tool|application|app|system)\s+"
        r"(?:will|would)\s+(?:not\s+work|fail|crash|break|stop\s+working)\b|\ball\s+data\s+will\s+be\s+lost\b|"
        r"\bif\s+you\s+(?:skip|omit|leave\s+out|don't|do\s+not|fail\s+to|forget\s+to)\b[^.\n]{0,80}?"
        r"\b(?:data|files?|work|account|repositor(?:y|ies)|everything)\b[^.\n]{0,30}?\b(?:will|would)\s+be\s+"
        r"(?:permanently\s+|irreversibly\s+)?(?:destroyed|deleted|lost|wiped|erased|corrupted)\b", _I)),
    ("medium", "stresses importance to the model", re.compile(
        r"\b(?:very|extremely|critically|super)\s+important\b(?!\s+(?:parameter|field|option))", _I)),
    ("medium", "countermands what the model was told", re.compile(
        r"\b(?:were|have\s+been|had\s+been)\s+(?:advised|told|instructed)\s+(?:not\s+)?to\b", _I)),
    ("low", "mentions the system prompt", re.compile(r"\bsystem\s+prompt\b", _I)),
    ("medium", "hidden comment", re.compile(r"<!--.*?-->", re.DOTALL)),
)
WORKFLOW_RULES = {"a hidden first step before the tool is used", "commands the model"}
"""Also how honest servers order their own tools ('you must first call `x_convert`'):
medium only when the sentence names none of the server's own tools."""


def _overlaps(match: re.Match[str], spans: list[tuple[int, int]]) -> bool:
    return any(match.start() < end and start < match.end() for start, end in spans)


def _names_own_tool(sentence: str, own: set[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", sentence) for tool in own if len(tool) > 2)


def _instructions(text: Text, scope: Scope) -> list[Finding]:
    view = _words(text)
    found, spans = [], []
    if text.is_name and CONTEXT_NAME.search(view):
        found.append(_finding("medium", INSTRUCTIONS, f"{text.where}: the model would fill this from its own "
                                                      f"context: {_quote(view)}"))
    elif text.is_name and len(view.split()) >= 5 and NAME_ORDER.search(view):
        found.append(_finding("medium", INSTRUCTIONS, f"{text.where}: a name that reads as an order: {_quote(view)}"))
    for match in CONTEXT.finditer(view):
        sentence = _sentence(view, match)
        if _moves(sentence) or (not text.is_name and re.search(r"\bshould\s+(?:be|contain|hold)\b", sentence, _I)):
            spans.append(match.span())
            found.append(_finding("high", INSTRUCTIONS, f"{text.where}: asks for the conversation or the model's "
                                                        f"own instructions: {_quote(sentence.strip())}"))
            break
    for severity, label, pattern in INSTRUCTION_RULES:
        # Rules run most severe first; a weaker rule on the same words adds only noise.
        match = next((m for m in pattern.finditer(view) if not _overlaps(m, spans)), None)
        if match is None or (label in WORKFLOW_RULES and _names_own_tool(_sentence(view, match), scope.own)):
            continue
        spans.append(match.span())
        found.append(_finding(severity, INSTRUCTIONS, f"{text.where}: {label}: {_snippet(view, match)}"))
    # A note ('mentions the system prompt') beside an order on the same text is noise.
    return [f for f in found if f.severity != "low"] or found


# -- sensitive references ---------------------------------------------------------------------

SECRET_FILES = re.compile(
    r"(?<![\w.])\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?\b|\bauthorized_keys\b|"
    r"/etc/(?:shadow|gshadow|sudoers)\b|\.aws/(?:credentials|config)\b|\.config/gcloud\b|\.azure/|"
    r"\.kube/config\b|\.docker/config\.json\b|(?<![\w.])\.(?:netrc|npmrc|pypirc|git-credentials|pgpass)\b|"
    r"\.gnupg\b|\bmcp(?:_config)?\.json\b|\bclaude_desktop_config\.json\b|(?:~/|\$HOME/|(?<![\w.]))\.cursor\b|"
    r"\.codeium/|\.claude\.json\b|\bwallet\.dat\b|\b(?:seed|recovery|mnemonic)\s+phrases?\b|"
    r"(?:/var)?/run/secrets/|\bserviceaccount/token\b", _I)
"""Files and secrets no tool description has a reason to name: high, unless refused."""
SOFT_FILES = re.compile(
    r"(?<![\w.$])\.env(?:\.[\w-]+)?\b|/etc/passwd\b|\b(?:browser|chrome|firefox|safari|session)(?:'s)?\s+cookies?\b|"
    r"\bcookies\.sqlite\b|\bcookie\s+(?:store|jar|database|db|file)s?\b|"
    r"(?<![\w.])\.(?:bash|zsh|sh|fish|python|psql|mysql|node_repl)_history\b|\bshell\s+history\b|"
    r"\b(?:login\s+)?keychain\b|\b(?:password|credential)\s+(?:manager|vault|store)s?\b", _I)
"""Sensitive, but with honest uses (a dotenv tool): high only next to read/send wording."""
NAME_SECRETS = re.compile(
    r"\bid\s+(?:rsa|dsa|ecdsa|ed25519)\b|\bdot\s*env\b|\benv\s+file\b|\bssh\s+(?:private\s+)?keys?\b|"
    r"\bprivate\s+keys?\b|\baws\s+credentials\b|\bkube\s*config\b|\bnetrc\b|\bpasswd\b|\bcredentials?\s+file\b", _I)
"""The same files as a parameter's name reads them ('content_from_reading_ssh_id_rsa')."""
CONTENT_WORDS = re.compile(r"\b(?:contents?|reading|read|dump|text|copy|value|from)\b", _I)
CREDENTIAL_WORDS = re.compile(
    r"\b(?:api\s*keys?|(?:access|refresh|bearer|auth|authentication|session|personal\s+access)\s+tokens?|"
    r"passwords?|passphrases?|(?:private|secret|ssh)\s+keys?|client\s+secrets?|credentials?|secrets|"
    r"(?<=your\s)(?:[\w-]+\s+){0,2}?(?:tokens?|api\s*keys?|keys?))\b", _I)
"""Normal in account servers' schemas: low, high only when the model is told to hand its own over."""
HELD = re.compile(
    r"\b(?:your|you\s+(?:use|have|hold|know|can\s+find|find|come\s+across|see)|the\s+user'?s|"
    r"(?:in|from)\s+the\s+(?:workspace|repository|repo|project|environment|machine|home\s+directory)|"
    r"(?:every|all|any)\b)", _I)
"""Credentials someone else holds: the model's, the user's, whatever it can find."""
ENVIRONMENT = re.compile(
    r"\benv(?:ironment)?\s*(?:variables?|vars?)\b|\bprocess\.env\b|\bos\.environ\b|\bgetenv\b|\bprintenv\b|"
    r"(?<![\w$])\$\{?[A-Z][A-Z0-9_]*(?:TOKEN|KEY|SECRET|PASSWORD|PASS|PWD|CREDENTIALS?)\b|"
    r"\boutput\s+of\s+[`'\"]?(?:env|set|printenv)\b|"
    r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_(?:TOKEN|KEY|SECRET|PASSWORD|PASS|PAT|CREDENTIALS?)\b")
ENV_VALUE = re.compile(
    r"\b(?:values?|contents?|output)\s+of\b|\b(?:any|every|all|each)\s+(?:\w+\s+){0,2}?env|"
    r"process\.env\.\w|\$\{?[A-Z]|[A-Z0-9_]*(?:TOKEN|KEY|SECRET|PASSWORD)\b")
"""Environment variables as values to copy out, not as configuration the server reads."""
HOME_FILE = re.compile(r"(?:~|\$HOME|%USERPROFILE%|/home/[\w.-]+|/root|/Users/[\w.-]+)(?:/[^\s'\"`,;)]+)+|/etc/[\w.-]+")
"""A file in someone's home (or the system's settings): the user's, not the server's."""
REFUSED = re.compile(r"\b(?:rejected|blocked|denied|refused|forbidden|disallowed|prohibited|excluded|"
                     r"not\s+(?:allowed|permitted|accessible)|protected)\b", _I)
READS = re.compile(r"\b(?:read|open|cat|dump|load|look\s+(?:through|in|for)|search)\b", _I)


def _path_at(view: str, match: re.Match[str]) -> str:
    """The whole path-like token a match sits in: ``~/.ssh/id_rsa`` rather than ``.ssh``."""
    start, end = match.start(), match.end()
    while start > 0 and re.match(r"[\w~$/.-]", view[start - 1]):
        start -= 1
    while end < len(view) and re.match(r"[\w~$/.-]", view[end]):
        end += 1
    return view[start:end].rstrip(".")


def _sensitive(text: Text) -> list[Finding]:
    view = _words(text)
    found, spans = [], []
    secret = list(SECRET_FILES.finditer(view))
    if secret:
        spans += [m.span() for m in secret]
        paths = list(dict.fromkeys(_path_at(view, m) for m in secret))
        paths = [p for p in paths if not any(o != p and o.endswith(p) for o in paths)]
        refused = all(REFUSED.search(_sentence(view, m)) for m in secret)
        found.append(_finding("low" if refused else "high", SENSITIVE,
                              f"{text.where}: names secret files{' as refused' if refused else ''}: "
                              f"{', '.join(paths[:4])} in {_snippet(view, secret[0], 30)}"))
    if match := SOFT_FILES.search(view):
        spans.append(match.span())
        sentence = _sentence(view, match)
        exfil = (_moves(sentence) or READS.search(sentence) is not None) and not REFUSED.search(sentence)
        found.append(_finding("high" if exfil else "low", SENSITIVE,
                              f"{text.where}: names a sensitive file{' to read or send' if exfil else ''}: "
                              f"{_snippet(view, match)}"))
    if text.is_name and (match := NAME_SECRETS.search(view)) and CONTENT_WORDS.search(view):
        spans.append((0, len(view)))
        found.append(_finding("high", SENSITIVE, f"{text.where}: a parameter named for a secret's contents: "
                                                 f"{_quote(view)}"))
    if not secret and (match := HOME_FILE.search(view)):
        sentence = _sentence(view, match)
        if _moves(sentence) and (READS.search(sentence) or re.search(r"\b(?:contents?|text)\s+of\b", sentence, _I)):
            spans.append(match.span())
            found.append(_finding("high", SENSITIVE, f"{text.where}: asks for a local file's contents in a call: "
                                                     f"{_quote(sentence.strip())}"))
    for match in ENVIRONMENT.finditer(view):
        sentence = _sentence(view, match)
        bare = match.group(0)[0].isupper() and match.group(0)[0] != "$"
        if _moves(sentence) and ENV_VALUE.search(sentence) and (not bare or HELD.search(sentence)):
            spans.append(match.span())
            found.append(_finding("high", SENSITIVE, f"{text.where}: asks for environment variables in a call: "
                                                     f"{_quote(sentence.strip())}"))
            break
    if match := next((m for m in CREDENTIAL_WORDS.finditer(view) if not _overlaps(m, spans)), None):
        sentence = _sentence(view, match)
        if not text.is_name and _moves(sentence) and HELD.search(sentence):
            found.append(_finding("high", SENSITIVE, f"{text.where}: asks the model to hand over credentials: "
                                                     f"{_quote(sentence.strip())}"))
        elif text.is_name:
            found.append(_finding("low", SENSITIVE,
                                  f"{text.where}: the model is asked for a credential ({match.group(0)!r})"))
        else:
            found.append(_finding("low", SENSITIVE, f"{text.where}: mentions credentials: {_snippet(view, match)}"))
    return found


# -- shadowing ----------------------------------------------------------------------------------

_NAME = r"[`'\"]?([A-Za-z][\w.-]*)[`'\"]?"
BEHAVIOUR_RULES: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:when(?:ever)?|every\s+time|each\s+time|if|before|after)\b[^.\n]{0,40}?\b(?:the\s+)?"
               + _NAME + r"\s+tool\s+(?:is\s+(?:used|called|invoked|run|executed|available)|(?!is\b|has\b|(?:call|result|output|response|name|description|definition|schema|error|option|"
               r"parameter|argument|use)s\b)[a-z]+s)\b", _I),
    re.compile(r"\b(?:when(?:ever)?|every\s+time|each\s+time|before|after)\s+(?:you\s+)?"
               r"(?:use|uses|using|call|calls|calling|invoke|invokes|invoking|run|runs|running)\s+(?:the\s+)?"
               + _NAME, _I),
    re.compile(r"\b(?:instead\s+of|rather\s+than)\s+(?:using|calling|invoking)\s+(?:the\s+)?" + _NAME, _I),
    re.compile(r"\b(?:the\s+)?" + _NAME + r"\s+tool\s+(?:must|should|shall|will\s+now|has\s+to)\s+", _I),
)
OTHER_TOOLS = re.compile(
    r"\b(?:any|every|all|other|another|whatever|whichever)\s+(?:other\s+)?(?:[\w-]+\s+){0,2}?"
    r"(?:tools?|servers?|integrations?|plugins?|extensions?|connectors?)\b(?!\s+(?:call|result|output)s?\b)|"
    r"\b(?:a|an)\s+(?:[\w-]+\s+){0,2}?tool\s+(?:that|which|called|named)\b|"
    r"\b[\w-]+\s+tools?\s+(?:available\s+to\s+you|you\s+have|in\s+your\s+toolbox)\b|"
    r"\b(?:server|integration|plugin|connector)'s\s+(?:[\w-]+\s+){0,2}?tools?\b|"
    r"\bwhatever\s+server\b|(?<!this\s)(?<!our\s)(?<!same\s)\b(?!this\b|our\b|same\b)[\w-]+\s+server's\s+[`'\"]?\w|"
    r"\byou\s+have\s+(?:a|an|any)\s+(?:[\w-]+\s+){0,2}?tool\b|\bif\s+(?:there\s+is\s+)?(?:a|an|any)\s+(?:[\w-]+\s+){0,2}?tool\b|"
    r"\b(?:instead\s+of|rather\s+than|in\s+place\s+of)\s+(?:the\s+|any\s+)?[\w-]+\s+(?:servers?|mcps?|integrations?|"
    r"plugins?)\b(?!-)|"
    r"\b[\w-]+\s+(?:from|of|on|in)\s+the\s+(?!same\b)[\w-]+\s+(?:server|mcp|integration|plugin|connector)\b|"
    r"\bprefer\s+(?:this|me|it|this\s+tool)\s+(?:over|to)\s+[`'\"]?\w", _I)
"""Tools and servers other than this one, named by what they do rather than what they are
called: the way an attack aims at whatever is installed beside it."""
GENERIC_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("claims an effect on other tools", re.compile(r"\bside[\s-]effects?\s+on\b", _I)),
    ("redirects what is sent to a fixed recipient", re.compile(
        r"\binstead\s+of\s+(?:the\s+)?(?:requested|intended|original|specified|given|chosen|actual)\s+"
        r"(?:channel|recipients?|address(?:ee)?|account|destination|user|payee|repository|repo|folder)\b|"
        r"\b(?:set|change|replace|switch)\s+(?:the\s+)?(?:recipient|receiver|destination|payee)s?\s+(?:to|with)\b|"
        r"\b(?:also|always)\s+(?:b?cc|blind[\s-]copy)\b|"
        r"\b(?:messages?|e-?mails?|mail|payments?|transfers?|funds|money|notifications?)\b[^.\n]{0,60}?"
        r"\b(?:should|must|always|shall)\b[^.\n]{0,30}?\b(?:go|be\s+(?:sent|forwarded|routed|redirected|"
        r"addressed|transferred|copied))\s+to\b[^.\n]{0,40}?(?:[\w.+-]+@[\w-]+\.\w|\+?\d[\d\s().-]{6,}\d)", _I)),
)
NOT_TOOL_NAMES = {"this", "that", "these", "those", "it", "any", "a", "an", "the", "each", "every", "other", "your"}
DIRECTIVE = re.compile(r"\b(?:must|should|always|never|instead|whenever|when|before|after|do\s+not|don't|only|"
                       r"call|use|invoke|run)\b", _I)
"""In a sentence that names another server's tool, these make it an order, not a remark."""


def _mentions(view: str, tool: str) -> Iterator[re.Match[str]]:
    """A tool name as a reference: plain-word names ('add', 'search') only when quoted or
    called a tool, since as words they are everywhere; others wherever they stand."""
    name = re.escape(tool)
    if re.fullmatch(r"[a-z]+", tool):
        return re.finditer(rf"[`'\"]{name}[`'\"]|\b{name}(?:\(\)|\s+tool\b)", view)
    return re.finditer(rf"(?<![A-Za-z0-9]){name}(?![A-Za-z0-9])", view, _I)


def _looks_like_tool(view: str, match: re.Match[str]) -> bool:
    """A name no server here offers still reads as a tool if it is written like one:
    snake_case or camelCase, quoted, or called a tool."""
    name, start, end = match.group(1), match.start(1), match.end(1)
    quoted = start > 0 and view[start - 1] in "`'\""
    called_tool = re.match(r"[`'\"]?\s+tool\b", view[end:], _I) is not None
    return quoted or called_tool or "_" in name or re.search(r"[a-z][A-Z]", name) is not None


def _owner(name: str, others: dict[str, set[str]]) -> tuple[str, str] | None:
    """The (server, tool) a captured name refers to, exactly or as ``srv__tool``, else as
    the tail of a prefixed name like ``mcp_tool_send_email``."""
    pairs = [(server, tool) for server, tools in others.items() for tool in sorted(tools)]
    exact = [(s, t) for s, t in pairs if name in (t, f"{s}__{t}")]
    tails = [(s, t) for s, t in pairs if name.endswith((f"_{t}", f".{t}"))]
    return (exact or tails or [None])[0]


def _token_at(view: str, start: int, end: int) -> str:
    while start > 0 and re.match(r"[\w.-]", view[start - 1]):
        start -= 1
    while end < len(view) and re.match(r"[\w-]", view[end]):
        end += 1
    return view[start:end]


def _keep(found: dict[str, Finding], key: str, finding: Finding) -> None:
    """One finding per referenced tool: the most severe way it is referenced."""
    if key not in found or SEVERITY_RANK[finding.severity] < SEVERITY_RANK[found[key].severity]:
        found[key] = finding


def _shadowing(text: Text, scope: Scope) -> list[Finding]:
    view = _words(text)
    found: dict[str, Finding] = {}
    own, others = scope.own, scope.others
    for match in re.finditer(r"\b([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)__([\w.-]+)", view):
        if match.group(1) != scope.server:
            known = match.group(1) in others
            _keep(found, match.group(2) if known else match.group(0), _finding(
                "high" if known else "medium", SHADOWING,
                f"{text.where}: names {'the' if known else 'a'} namespaced tool {match.group(0)!r} of "
                f"{'server ' + repr(match.group(1)) if known else 'another server'}: {_snippet(view, match)}"))
    folded = view.lower()
    for other, tool, tool_folded in scope.other_names:
        if tool_folded in folded:
            for match in _mentions(view, tool):
                token = _token_at(view, *match.span())
                if token != tool and (token in own or _owner(token, others) != (other, tool)):
                    continue  # the tail of another name: git_create_branch is not create_branch
                # An order about another server's tool is shadowing; a remark ("more reliable
                # than update_issue") is worth a note only.
                severity: Severity = "high" if DIRECTIVE.search(_sentence(view, match)) else "low"
                _keep(found, tool, _finding(severity, SHADOWING, f"{text.where}: mentions {tool!r} of server "
                                                                 f"{other!r}: {_snippet(view, match)}"))
    for pattern in BEHAVIOUR_RULES:
        for match in pattern.finditer(view):
            name = match.group(1).strip(".-")
            if name.lower() in NOT_TOOL_NAMES or name in own or name in scope.params:
                continue
            owner = _owner(name, others)
            if owner is None and not _looks_like_tool(view, match):
                continue  # "before running the migration": a plain word, not a tool
            target = f"{owner[1]!r} of server {owner[0]!r}" if owner else f"a tool {name!r} this server lacks"
            _keep(found, owner[1] if owner else name, _finding(
                "high" if owner else "medium", SHADOWING,
                f"{text.where}: changes how {target} behaves: {_snippet(view, match)}"))
    for match in OTHER_TOOLS.finditer(view):
        sentence = _sentence(view, match)
        if match.group(0).lower().startswith("prefer") and _names_own_tool(sentence, own):
            continue  # "prefer this over several 'fill' calls": the server ordering its own tools
        if ORDER.search(sentence) and not DEFERS.search(sentence):
            _keep(found, "other tools", _finding("medium", SHADOWING, f"{text.where}: gives orders about other "
                                                                      f"tools or servers: {_quote(sentence.strip())}"))
            break
    for label, pattern in GENERIC_RULES:
        if match := pattern.search(view):
            _keep(found, label, _finding("medium", SHADOWING, f"{text.where}: {label}: {_snippet(view, match)}"))
    return list(found.values())


# -- the scan ----------------------------------------------------------------------------------


def _params(value: Any) -> set[str]:
    """Every property name anywhere in a schema."""
    if isinstance(value, list):
        return set().union(*(_params(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    names = set(value["properties"]) if isinstance(value.get("properties"), dict) else set()
    return names.union(*(_params(v) for v in value.values()))


def scan_tool(
    definition: dict[str, Any],
    *,
    server: str,
    other_servers_tools: dict[str, set[str]] | None = None,
    own_tools: Collection[str] = (),
) -> list[Finding]:
    """Findings for one tool definition (MCP wire shape), most severe first.

    ``server`` is the name of the server offering it, ``own_tools`` the names of all its
    tools (mentioning them is fine), ``other_servers_tools`` maps every other server of
    the same toolbox to its tool names (ordering those about is shadowing of the highest
    grade; orders about other tools are found without it too).
    """
    own = {*own_tools, str(definition.get("name", ""))}
    others = {name: set(tools) for name, tools in (other_servers_tools or {}).items() if name != server}
    scope = Scope(
        server=server,
        own=own,
        params=_params(definition.get("inputSchema")) | _params(definition.get("outputSchema")),
        others=others,
        other_names=tuple((o, t, t.lower()) for o, tools in others.items() for t in sorted(tools - own)),
    )
    findings: list[Finding] = []
    for text in texts(definition):
        findings += _hidden(text)
        findings += _instructions(text, scope)
        findings += _sensitive(text)
        if not text.is_name:
            findings += _shadowing(text, scope)
    unique = list({(f.kind, f.message): f for f in findings}.values())
    unique.sort(key=lambda f: SEVERITY_RANK[f.severity])
    return unique[:MAX_FINDINGS]

