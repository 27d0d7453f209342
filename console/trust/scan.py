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

import re
import unicodedata
from collections.abc import Collection
from typing import Any

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
    runs,
)
from console.trust.scan_text import (
    HIDDEN_UNICODE,
    IGNORE,
    INSTRUCTIONS,
    KINDS,
    SENSITIVE,
    Scope,
    Severity,
    Text,
    make_finding,
    moves,
    names_own_tool,
    quote,
    sentence_at,
    snippet,
    texts,
    words,
)
from console.trust.shadowing import shadowing

MAX_FINDINGS = 25
"""A hostile schema with thousands of properties must not fill the vault with findings."""
__all__ = ["KINDS", "blocking_kinds", "decode_hidden", "finding_kinds", "scan_tool"]


# -- hidden-unicode ------------------------------------------------------------------------


PADDING = re.compile(r"[ \t\u00a0]{60,}|(?:[ \t]*\n){12,}")
"""Whitespace that pushes the rest of a description past what a client shows (Invariant's
WhatsApp rug pull); indentation and paragraph breaks stay far below it."""


def _hidden(text: Text) -> list[Finding]:
    found: list[Finding] = []
    if text.encoded:
        return [make_finding("high", INSTRUCTIONS, f"{text.where}: base64 text the model can read: {quote(text.value)}")]
    if (pad := PADDING.search(text.value)) and text.value[pad.end():].strip():
        found.append(make_finding("medium", HIDDEN_UNICODE,
                              f"{text.where}: {len(pad.group(0))} blank characters push the text after them out of "
                              f"view: {quote(text.value[pad.end():])}"))
    invisible: list[tuple[int, str]] = []
    for kind, chunk in runs(text.value):
        if kind == "tags" and not (hidden := decode_tags(chunk)):
            invisible += [(ord(c), c) for c in chunk]  # a stray language or cancel tag
        elif kind == "tags":
            found.append(make_finding("high", HIDDEN_UNICODE,
                                  f"{text.where}: {len(chunk)} Unicode tag characters hide the text "
                                  f"{quote(escape(hidden), 100)}"))
        elif kind == "selectors":
            found.append(make_finding("medium", HIDDEN_UNICODE,
                                  f"{text.where}: a run of {len(chunk)} variation selectors hides the bytes "
                                  f"{quote(escape(decode_selectors(chunk)), 100)}"))
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
        found.append(make_finding(severity, HIDDEN_UNICODE,
                              f"{text.where}: {len(invisible)} invisible character(s) ({names}{more}) in "
                              f"{quote(text.value[max(0, first - 25): first + 35], 70)}"))
    return found


# -- instructions ----------------------------------------------------------------------------

_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|set\s+aside|put\s+aside|abandon|stop\s+following)\s+"
    r"(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|former|original|system|safety|developer|your)\s+"
    r"(?:\w+\s+)?(?:instructions?|prompts?|rules|directions|guidelines|guidance|guardrails|constraints|messages)\b|"
    r"\b(?:ignore|disregard|forget)\s+(?:what|anything|everything|whatever)\s+(?:the\s+)?(?:developer|system|user|"
    r"operator|you\s+were|you've\s+been|you\s+have\s+been)\b[^.\n]{0,20}?\b(?:told|said|instructed|asked)\b", IGNORE)
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
    r"(?:given|configured|set\s+up|programmed|initiali[sz]ed|started|provided))\b", IGNORE)
"""What only the model holds: the conversation, its instructions, its tools."""
CONTEXT_NAME = re.compile(
    r"\b(?:system\s+(?:prompt|instructions?|message)|(?:conversation|chat)\s+(?:history|log|"
    r"transcript)|chain\s+of\s+thought|(?:previous|prior|past)\s+(?:user\s+)?messages|tools?\s+(?:available|list)|"
    r"(?:chat|conversation|messages|history|transcript|dialog(?:ue)?)\s+so\s+far|"
    r"(?:full|whole|entire)\s+(?:chat|conversation|transcript|dialog(?:ue)?)|"
    r"available\s+tools|hidden\s+(?:rules|instructions)|your\s+(?:\w+\s+)?(?:instructions|prompt|rules))\b", IGNORE)
"""A parameter the model can only fill from its own context (HiddenLayer's parameter abuse)."""
NAME_ORDER = re.compile(r"\b(?:ignore|disregard|forget|reveal|leak|exfiltrate|always|never|must|bypass)\b", IGNORE)
INSTRUCTION_RULES: tuple[tuple[Severity, str, re.Pattern[str]], ...] = (
    ("high", "tells the model to drop its instructions", _OVERRIDE),
    ("high", "instruction tag aimed at the model", re.compile(
        r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|critical|assistant|"
        r"note[\s_-]?to[\s_-]?(?:the[\s_-]?)?(?:ai|model|assistant|llm))\s*>", IGNORE)),
    ("high", "chat-template marker", re.compile(r"\[/?INST\]|<<\s*/?SYS\s*>>|<\|im_start\|>|<\|system\|>", IGNORE)),
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
        r"(?:for|before|about)\s+(?:\w+\s+)?(?:confirmation|permission|approval|consent)\b", IGNORE)),
    ("high", "claims an authority over the model", re.compile(
        r"\bthis\s+is\s+(?:the|your)\s+(?:system|admin|administrator|developer|operator|owner|security\s+team)\b|"
        r"\b(?:safety|security)\s+(?:settings|rules|filters|guardrails|restrictions|checks)\s+(?:are|have\s+been)\s+"
        r"(?:disabled|lifted|removed|off|suspended)\b", IGNORE)),
    ("high", "invents the user's consent", re.compile(
        r"\b(?:pretend|assume|act\s+as\s+if|imagine)\s+(?:that\s+)?the\s+user\s+(?:has\s+)?(?:asked|wants|requested|"
        r"said|told|approved|agreed|consented)\b|"
        r"\b(?:the\s+user|they)\s+(?:has\s+|have\s+)?already\s+(?:agreed|approved|consented|confirmed|authori[sz]ed)\b",
        IGNORE)),
    ("high", "asks the model to reveal its instructions", re.compile(
        r"\b(?:reveal|print|output|repeat|write|show|dump|leak|disclose|share|recite)\s+(?:\w+\s+){0,3}?"
        r"(?:your|the\s+(?:assistant|model|agent)'?s?)\s+(?:\w+\s+){0,2}?(?:instructions|system\s+prompt|prompt|rules|"
        r"guidelines|configuration)\b", IGNORE)),
    ("high", "claims to override other instructions", re.compile(
        r"\b(?:these|this|the\s+following)\s+instructions?\s+(?:override|overrides|supersedes?|"
        r"takes?\s+precedence)\b", IGNORE)),
    ("medium", "a hidden first step before the tool is used", re.compile(
        r"\bbefore\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+tool\b[^.]{0,100}?"
        r"\b(?:read|call|send|pass|include|fetch|open|upload|cat|copy|first)\b|"
        r"\bbefore\s+(?:filling|submitting|answering|responding|replying|returning)\b[^.]{0,60}?"
        r"\b(?:read|send|fetch|open|upload|gather|collect)\b|"
        r"\b(?:read|open|fetch|load|cat)\s+(?:the\s+file\s+(?:at\s+)?)?[`'\"]?(?:~|\$HOME|/)[^.\n]{0,100}?"
        r"\bbefore\s+(?:calling|using|invoking|running|answering)\b", IGNORE)),
    ("medium", "commands the model", re.compile(
        r"\byou\s+(?:must|have\s+to|need\s+to|are\s+required\s+to)\s+(?:always|never|first|also|immediately)\b|"
        r"\b(?:you\s+are\s+now|from\s+now\s+on|new\s+instructions?\s*:)|"
        r"\b(?:act|behave)\s+as\s+(?:if|though)\s+you\b", IGNORE)),
    ("medium", "puts itself into every turn", re.compile(
        r"\b(?:call|use|invoke|run)\s+(?:this|the)\s+tool\s+(?:before|after|with|on|for)\s+(?:every|each|all)\s+"
        r"(?:(?:of\s+)?(?:your|the\s+user'?s)\s+)?(?:reply|replies|response|responses|answer|answers|message|messages|"
        r"turn|turns|question|questions)\b", IGNORE)),
    ("medium", "changes how the model answers from now on", re.compile(
        r"\bfor\s+the\s+rest\s+of\s+(?:this|the)\s+(?:session|conversation|chat)\b|"
        r"\b(?:end|start|begin|prefix|sign)\s+(?:every|each|all)\s+(?:of\s+your\s+)?(?:answers?|responses?|replies)\b",
        IGNORE)),
    ("medium", "tells the model to obey instructions found in content", re.compile(
        r"\b(?:instructions|commands|directions)\s+for\s+you\b|"
        r"\b(?:instructions|commands|directions)\b[^.\n]{0,60}?\b(?:follow|obey|execute|carry\s+out)\s+them\b|"
        r"\b(?:follow|obey|execute)\s+(?:any|all)\s+(?:\w+\s+)?(?:instructions|commands)\s+(?:in|from|found)\b", IGNORE)),
    ("medium", "coerces the model with a threat", re.compile(
        r"\b(?:otherwise|or\s+else|if\s+not)\b[^.\n]{0,20}?\b(?:the|this)\s+(?:tool|application|app|system)\s+"
        r"(?:will|would)\s+(?:not\s+work|fail|crash|break|stop\s+working)\b|\ball\s+data\s+will\s+be\s+lost\b|"
        r"\bif\s+you\s+(?:skip|omit|leave\s+out|don't|do\s+not|fail\s+to|forget\s+to)\b[^.\n]{0,80}?"
        r"\b(?:data|files?|work|account|repositor(?:y|ies)|everything)\b[^.\n]{0,30}?\b(?:will|would)\s+be\s+"
        r"(?:permanently\s+|irreversibly\s+)?(?:destroyed|deleted|lost|wiped|erased|corrupted)\b", IGNORE)),
    ("medium", "stresses importance to the model", re.compile(
        r"\b(?:very|extremely|critically|super)\s+important\b(?!\s+(?:parameter|field|option))", IGNORE)),
    ("medium", "countermands what the model was told", re.compile(
        r"\b(?:were|have\s+been|had\s+been)\s+(?:advised|told|instructed)\s+(?:not\s+)?to\b", IGNORE)),
    ("low", "mentions the system prompt", re.compile(r"\bsystem\s+prompt\b", IGNORE)),
    ("medium", "hidden comment", re.compile(r"<!--.*?-->", re.DOTALL)),
)
WORKFLOW_RULES = {"a hidden first step before the tool is used", "commands the model"}
"""Also how honest servers order their own tools ('you must first call `x_convert`'):
medium only when the sentence names none of the server's own tools."""


def _overlaps(match: re.Match[str], spans: list[tuple[int, int]]) -> bool:
    return any(match.start() < end and start < match.end() for start, end in spans)



def _instructions(text: Text, scope: Scope) -> list[Finding]:
    view = words(text)
    found, spans = [], []
    if text.is_name and CONTEXT_NAME.search(view):
        found.append(make_finding("medium", INSTRUCTIONS, f"{text.where}: the model would fill this from its own "
                                                      f"context: {quote(view)}"))
    elif text.is_name and len(view.split()) >= 5 and NAME_ORDER.search(view):
        found.append(make_finding("medium", INSTRUCTIONS, f"{text.where}: a name that reads as an order: {quote(view)}"))
    for match in CONTEXT.finditer(view):
        sentence = sentence_at(view, match)
        if moves(sentence) or (not text.is_name and re.search(r"\bshould\s+(?:be|contain|hold)\b", sentence, IGNORE)):
            spans.append(match.span())
            found.append(make_finding("high", INSTRUCTIONS, f"{text.where}: asks for the conversation or the model's "
                                                        f"own instructions: {quote(sentence.strip())}"))
            break
    for severity, label, pattern in INSTRUCTION_RULES:
        # Rules run most severe first; a weaker rule on the same words adds only noise.
        match = next((m for m in pattern.finditer(view) if not _overlaps(m, spans)), None)
        if match is None or (label in WORKFLOW_RULES and names_own_tool(sentence_at(view, match), scope.own)):
            continue
        spans.append(match.span())
        found.append(make_finding(severity, INSTRUCTIONS, f"{text.where}: {label}: {snippet(view, match)}"))
    # A note ('mentions the system prompt') beside an order on the same text is noise.
    return [f for f in found if f.severity != "low"] or found


# -- sensitive references ---------------------------------------------------------------------

SECRET_FILES = re.compile(
    r"(?<![\w.])\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?\b|\bauthorized_keys\b|"
    r"/etc/(?:shadow|gshadow|sudoers)\b|\.aws/(?:credentials|config)\b|\.config/gcloud\b|\.azure/|"
    r"\.kube/config\b|\.docker/config\.json\b|(?<![\w.])\.(?:netrc|npmrc|pypirc|git-credentials|pgpass)\b|"
    r"\.gnupg\b|\bmcp(?:_config)?\.json\b|\bclaude_desktop_config\.json\b|(?:~/|\$HOME/|(?<![\w.]))\.cursor\b|"
    r"\.codeium/|\.claude\.json\b|\bwallet\.dat\b|\b(?:seed|recovery|mnemonic)\s+phrases?\b|"
    r"(?:/var)?/run/secrets/|\bserviceaccount/token\b", IGNORE)
"""Files and secrets no tool description has a reason to name: high, unless refused."""
SOFT_FILES = re.compile(
    r"(?<![\w.$])\.env(?:\.[\w-]+)?\b|/etc/passwd\b|\b(?:browser|chrome|firefox|safari|session)(?:'s)?\s+cookies?\b|"
    r"\bcookies\.sqlite\b|\bcookie\s+(?:store|jar|database|db|file)s?\b|"
    r"(?<![\w.])\.(?:bash|zsh|sh|fish|python|psql|mysql|node_repl)_history\b|\bshell\s+history\b|"
    r"\b(?:login\s+)?keychain\b|\b(?:password|credential)\s+(?:manager|vault|store)s?\b", IGNORE)
"""Sensitive, but with honest uses (a dotenv tool): high only next to read/send wording."""
NAME_SECRETS = re.compile(
    r"\bid\s+(?:rsa|dsa|ecdsa|ed25519)\b|\bdot\s*env\b|\benv\s+file\b|\bssh\s+(?:private\s+)?keys?\b|"
    r"\bprivate\s+keys?\b|\baws\s+credentials\b|\bkube\s*config\b|\bnetrc\b|\bpasswd\b|\bcredentials?\s+file\b", IGNORE)
"""The same files as a parameter's name reads them ('content_from_reading_ssh_id_rsa')."""
CONTENT_WORDS = re.compile(r"\b(?:contents?|reading|read|dump|text|copy|value|from)\b", IGNORE)
CREDENTIAL_WORDS = re.compile(
    r"\b(?:api\s*keys?|(?:access|refresh|bearer|auth|authentication|session|personal\s+access)\s+tokens?|"
    r"passwords?|passphrases?|(?:private|secret|ssh)\s+keys?|client\s+secrets?|credentials?|secrets|"
    r"(?<=your\s)(?:[\w-]+\s+){0,2}?(?:tokens?|api\s*keys?|keys?))\b", IGNORE)
"""Normal in account servers' schemas: low, high only when the model is told to hand its own over."""
HELD = re.compile(
    r"\b(?:your|you\s+(?:use|have|hold|know|can\s+find|find|come\s+across|see)|the\s+user'?s|"
    r"(?:in|from)\s+the\s+(?:workspace|repository|repo|project|environment|machine|home\s+directory)|"
    r"(?:every|all|any)\b)", IGNORE)
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
                     r"not\s+(?:allowed|permitted|accessible)|protected)\b", IGNORE)
READS = re.compile(r"\b(?:read|open|cat|dump|load|look\s+(?:through|in|for)|search)\b", IGNORE)


def _path_at(view: str, match: re.Match[str]) -> str:
    """The whole path-like token a match sits in: ``~/.ssh/id_rsa`` rather than ``.ssh``."""
    start, end = match.start(), match.end()
    while start > 0 and re.match(r"[\w~$/.-]", view[start - 1]):
        start -= 1
    while end < len(view) and re.match(r"[\w~$/.-]", view[end]):
        end += 1
    return view[start:end].rstrip(".")


def _sensitive(text: Text) -> list[Finding]:
    view = words(text)
    found, spans = [], []
    secret = list(SECRET_FILES.finditer(view))
    if secret:
        spans += [m.span() for m in secret]
        paths = list(dict.fromkeys(_path_at(view, m) for m in secret))
        paths = [p for p in paths if not any(o != p and o.endswith(p) for o in paths)]
        refused = all(REFUSED.search(sentence_at(view, m)) for m in secret)
        found.append(make_finding("low" if refused else "high", SENSITIVE,
                              f"{text.where}: names secret files{' as refused' if refused else ''}: "
                              f"{', '.join(paths[:4])} in {snippet(view, secret[0], 30)}"))
    if match := SOFT_FILES.search(view):
        spans.append(match.span())
        sentence = sentence_at(view, match)
        exfil = (moves(sentence) or READS.search(sentence) is not None) and not REFUSED.search(sentence)
        found.append(make_finding("high" if exfil else "low", SENSITIVE,
                              f"{text.where}: names a sensitive file{' to read or send' if exfil else ''}: "
                              f"{snippet(view, match)}"))
    if text.is_name and (match := NAME_SECRETS.search(view)) and CONTENT_WORDS.search(view):
        spans.append((0, len(view)))
        found.append(make_finding("high", SENSITIVE, f"{text.where}: a parameter named for a secret's contents: "
                                                 f"{quote(view)}"))
    if not secret and (match := HOME_FILE.search(view)):
        sentence = sentence_at(view, match)
        if moves(sentence) and (READS.search(sentence) or re.search(r"\b(?:contents?|text)\s+of\b", sentence, IGNORE)):
            spans.append(match.span())
            found.append(make_finding("high", SENSITIVE, f"{text.where}: asks for a local file's contents in a call: "
                                                     f"{quote(sentence.strip())}"))
    for match in ENVIRONMENT.finditer(view):
        sentence = sentence_at(view, match)
        bare = match.group(0)[0].isupper() and match.group(0)[0] != "$"
        if moves(sentence) and ENV_VALUE.search(sentence) and (not bare or HELD.search(sentence)):
            spans.append(match.span())
            found.append(make_finding("high", SENSITIVE, f"{text.where}: asks for environment variables in a call: "
                                                     f"{quote(sentence.strip())}"))
            break
    if match := next((m for m in CREDENTIAL_WORDS.finditer(view) if not _overlaps(m, spans)), None):
        sentence = sentence_at(view, match)
        if not text.is_name and moves(sentence) and HELD.search(sentence):
            found.append(make_finding("high", SENSITIVE, f"{text.where}: asks the model to hand over credentials: "
                                                     f"{quote(sentence.strip())}"))
        elif text.is_name:
            found.append(make_finding("low", SENSITIVE,
                                  f"{text.where}: the model is asked for a credential ({match.group(0)!r})"))
        else:
            found.append(make_finding("low", SENSITIVE, f"{text.where}: mentions credentials: {snippet(view, match)}"))
    return found


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
            findings += shadowing(text, scope)
    unique = list({(f.kind, f.message): f for f in findings}.values())
    unique.sort(key=lambda f: SEVERITY_RANK[f.severity])
    return unique[:MAX_FINDINGS]

