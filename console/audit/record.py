"""What the audit log writes of an event: a record safe to write, read back and show.

Whatever callers put in an event (agents choose tool names, client info, ids and
arguments), the record written is JSON that reads back to exactly what was MACed:
control, invisible-format and lone-surrogate characters are escaped as text (``\\x00``,
``\\u202e``, ``\\ud800``), long strings, deep nesting and large containers are cut with
a ``…`` marker, numbers JSON cannot carry and other objects become text, and a record
stays under ``RECORD_LIMIT`` bytes. An event that still cannot be recorded becomes an
``audit.unrecordable`` record naming it: nothing is dropped and no event stops the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import reprlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

GENESIS = "0" * 64
CUT = "…"
REDACTED = "<redacted>"
RECORD_LIMIT = 64 * 1024
"""Bytes of one record line at the most; a larger detail is replaced by its start and hash."""
_SECRETISH = re.compile(r"(secret|token|passw|passphrase|api[_-]?key|private|credential)", re.I)
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    r"\ud800-\udfff\U000e0000-\U000e007f]"
)
"""Characters that are escaped as text: C0/C1 controls (terminal escapes), bidi and
invisible format characters, tag characters, and lone surrogates (not encodable)."""
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 200



@dataclass(frozen=True)
class AuditEvent:
    """Something that happened, before it is numbered and chained."""

    actor: str
    """Who did it: ``user:<login>``, ``agent:<name>``, ``gateway`` or ``system``."""
    action: str
    """What, as ``area.verb``: ``agent.add``, ``grant.revoke``, ``tool.call``..."""
    target: str
    decision: str = "ok"
    """``ok`` for console changes; ``allow``, ``deny`` or ``error`` for gateway decisions."""
    agent: str | None = None
    """Name of the agent the event concerns, for filtering."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    mac: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "mac": self.mac}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Checkpoint | None:
        return None if not data else cls(int(data["seq"]), str(data["mac"]))


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    message: str
    bad_seq: int | None = None
    anchor_seq: int | None = None
    """The record the head anchor names, when there is a valid one."""
    end: int = 0
    """Byte offset just after the last record checked: where ``verify_appended`` goes on."""
    head: str = ""
    """The last checked record's MAC."""
    inode: int = 0
    """The log file checked (a replaced log is checked from its start again)."""


# -- making any value safe to record ---------------------------------------------------


def escape(text: str) -> str:
    """``text`` with unsafe characters written as ``\\n``, ``\\x1b``, ``\\u202e``, ``\\ud800``."""
    return _UNSAFE.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _number_text(value: int | float) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    # Python refuses to print ints of more than 4,300 digits (and printing them is slow).
    return str(value) if value.bit_length() <= 3000 else f"<int of {value.bit_length()} bits>"


def _text_of(value: Any) -> str:
    """Any value as text, the way JSON names keys (``1``, ``true``, ``null``); never raises."""
    if isinstance(value, str):
        return str.__str__(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return _number_text(int.__int__(value))
    if isinstance(value, float):
        return _number_text(float.__float__(value))
    return _REPR.repr(value)  # reprlib survives a __repr__ that raises


@dataclass(frozen=True)
class _Limits:
    text: int
    """Characters of one string before it is cut."""
    key: int
    items: int
    """Entries of one list or dict, the last of them a marker when cut."""
    depth: int
    total: int
    """Characters of text in the whole value; past it everything is ``…``."""
    mask: bool
    """Replace values under secret-looking keys."""


_DETAIL = _Limits(text=200, key=100, items=50, depth=12, total=16_000, mask=True)
_FIELD_LIMIT = 512
"""Characters of actor, action, target, decision and agent."""
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_NODE = 24
"""What any value costs the budget besides its text: the longest number JSON writes
here, or quotes, colon and comma (so spent budget bounds the record's length)."""
_SHOWN = _Limits(text=1 << 20, key=1 << 20, items=10_000, depth=64, total=1 << 26, mask=False)


class _Cleaner:
    """One walk over a value, building a JSON-safe copy within the limits.

    Exact types take the short paths (this runs for every gateway decision); subclasses
    and other objects are reduced to their base type or their text."""

    __slots__ = ("depth", "items", "key_limit", "left", "mask", "text_limit")

    def __init__(self, limits: _Limits) -> None:
        self.text_limit, self.key_limit, self.items = limits.text, limits.key, limits.items
        self.depth, self.left, self.mask = limits.depth, limits.total, limits.mask

    def text(self, value: str, limit: int) -> str:
        left = self.left - _NODE
        size = len(value)
        if size <= limit and size <= left and not _UNSAFE.search(value):
            self.left = left - size
            return value
        if left <= 0:
            return CUT
        limit = max(2, min(limit, left))
        if size > limit:
            value = value[: limit - 1] + CUT  # cut first: never escape megabytes
        value = escape(value)
        self.left = left - len(value)
        return value

    def value(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value, self.text_limit)
        self.left -= _NODE  # every node counts: a wide nest of numbers is bounded too
        if kind is dict:
            return self.mapping(value, depth) if depth < self.depth else self.too_deep()
        if kind is int:
            return value if _INT_MIN <= value <= _INT_MAX else self.text(_number_text(value), self.text_limit)
        if value is None or kind is bool:
            return value
        if kind is float:
            return value if math.isfinite(value) else _number_text(value)
        if kind is list or kind is tuple:
            return self.sequence(value, depth) if depth < self.depth else self.too_deep()
        return self.other(value, depth)

    def other(self, value: Any, depth: int) -> Any:
        """Subclasses of the JSON types as their base type (their own methods are not
        trusted), sets as lists, anything else as its text."""
        if isinstance(value, str):
            return self.value(str.__str__(value), depth)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return self.value(int.__int__(value), depth)
        if isinstance(value, float):
            return self.value(float.__float__(value), depth)
        if isinstance(value, dict | list | tuple | set | frozenset) and depth >= self.depth:
            return self.too_deep()
        if isinstance(value, dict):
            return self.mapping(value, depth)
        if isinstance(value, list | tuple | set | frozenset):
            return self.sequence(value, depth)
        return self.text(_text_of(value), self.text_limit)

    def too_deep(self) -> str:
        return f"{CUT} (nested deeper than {self.depth} levels)"

    def mapping(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        total = len(value)
        entries = dict.items(value) if total <= self.items else islice(dict.items(value), self.items - 1)
        mask, depth = self.mask, depth + 1
        for key, item in entries:
            if self.left <= 0:
                break
            name = self.key(key, out)
            out[name] = REDACTED if mask and _SECRETISH.search(name) else self.value(item, depth)
        if len(out) < total:
            out[self.key(CUT, out)] = f"{total - len(out)} more keys cut"
        return out

    def sequence(self, value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], depth: int) -> list[Any]:
        total = len(value)
        entries = value if total <= self.items else islice(value, self.items - 1)
        out = []
        depth += 1
        for item in entries:
            if self.left <= 0:
                break
            out.append(self.value(item, depth))
        if len(out) < total:
            out.append(f"{CUT} {total - len(out)} more items cut")
        return out

    def key(self, key: Any, taken: dict[str, Any]) -> str:
        """``key`` as safe text; a key that now equals one already taken gets ``#2``, ``#3``."""
        name = self.text(key if type(key) is str else _text_of(key), self.key_limit)
        if name in taken:
            number = 2
            while f"{name}#{number}" in taken:
                number += 1
            name = f"{name}#{number}"
        return name


def redact(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: secret-looking keys masked, text escaped, size bounded.

    Callers never hand secrets to the audit log on purpose; this is the second line.
    """
    return _Cleaner(_DETAIL).value(value, depth)


def printable(value: Any) -> Any:
    """``value`` read back from a log (maybe a tampered one) with unsafe text escaped, to show it."""
    return _Cleaner(_SHOWN).value(value)


def printable_text(value: Any, limit: int = 200) -> str:
    """One table cell: ``value`` as escaped text, cut at ``limit`` characters."""
    return _Cleaner(_SHOWN).text("" if value is None else _text_of(value), limit)


def _field(value: Any) -> str:
    text = value if type(value) is str else _text_of(value)
    if len(text) > _FIELD_LIMIT:
        text = text[: _FIELD_LIMIT - 1] + CUT
    return escape(text)


def _cut_detail(detail: dict[str, Any], size: int) -> dict[str, Any]:
    body = canonical(detail)
    return {
        "cut": f"the detail made the record {size} bytes, over the {RECORD_LIMIT} a record holds; "
        f"its SHA-256 and start are kept",
        "sha256": hashlib.sha256(body).hexdigest(),
        "start": escape(body[:4000].decode("utf-8", "replace")),
    }


def event_body(event: AuditEvent) -> dict[str, Any]:
    """The record of ``event`` without its place in the chain (seq, ts, prev, mac): every
    value safe, the whole under ``RECORD_LIMIT``. Raises only if ``event`` is not an event."""
    cleaner = _Cleaner(_DETAIL)
    detail = cleaner.value({} if event.detail is None else event.detail)
    body = {
        "actor": _field(event.actor),
        "action": _field(event.action),
        "target": _field(event.target),
        "decision": _field(event.decision),
        "agent": None if event.agent is None else _field(event.agent),
        "detail": detail if isinstance(detail, dict) else {"value": detail},
    }
    # A UTF-8 character is at most 4 bytes and JSON at most doubles an escaped one, so this
    # bounds the line; only records that might be too long are measured exactly.
    spent = _DETAIL.total - cleaner.left + sum(len(v) + _NODE for v in body.values() if type(v) is str)
    if 4 * spent + 300 > RECORD_LIMIT:
        size = len(canonical(body)) + 300  # seq, ts, prev and mac add at most this
        if size > RECORD_LIMIT:
            body["detail"] = _cut_detail(body["detail"], size)
    return body


def unrecordable(event: Any, error: BaseException) -> AuditEvent:
    """What is recorded in place of an event that could not be: who, what, where, and why."""

    def grab(name: str) -> str:
        try:
            return _field(getattr(event, name))
        except Exception:  # noqa: BLE001 - the placeholder must exist whatever the event is
            return "?"

    agent = getattr(event, "agent", None)
    return AuditEvent(grab("actor"), "audit.unrecordable", grab("target"), "error",
                      None if agent is None else grab("agent"),
                      {"action": grab("action"), "error": type(error).__name__})


_LAST_RESORT = {"actor": "system", "action": "audit.unrecordable", "target": "?", "decision": "error",
                "agent": None, "detail": {}}


def canonical(record: dict[str, Any]) -> bytes:
    # surrogatepass: records written here never hold a lone surrogate (they are escaped),
    # but verify must hash whatever a tampered line decodes to, without raising.
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def record_mac(key: bytes, record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "mac"}
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
