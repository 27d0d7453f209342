"""Shadowing: a tool's text that changes how other tools or servers behave.

An attack aims at whatever is installed beside it: another server's tool by name (then
graded high), a tool this server lacks, or "any other tool" in general.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from console.model import Finding
from console.trust.findings import SEVERITY_RANK
from console.trust.scan_text import (
    DEFERS,
    IGNORE,
    ORDER,
    SHADOWING,
    Scope,
    Severity,
    Text,
    make_finding,
    names_own_tool,
    quote,
    sentence_at,
    snippet,
    words,
)


_NAME = r"[`'\"]?([A-Za-z][\w.-]*)[`'\"]?"
BEHAVIOUR_RULES: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:when(?:ever)?|every\s+time|each\s+time|if|before|after)\b[^.\n]{0,40}?\b(?:the\s+)?"
               + _NAME + r"\s+tool\s+(?:is\s+(?:used|called|invoked|run|executed|available)|(?!is\b|has\b|(?:call|result|output|response|name|description|definition|schema|error|option|"
               r"parameter|argument|use)s\b)[a-z]+s)\b", IGNORE),
    re.compile(r"\b(?:when(?:ever)?|every\s+time|each\s+time|before|after)\s+(?:you\s+)?"
               r"(?:use|uses|using|call|calls|calling|invoke|invokes|invoking|run|runs|running)\s+(?:the\s+)?"
               + _NAME, IGNORE),
    re.compile(r"\b(?:instead\s+of|rather\s+than)\s+(?:using|calling|invoking)\s+(?:the\s+)?" + _NAME, IGNORE),
    re.compile(r"\b(?:the\s+)?" + _NAME + r"\s+tool\s+(?:must|should|shall|will\s+now|has\s+to)\s+", IGNORE),
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
    r"\bprefer\s+(?:this|me|it|this\s+tool)\s+(?:over|to)\s+[`'\"]?\w", IGNORE)
"""Tools and servers other than this one, named by what they do rather than what they are
called: the way an attack aims at whatever is installed beside it."""
GENERIC_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("claims an effect on other tools", re.compile(r"\bside[\s-]effects?\s+on\b", IGNORE)),
    ("redirects what is sent to a fixed recipient", re.compile(
        r"\binstead\s+of\s+(?:the\s+)?(?:requested|intended|original|specified|given|chosen|actual)\s+"
        r"(?:channel|recipients?|address(?:ee)?|account|destination|user|payee|repository|repo|folder)\b|"
        r"\b(?:set|change|replace|switch)\s+(?:the\s+)?(?:recipient|receiver|destination|payee)s?\s+(?:to|with)\b|"
        r"\b(?:also|always)\s+(?:b?cc|blind[\s-]copy)\b|"
        r"\b(?:messages?|e-?mails?|mail|payments?|transfers?|funds|money|notifications?)\b[^.\n]{0,60}?"
        r"\b(?:should|must|always|shall)\b[^.\n]{0,30}?\b(?:go|be\s+(?:sent|forwarded|routed|redirected|"
        r"addressed|transferred|copied))\s+to\b[^.\n]{0,40}?(?:[\w.+-]+@[\w-]+\.\w|\+?\d[\d\s().-]{6,}\d)", IGNORE)),
)
NOT_TOOL_NAMES = {"this", "that", "these", "those", "it", "any", "a", "an", "the", "each", "every", "other", "your"}
DIRECTIVE = re.compile(r"\b(?:must|should|always|never|instead|whenever|when|before|after|do\s+not|don't|only|"
                       r"call|use|invoke|run)\b", IGNORE)
"""In a sentence that names another server's tool, these make it an order, not a remark."""


def _mentions(view: str, tool: str) -> Iterator[re.Match[str]]:
    """A tool name as a reference: plain-word names ('add', 'search') only when quoted or
    called a tool, since as words they are everywhere; others wherever they stand."""
    name = re.escape(tool)
    if re.fullmatch(r"[a-z]+", tool):
        return re.finditer(rf"[`'\"]{name}[`'\"]|\b{name}(?:\(\)|\s+tool\b)", view)
    return re.finditer(rf"(?<![A-Za-z0-9]){name}(?![A-Za-z0-9])", view, IGNORE)


def _looks_like_tool(view: str, match: re.Match[str]) -> bool:
    """A name no server here offers still reads as a tool if it is written like one:
    snake_case or camelCase, quoted, or called a tool."""
    name, start, end = match.group(1), match.start(1), match.end(1)
    quoted = start > 0 and view[start - 1] in "`'\""
    called_tool = re.match(r"[`'\"]?\s+tool\b", view[end:], IGNORE) is not None
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


def shadowing(text: Text, scope: Scope) -> list[Finding]:
    view = words(text)
    found: dict[str, Finding] = {}
    own, others = scope.own, scope.others
    for match in re.finditer(r"\b([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)__([\w.-]+)", view):
        if match.group(1) != scope.server:
            known = match.group(1) in others
            _keep(found, match.group(2) if known else match.group(0), make_finding(
                "high" if known else "medium", SHADOWING,
                f"{text.where}: names {'the' if known else 'a'} namespaced tool {match.group(0)!r} of "
                f"{'server ' + repr(match.group(1)) if known else 'another server'}: {snippet(view, match)}"))
    folded = view.lower()
    for other, tool, tool_folded in scope.other_names:
        if tool_folded in folded:
            for match in _mentions(view, tool):
                token = _token_at(view, *match.span())
                if token != tool and (token in own or _owner(token, others) != (other, tool)):
                    continue  # the tail of another name: git_create_branch is not create_branch
                # An order about another server's tool is shadowing; a remark ("more reliable
                # than update_issue") is worth a note only.
                severity: Severity = "high" if DIRECTIVE.search(sentence_at(view, match)) else "low"
                _keep(found, tool, make_finding(severity, SHADOWING, f"{text.where}: mentions {tool!r} of server "
                                                                 f"{other!r}: {snippet(view, match)}"))
    for pattern in BEHAVIOUR_RULES:
        for match in pattern.finditer(view):
            name = match.group(1).strip(".-")
            if name.lower() in NOT_TOOL_NAMES or name in own or name in scope.params:
                continue
            owner = _owner(name, others)
            if owner is None and not _looks_like_tool(view, match):
                continue  # "before running the migration": a plain word, not a tool
            target = f"{owner[1]!r} of server {owner[0]!r}" if owner else f"a tool {name!r} this server lacks"
            _keep(found, owner[1] if owner else name, make_finding(
                "high" if owner else "medium", SHADOWING,
                f"{text.where}: changes how {target} behaves: {snippet(view, match)}"))
    for match in OTHER_TOOLS.finditer(view):
        sentence = sentence_at(view, match)
        if match.group(0).lower().startswith("prefer") and names_own_tool(sentence, own):
            continue  # "prefer this over several 'fill' calls": the server ordering its own tools
        if ORDER.search(sentence) and not DEFERS.search(sentence):
            _keep(found, "other tools", make_finding("medium", SHADOWING, f"{text.where}: gives orders about other "
                                                                      f"tools or servers: {quote(sentence.strip())}"))
            break
    for label, pattern in GENERIC_RULES:
        if match := pattern.search(view):
            _keep(found, label, make_finding("medium", SHADOWING, f"{text.where}: {label}: {snippet(view, match)}"))
    return list(found.values())
