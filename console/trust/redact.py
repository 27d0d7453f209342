"""Keep secrets out of anything shown or stored: logs, error text, audit previews, and
every result the gateway forwards to an agent.

Two nets: the exact values of the secrets we know (the vault's, a server's own), and
the shapes of common credentials, for the ones we do not know.

A known value is looked for in every form in which it can reach a reader: as it is, as
JSON writes it (``\\"``, ``\\n``, ``\\u00e9``), with its line ends changed, and, when it
has several lines (a PEM key, a certificate), line by line. A private key block is
masked whole even when nobody told us the key.

Every search starts with one cheap pass: a regex of short anchors, each starting with a
rare character, so the scan skips ahead instead of trying every alternative at every
position. Only what passes that filter meets the exact patterns.

A JSON document (``mask_json``) is filtered as bytes while its only escapes are those
with a single form (``\\n``, ``\\"``...), and by its decoded strings once it has ``\\u``
or ``\\/`` escapes (``\\u00e9`` and ``é`` are the same character). What passes is masked
string by string: decoded, masked, written back, so no match spans two strings and the
document stays valid JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_PEM_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"
PRIVATE_KEY = re.compile(
    rf"-----BEGIN ({_PEM_LABEL})-----"
    # the whole block, up to its END line, with \n, \r\n or their JSON escapes between
    r"(?:(?:[^\"-]++|-(?!----))*+-----END \1-----"
    # or, when the END line is missing (a cut output), the body lines that follow
    r"|(?:(?:\s|\\[rnt])++(?:[A-Za-z0-9+/=]|\\/){16,}+)*+)"
)


def _word_start(source: str, after: str = r"\w") -> re.Pattern[str]:
    """``source`` where no ``after`` character precedes it (``\\b`` by default), written so
    that ``re`` jumps from one occurrence of the first character to the next: a leading
    ``\\b`` would make it try every position."""
    first = re.escape(source[0])
    return re.compile(f"{first}(?<!{after}{first}){source[1:]}")


TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("github-token", _word_start(r"gh(?:[pousr]_[A-Za-z0-9]{36,}|ithub_pat_[A-Za-z0-9_]{40,})\b")),
    ("slack-token", _word_start(r"xox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("openai-key", _word_start(r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b")),
    ("aws-access-key", _word_start(r"A(?:KIA|SIA)[A-Z0-9]{16}\b")),
    ("google-api-key", _word_start(r"AIza[0-9A-Za-z_-]{35}\b")),
    # Not after a "-" either: a JWT starting inside a run of its own characters would
    # have "-eyJ-eyJ..." tried from every eyJ to the run's end, in quadratic time.
    ("jwt", _word_start(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b", r"[\w-]")),
    ("private-key", PRIVATE_KEY),
    ("tbx-agent-token", _word_start(r"tbx_[A-Za-z0-9_-]{40,}\b")),
)
# A loose form of every pattern above, keyed by a rare character it must contain and
# looking at bytes of JSON: whatever a pattern matches in a decoded string, its anchor
# matches in the string as JSON writes it. A word starts after a non-word character, or
# after an escape (\n, \u001b) that stands for one.
_B = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrtbf])|(?<=\\u00[01][0-9a-f]))"
_TOKEN_ANCHORS: dict[str, tuple[str, ...]] = {
    "_": (rf"(?<={_B}gh[pousr]_)[A-Za-z0-9]{{36}}", rf"(?<={_B}github_)pat_[A-Za-z0-9_]{{40}}",
          rf"(?<={_B}tbx_)[A-Za-z0-9_-]{{40}}"),
    "-": (rf"(?<={_B}xox[abposr]-)[A-Za-z0-9-]{{10}}", rf"(?<={_B}sk-)[A-Za-z0-9_-]{{20}}",
          r"----BEGIN [A-Z0-9 ]*PRIVATE KEY"),
    "A": (rf"(?<={_B}A)(?:(?:KIA|SIA)[A-Z0-9]{{16}}|Iza[0-9A-Za-z_-]{{35}})",),
    "J": (r"(?<=[A-Za-z0-9_-]{8}\.eyJ)[A-Za-z0-9_-]{8}",),  # a JWT's second part, fixed width
}
MIN_SECRET_LENGTH = 6
"""Shorter values would match ordinary text everywhere; such secrets are weak anyway."""
MIN_FRAGMENT_LENGTH = 16
"""A line of a multi-line secret with at least this many non-space characters is masked
on its own, so printing part of a key hides that part too."""

_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LINE_BREAK = re.compile(r"\r\n|\r|\n|\\r\\n|\\r|\\n")
_PEM_ARMOR = re.compile(r"-----(?:BEGIN|END) [A-Z0-9 ]+-----")
_ANCHOR_LENGTH = 8
_ANCHOR_MIN = 5
_COMMON = ' etaoinsrhldcumfpgwybvk"\\,.:/\n{}[]0123456789-_xjqzTSAECIRMPNDOLBHFGWUVYKJXQZ'
_RARITY = {ord(c): rank for rank, c in enumerate(_COMMON)}
"""Characters from most to least common in tool output; any other one counts as rare."""
_RARE = _COMMON.index("x")
"""From here on (x j q z, capitals, anything not listed) a character is rare enough to
start an anchor."""


def _json_text(value: str, ascii_only: bool = False) -> str:
    """``value`` as the inside of a JSON string."""
    return json.dumps(value, ensure_ascii=ascii_only)[1:-1]


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _forms(value: str) -> set[str]:
    """Every text a reader could get ``value`` as: itself, its JSON escapes, its lines."""
    wholes = {value}
    if "\n" in value or "\r" in value:
        lf = value.replace("\r\n", "\n").replace("\r", "\n")
        wholes |= {lf, lf.replace("\n", "\r\n")}
    lines = [line.strip() for line in _LINE_BREAK.split(value)]
    if len(lines) > 1:
        wholes |= {line for line in lines
                   if len("".join(line.split())) >= MIN_FRAGMENT_LENGTH and not _PEM_ARMOR.fullmatch(line)}
    return {form for whole in wholes for form in (whole, _json_text(whole), _json_text(whole, True))}


def _rarity(char: str) -> int:
    return _RARITY.get(ord(char), len(_COMMON))


def _anchors(needles: Iterable[str]) -> dict[str, str]:
    """A short piece of each needle, starting with a rare character, and with as few
    different first characters as will do: every first character is a stop for the
    filter, and in random-looking data (base64) each is as common as any other."""
    starts = {needle: {needle[i]: i for i in reversed(range(max(len(needle) - _ANCHOR_MIN, 0) + 1))}
              for needle in needles}
    left = set(starts)
    chosen: dict[str, str] = {}
    while left:  # greedy cover of the needles by rare first characters
        counts = Counter(char for needle in left for char in starts[needle] if _rarity(char) >= _RARE)
        if not counts:
            break
        best = max(counts, key=lambda char: (counts[char], _rarity(char), char))
        for needle in [needle for needle in left if best in starts[needle]]:
            chosen[needle] = needle[starts[needle][best]:][:_ANCHOR_LENGTH]
            left.remove(needle)
    for needle in left:  # no rare character: the rarest there is
        first = max(starts[needle], key=lambda char: (_rarity(char), -starts[needle][char]))
        chosen[needle] = needle[starts[needle][first]:][:_ANCHOR_LENGTH]
    return chosen


def _trie(words: Iterable[str]) -> str:
    """One regex for literal words, shaped as a trie: ``re`` tries the alternatives of a
    branch one by one, so words that share a start share the work."""
    groups: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        if not word:  # a word ends here: enough for a filter
            return ""
        groups.setdefault(word[0], []).append(word[1:])
    return "|".join(re.escape(first) + _group(_trie(rests)) for first, rests in groups.items())


def _group(source: str) -> str:
    return f"(?:{source})" if "|" in source else source


def _filter_source(anchors: Iterable[str]) -> str:
    """The anchors and the loose token patterns, as one alternation whose every branch
    starts with a literal character: ``re`` then skips each position whose character
    starts nothing without trying anything there."""
    groups: dict[str, list[str]] = {first: list(rests) for first, rests in _TOKEN_ANCHORS.items()}
    by_first: dict[str, list[str]] = {}
    for anchor in anchors:
        by_first.setdefault(anchor[0], []).append(anchor[1:])
    for first, rests in by_first.items():
        groups.setdefault(first, []).insert(0, _trie(rests))
    return "|".join(f"{re.escape(first)}{_group('|'.join(rests))}" for first, rests in sorted(groups.items()))


_TOKENS = re.compile(_filter_source(()))
_MAX_HITS = 64


class _Index:
    """The filter over one kind of input, and the forms its anchors stand for.

    ``needles`` pairs each form with how it appears in that input: as it is in text;
    as the bytes JSON writes it (seen as latin-1 text, one character a byte) in a document.
    """

    def __init__(self, needles: Iterable[tuple[str, str]]) -> None:
        self._needles = sorted(set(needles))
        anchors = _anchors(needle for needle, _ in self._needles)
        self._by_anchor: dict[str, list[tuple[str, str]]] = {}
        for needle, form in self._needles:
            self._by_anchor.setdefault(anchors[needle], []).append((needle, form))
        self._anchors_by_first: dict[str, list[str]] = {}
        for anchor in self._by_anchor:
            self._anchors_by_first.setdefault(anchor[0], []).append(anchor)
        self._filter = re.compile(_filter_source(self._by_anchor))

    def candidates(self, text: str) -> tuple[frozenset[str], bool]:
        """The forms in ``text``, and whether a token may be: nothing after one scan in
        the common case; else only the forms whose anchor was hit are looked for."""
        hit = self._filter.search(text)
        if hit is None:
            return frozenset(), False
        needles: set[tuple[str, str]] = set()
        tokens = False
        for _ in range(_MAX_HITS):
            at = hit.start()
            for anchor in self._anchors_by_first.get(text[at], ()):
                if text.startswith(anchor, at):
                    needles.update(self._by_anchor[anchor])
            tokens = tokens or _TOKENS.match(text, at) is not None
            hit = self._filter.search(text, at + 1)
            if hit is None:
                break
        else:  # hit everywhere: look for everything, once each
            needles, tokens = set(self._needles), _TOKENS.search(text) is not None
        return frozenset(form for needle, form in needles if needle in text), tokens


class _Matcher:
    """The exact search, over a few known forms (those a filter let through) and,
    when ``tokens``, the credential patterns."""

    def __init__(self, forms: dict[str, str], tokens: bool) -> None:
        self._names = forms
        longest_first = sorted(forms, key=lambda f: (-len(f), f))
        self._known = re.compile("|".join(map(re.escape, longest_first))) if forms else None
        self._patterns = TOKEN_PATTERNS if tokens else ()
        self.numeric = any(_NUMBER.fullmatch(form) for form in forms)
        """Some form could be written as a JSON number (a PIN, an account number)."""

    def scan(self, text: str) -> tuple[set[str], set[str]]:
        names = {self._names[m.group(0)] for m in self._known.finditer(text)} if self._known else set()
        return names, {kind for kind, pattern in self._patterns if pattern.search(text)}

    def redact(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(lambda m: f"‹secret:{self._names[m.group(0)]}›", text)
        for kind, pattern in self._patterns:
            text = pattern.sub(f"‹{kind}›", text)
        return text


def _report(names: set[str], kinds: set[str]) -> list[str]:
    return sorted(names) + [kind for kind, _ in TOKEN_PATTERNS if kind in kinds]


class Redactor:
    """Masks known secret values and well-known token shapes, in text and in JSON.

    Names in what it reports are the secrets' names; kinds are those of TOKEN_PATTERNS.
    """

    _CACHE = 64

    def __init__(self, secrets: dict[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = secrets.items() if isinstance(secrets, dict) else secrets
        known = {value: name for name, value in pairs if value and len(value) >= MIN_SECRET_LENGTH}
        forms: dict[str, str] = {}
        # Longest values first, so a form shared by two secrets carries the longer one's name.
        for value, name in sorted(known.items(), key=lambda kv: -len(kv[0])):
            for form in sorted(_forms(value)):
                forms.setdefault(form, name)
        self._forms = forms
        self._text = _Index((form, form) for form in forms)
        # In a JSON document a form appears encoded as JSON writes it, or as it is in a
        # lenient document that leaves control characters raw.
        self._json = _Index((_utf8(encoded).decode("latin-1"), form) for form in forms
                            for encoded in (_json_text(form), form))
        self._numeric = any(_NUMBER.fullmatch(form) for form in forms)
        self._matchers: dict[tuple[frozenset[str], bool], _Matcher] = {}

    def findings(self, text: str) -> list[str]:
        """Names of the secrets and kinds of token found in ``text``."""
        matcher = self._text_matcher(text)
        return _report(*matcher.scan(text)) if matcher else []

    def redact(self, text: str) -> str:
        matcher = self._text_matcher(text)
        return matcher.redact(text) if matcher else text

    def findings_in(self, value: Any) -> list[str]:
        """Names and kinds found in any string of a decoded JSON value, dict keys included,
        at any depth, and in its numbers. Iterative, so hostile nesting costs memory, not
        the stack. The strings are searched at once, joined by a lone surrogate: no secret
        holds one and no token has one, so nothing is found across two strings."""
        return self.findings("\udfff".join(_strings(value)))

    def mask_json(self, data: bytes) -> tuple[bytes, list[str]]:
        """``data`` (one JSON document) with every secret replaced by its marker, and the
        names and kinds found.

        A secret is found in whatever escaping the document writes it (``\\u00e9`` or
        ``é``, ``\\/`` or ``/``, surrogate pairs, hex of either case); each marker
        replaces part of one string, re-encoded, so the result stays valid JSON and
        ``json.loads`` of it holds no secret. A document that carries nothing is returned
        as it came (the same object), after one scan of its bytes (and a parse, when it
        has ``\\u`` or ``\\/`` escapes).
        """
        if b"\\u" in data or b"\\/" in data:  # escapes with several forms: read the strings
            try:
                value = _PAIRS.decode(data.decode("utf-8"))
            except (ValueError, RecursionError):  # not JSON: look at every string
                return _splice(data, self._text_matcher, self._numeric)
            present, tokens = self._text.candidates("\udfff".join(_strings(value)))
        else:  # every escape left has one form, the one json.dumps writes: read the bytes
            present, tokens = self._json.candidates(data.decode("latin-1"))
        if not present and not tokens:
            return data, []
        matcher = self._matcher(present, tokens)
        return _splice(data, lambda _text: matcher, matcher.numeric)

    def _text_matcher(self, text: str) -> _Matcher | None:
        present, tokens = self._text.candidates(text)
        return self._matcher(present, tokens) if present or tokens else None

    def _matcher(self, present: frozenset[str], tokens: bool) -> _Matcher:
        key = (present, tokens)
        matcher = self._matchers.get(key)
        if matcher is None:
            if len(self._matchers) >= self._CACHE:
                self._matchers.clear()
            matcher = self._matchers[key] = _Matcher({f: self._forms[f] for f in present}, tokens)
        return matcher


# --- JSON documents as bytes -------------------------------------------------------

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NUMBER_BYTES = re.compile(_NUMBER.pattern.encode())
# Made once: json.loads and json.dumps with options make a new one at every call.
_LENIENT = json.JSONDecoder(strict=False)
_PAIRS = json.JSONDecoder(strict=False, object_pairs_hook=tuple)
"""Objects as tuples of pairs: no key is dropped as a duplicate."""
_CANONICAL = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _is_json(data: bytes) -> bool:
    try:
        _LENIENT.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return True


def _decode_string(token: bytes) -> str | None:
    try:
        text = token.decode("utf-8")
        return text[1:-1] if "\\" not in text else _LENIENT.decode(text)
    except ValueError:
        return None


def _encode_string(text: str) -> bytes:
    try:
        return _CANONICAL.encode(text).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which only an escape can carry
        return json.dumps(text).encode("ascii")


def _splice(data: bytes, pick: Callable[[str], _Matcher | None], numeric: bool) -> tuple[bytes, list[str]]:
    """Mask string by string: decode one, mask it, write it back whole, so no match can
    span two strings and every marker is valid string content. ``pick`` gives the
    matcher for a text; ``numeric`` says whether a secret could be written as a number."""
    valid = _is_json(data)
    parts: list[bytes] = []
    names: set[str] = set()
    kinds: set[str] = set()
    done = 0

    def mask(start: int, end: int, text: str, encode: Callable[[str], bytes]) -> None:
        nonlocal done
        matcher = pick(text)
        if matcher is None:
            return
        found, kinds_found = matcher.scan(text)
        if found or kinds_found:
            names.update(found)
            kinds.update(kinds_found)
            parts.extend((data[done:start], encode(matcher.redact(text))))
            done = end

    def between(start: int, end: int) -> None:
        """What lies between strings: numbers in valid JSON, anything in broken JSON."""
        if not valid:
            mask(start, end, data[start:end].decode("utf-8", "surrogateescape"), _raw)
        elif numeric:
            for number in _NUMBER_BYTES.finditer(data, start, end):
                mask(number.start(), number.end(), number.group().decode("ascii"), _encode_string)

    position = 0
    for string in _JSON_STRING.finditer(data):
        between(position, string.start())
        position = string.end()
        text = _decode_string(string.group())
        if text is None:  # broken escapes or bytes: mask what is there, as it is
            mask(string.start() + 1, string.end() - 1, _unraw(data[string.start() + 1:string.end() - 1]), _raw)
        else:
            mask(string.start(), string.end(), text, _encode_string)
    between(position, len(data))
    if not parts:
        return data, _report(names, kinds)
    parts.append(data[done:])
    return b"".join(parts), _report(names, kinds)


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _unraw(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _strings(value: Any) -> Iterator[str]:
    """Every string in ``value`` (keys too) and every number as text; each container
    once, whatever its depth or however often it is referenced."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, (dict, list, tuple)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.extend((key, child))
            else:
                stack.extend(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            try:
                yield repr(item)
            except ValueError:  # an int too long to print has no secret of ours in it
                continue


def argument_digest(arguments: Any, redactor: Redactor, preview_chars: int = 160) -> dict[str, str]:
    """What the audit log keeps of a call's arguments: a hash and a redacted preview."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    preview = redactor.redact(canonical)
    if len(preview) > preview_chars:
        preview = preview[:preview_chars] + "…"
    return {"sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(), "preview": preview}
