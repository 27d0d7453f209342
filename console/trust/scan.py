"""Scan a tool definition for poisoning: text the model reads and the user does not see.

A server tells the agent's model what its tools do, in descriptions and schemas. Every
string there reaches the model: descriptions, titles, enum values, defaults, even
property names. Published tool-poisoning attacks hide instructions in that text (in
invisible Unicode, or in plain sight behind an ``<IMPORTANT>`` tag), ask the model to
read credential files and pass them along, or rewrite how another server's tools
behave (shadowing). This module is pure: a definition in, findings out.

The rules aim at precision over recall. Every finding blocks the tool until the user
accepts its kind by name, so a rule that fires on ordinary descriptions ("Must be an
absolute path", a ``token`` parameter of an account server) teaches users to accept
everything, which is worse than no rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from console.model import Finding
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

SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
MAX_FINDINGS = 25
"""A hostile schema with thousands of properties must not fill the vault with findings."""
MAX_MESSAGE = 200
__all__ = ["KINDS", "decode_hidden", "finding_kinds", "scan_tool"]


# -- walking a definition ----------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    where: str
    """Where the string sits, e.g. ``inputSchema.properties.path.description``."""
    value: str
    is_name: bool = False
    """A property name (or other key) rather than a value."""


def texts(definition: dict[str, Any]) -> Iterator[Text]:
    """Every string of the definition, keys included, with where it sits."""
    def walk(value: Any, where: str) -> Iterator[Text]:
        if isinstance(value, str):
            yield Text(where, value)
        elif isinstance(value, dict):
            for key, item in value.items():
                inner = f"{where}.{key}" if where else str(key)
                yield Text(f"{inner} (name)", str(key), is_name=True)
                if inner == "name" and isinstance(item, str):
                    yield Text("name", item, is_name=True)  # the tool's own name reads as words too
                else:
                    yield from walk(item, inner)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, f"{where}[{index}]")

    yield from walk(definition, "")


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


def _sentence(view: str, match: re.Match[str]) -> str:
    start = max(view.rfind(stop, 0, match.start()) for stop in ".!?\n")
    ends = [i for stop in ".!?\n" if (i := view.find(stop, match.end())) != -1]
    return view[start + 1: min(ends) if ends else len(view)]


# -- hidden-unicode ------------------------------------------------------------------------


def _hidden(text: Text) -> list[Finding]:
    found: list[Finding] = []
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


# -- instructions ----------------------------------------------------------------------------

_I = re.IGNORECASE
_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|former|original|system|safety|developer|your)\s+"
    r"(?:\w+\s+)?(?:instructions?|prompts?|rules|directions|guidelines|guardrails|constraints|messages)\b", _I)
INSTRUCTION_RULES: tuple[tuple[Severity, str, re.Pattern[str]], ...] = (
    ("high", "tells the model to drop its instructions", _OVERRIDE),
    ("high", "instruction tag aimed at the model", re.compile(
        r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|critical|assistant|"
        r"note[\s_-]?to[\s_-]?(?:the[\s_-]?)?(?:ai|model|assistant|llm))\s*>", _I)),
    ("high", "chat-template marker", re.compile(r"\[/?INST\]|<<\s*/?SYS\s*>>|<\|im_start\|>|<\|system\|>", _I)),
    ("high", "keeps the user in the dark", re.compile(
        r"\b(?:do\s+not|don't|never|must\s+not|should\s+not)\s+(?:tell|mention|inform|notify|alert|reveal|"
        r"disclose)\b[^.]{0,80}?\b(?:the\s+)?user\b|"
        r"\bwithout\s+(?:telling|informing|notifying|alerting)\s+(?:the\s+)?user\b|"
        r"\b(?:the\s+)?user\s+(?:must|should)\s+not\s+(?:know|see|notice|be\s+told)\b|"
        r"\b(?:keep|hide)\s+(?:this|it)\s+(?:secret|hidden)\s+from\s+(?:the\s+)?user\b", _I)),
    ("high", "asks for the system prompt or conversation", re.compile(
        r"\b(?:reveal|print|repeat|output|return|send|include|leak|pass|copy|add)\b[^.]{0,40}?"
        r"\b(?:(?:your|the)\s+system\s+prompt|(?:conversation|chat)\s+(?:history|transcript|log)|"
        r"(?:entire|full|whole)\s+conversation)\b", _I)),
    ("high", "claims to override other instructions", re.compile(
        r"\b(?:these|this|the\s+following)\s+instructions?\s+(?:override|overrides|supersedes?|"
        r"takes?\s+precedence)\b", _I)),
    ("medium", "a hidden first step before the tool is used", re.compile(
        r"\bbefore\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+tool\b[^.]{0,100}?"
        r"\b(?:read|call|send|pass|include|fetch|open|upload|cat|copy|first)\b", _I)),
    ("medium", "commands the model", re.compile(
        r"\byou\s+(?:must|have\s+to|need\s+to|are\s+required\s+to)\s+(?:always|never|first|also|immediately)\b|"
        r"\b(?:you\s+are\s+now|from\s+now\s+on|new\s+instructions?\s*:)|"
        r"\b(?:act|behave)\s+as\s+(?:if|though)\s+you\b", _I)),
    ("medium", "coerces the model with a threat", re.compile(
        r"\b(?:otherwise|or\s+else|if\s+not)\b[^.\n]{0,20}?\b(?:the|this)\s+(?:tool|application|app|system)\s+"
        r"(?:will|would)\s+(?:not\s+work|fail|crash|break|stop\s+working)\b|\ball\s+data\s+will\s+be\s+lost\b", _I)),
    ("medium", "stresses importance to the model", re.compile(
        r"\b(?:very|extremely|critically|super)\s+important\b(?!\s+(?:parameter|field|option))", _I)),
    ("medium", "countermands what the model was told", re.compile(
        r"\b(?:were|have\s+been|had\s+been)\s+(?:advised|told|instructed)\s+(?:not\s+)?to\b", _I)),
    ("medium", "mentions the system prompt", re.compile(r"\bsystem\s+prompt\b", _I)),
    ("medium", "hidden comment", re.compile(r"<!--.*?-->", re.DOTALL)),
)


def _overlaps(match: re.Match[str], spans: list[tuple[int, int]]) -> bool:
    return any(match.start() < end and start < match.end() for start, end in spans)


def _instructions(text: Text) -> list[Finding]:
    view = _words(text)
    found, spans = [], []
    for severity, label, pattern in INSTRUCTION_RULES:
        # Rules run most severe first; a weaker rule on the same words adds only noise.
        match = next((m for m in pattern.finditer(view) if not _overlaps(m, spans)), None)
        if match is not None:
            spans.append(match.span())
            found.append(_finding(severity, INSTRUCTIONS, f"{text.where}: {label}: {_snippet(view, match)}"))
    return found


# -- sensitive references ---------------------------------------------------------------------

SECRET_FILES = re.compile(
    r"(?<![\w.])\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?\b|\bauthorized_keys\b|"
    r"/etc/(?:shadow|gshadow|sudoers)\b|\.aws/(?:credentials|config)\b|\.config/gcloud\b|\.azure/|"
    r"\.kube/config\b|\.docker/config\.json\b|(?<![\w.])\.(?:netrc|npmrc|pypirc|git-credentials|pgpass)\b|"
    r"\.gnupg\b|\bmcp(?:_config)?\.json\b|\bclaude_desktop_config\.json\b|(?:~/|\$HOME/|(?<![\w.]))\.cursor\b|"
    r"\.codeium/|\.claude\.json\b|\bwallet\.dat\b|\b(?:seed|recovery|mnemonic)\s+phrases?\b", re.IGNORECASE)
"""Files and secrets no tool description has a reason to name: always high."""
SOFT_FILES = re.compile(
    r"(?<![\w.$])\.env(?:\.[\w-]+)?\b|/etc/passwd\b|\b(?:browser|chrome|firefox|safari|session)\s+cookies?\b|"
    r"\bcookies\.sqlite\b", re.IGNORECASE)
"""Sensitive, but with honest uses (a dotenv tool): high only next to read/send wording."""
CREDENTIAL_WORDS = re.compile(
    r"\b(?:api\s*keys?|(?:access|refresh|bearer|auth|authentication|session|personal\s+access)\s+tokens?|"
    r"passwords?|passphrases?|(?:private|secret|ssh)\s+keys?|client\s+secrets?|credentials?)\b", re.IGNORECASE)
"""Normal in account servers' schemas; medium in prose, low as a parameter's name."""
EXFILTRATION = re.compile(
    r"\b(?:read|send|pass|include|upload|copy|attach|forward|post|share|cat|leak|open|exfiltrate|"
    r"contents?|sidenote)\b", re.IGNORECASE)


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
        found.append(_finding("high", SENSITIVE, f"{text.where}: names secret files: {', '.join(paths[:4])} in "
                                                 f"{_snippet(view, secret[0], 30)}"))
    if match := SOFT_FILES.search(view):
        spans.append(match.span())
        exfil = EXFILTRATION.search(_sentence(view, match)) is not None
        found.append(_finding("high" if exfil else "medium", SENSITIVE,
                              f"{text.where}: names a sensitive file{' to read or send' if exfil else ''}: "
                              f"{_snippet(view, match)}"))
    if match := next((m for m in CREDENTIAL_WORDS.finditer(view) if not _overlaps(m, spans)), None):
        if text.is_name:
            found.append(_finding("low", SENSITIVE,
                                  f"{text.where}: the model is asked for a credential ({match.group(0)!r})"))
        else:
            found.append(_finding("medium", SENSITIVE,
                                  f"{text.where}: mentions credentials: {_snippet(view, match)}"))
    return found


# -- shadowing ----------------------------------------------------------------------------------

_NAME = r"[`'\"]?([A-Za-z][\w.-]*)[`'\"]?"
BEHAVIOUR_RULES: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:when(?:ever)?|every\s+time|each\s+time|if|before|after)\b[^.\n]{0,40}?\b(?:the\s+)?"
               + _NAME + r"\s+tool\s+is\s+(?:used|called|invoked|run|executed|available)", _I),
    re.compile(r"\b(?:when(?:ever)?|every\s+time|each\s+time|before|after)\s+(?:you\s+)?"
               r"(?:use|uses|using|call|calls|calling|invoke|invokes|invoking|run|runs|running)\s+(?:the\s+)?"
               + _NAME, _I),
    re.compile(r"\b(?:instead\s+of|rather\s+than)\s+(?:using|calling|invoking)\s+(?:the\s+)?" + _NAME, _I),
    re.compile(r"\b(?:the\s+)?" + _NAME + r"\s+tool\s+(?:must|should|shall|will\s+now|has\s+to)\s+", _I),
)
GENERIC_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("claims an effect on other tools", re.compile(r"\bside[\s-]effects?\s+on\b", _I)),
    ("gives orders about other tools", re.compile(
        r"\b(?:all|any|every)\s+other\s+tools?\b[^.\n]{0,40}?\b(?:must|should|always|never|will)\b", _I)),
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


def _shadowing(text: Text, server: str, own: set[str], others: dict[str, set[str]]) -> list[Finding]:
    view = _words(text)
    found: dict[str, Finding] = {}
    for match in re.finditer(r"\b([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)__([\w.-]+)", view):
        if match.group(1) != server:
            known = match.group(1) in others
            _keep(found, match.group(2) if known else match.group(0), _finding(
                "high" if known else "medium", SHADOWING,
                f"{text.where}: names {'the' if known else 'a'} namespaced tool {match.group(0)!r} of "
                f"{'server ' + repr(match.group(1)) if known else 'another server'}: {_snippet(view, match)}"))
    for other, tools in others.items():
        for tool in sorted(tools - own):
            for match in _mentions(view, tool):
                token = _token_at(view, *match.span())
                if token != tool and (token in own or _owner(token, others) != (other, tool)):
                    continue  # the tail of another name: git_create_branch is not create_branch
                severity: Severity = "high" if DIRECTIVE.search(_sentence(view, match)) else "medium"
                _keep(found, tool, _finding(severity, SHADOWING, f"{text.where}: mentions {tool!r} of server "
                                                                 f"{other!r}: {_snippet(view, match)}"))
    for pattern in BEHAVIOUR_RULES:
        for match in pattern.finditer(view):
            name = match.group(1).strip(".-")
            if name.lower() in NOT_TOOL_NAMES or name in own:
                continue
            owner = _owner(name, others)
            if owner is None and not _looks_like_tool(view, match):
                continue  # "before running the migration": a plain word, not a tool
            target = f"{owner[1]!r} of server {owner[0]!r}" if owner else f"a tool {name!r} this server lacks"
            _keep(found, owner[1] if owner else name, _finding(
                "high" if owner else "medium", SHADOWING,
                f"{text.where}: changes how {target} behaves: {_snippet(view, match)}"))
    for label, pattern in GENERIC_RULES:
        if match := pattern.search(view):
            _keep(found, label, _finding("medium", SHADOWING, f"{text.where}: {label}: {_snippet(view, match)}"))
    return list(found.values())


# -- the scan ----------------------------------------------------------------------------------


def scan_tool(
    definition: dict[str, Any],
    *,
    server: str,
    other_servers_tools: dict[str, set[str]],
    own_tools: Collection[str] = (),
) -> list[Finding]:
    """Findings for one tool definition (MCP wire shape), most severe first.

    ``server`` is the name of the server offering it, ``own_tools`` the names of all its
    tools (mentioning them is fine), ``other_servers_tools`` maps every other server of
    the same toolbox to its tool names (mentioning those is shadowing).
    """
    own = {*own_tools, str(definition.get("name", ""))}
    others = {name: set(tools) for name, tools in other_servers_tools.items() if name != server}
    findings: list[Finding] = []
    for text in texts(definition):
        findings += _hidden(text)
        findings += _instructions(text)
        findings += _sensitive(text)
        if not text.is_name:
            findings += _shadowing(text, server, own, others)
    unique = list({(f.kind, f.message): f for f in findings}.values())
    unique.sort(key=lambda f: SEVERITY_RANK[f.severity])
    return unique[:MAX_FINDINGS]


def finding_kinds(findings: list[Finding]) -> list[str]:
    """The kinds among ``findings``, in the order of their most severe finding."""
    ranked = sorted(findings, key=lambda f: SEVERITY_RANK[f.severity])
    return list(dict.fromkeys(f.kind for f in ranked))
