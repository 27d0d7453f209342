"""The tamper-evident audit log: append-only JSONL chained with HMAC-SHA256.

Each record carries the MAC of the one before it, and its own MAC over its canonical
form (which includes that link), keyed with a secret that lives in the vault. Editing,
deleting or reordering records breaks the chain at the first record touched.

Cutting records off the end breaks no chain. Two marks of the head catch it, and
``verify`` holds the log against the further of the two:

- the vault's checkpoint (sequence number and MAC of the head), moved by every console
  change, by the gateway every ``checkpoint_seconds`` and when it stops cleanly;
- the head anchor, ``audit.head`` beside the log: the same pair with an HMAC of its own,
  replaced (temporary file, fsync, rename) by every append once its records are fsynced.
  After a ``kill -9`` it still names the last record written, so a cut of anything
  older than one flush of the gateway is caught. ``append`` refuses to continue a log
  shorter than its anchor says, so a restarted gateway does not paper over a cut. (Its
  directory is not fsynced: after a power cut the anchor may be the one before, which
  is older but true.)

What the anchor does not catch: whoever can cut the log can also delete the anchor or
put back an older one (it is valid: its MAC is right). Then only the vault's checkpoint
speaks, and the records written after it — at most ``checkpoint_seconds`` of gateway
decisions before a crash — can go unnoticed. A log deleted whole starts over at the next
append (that cannot be told from a deliberate restart here); the checkpoint reports it.
A bad anchor MAC is reported as tampering; a missing anchor is not (logs written before
anchors existed have none).

Whatever callers put in an event (agents choose tool names, client info, ids and
arguments), the record written is JSON that reads back to exactly what was MACed:
control, invisible-format and lone-surrogate characters are escaped as text (``\\x00``,
``\\u202e``, ``\\ud800``), long strings, deep nesting and large containers are cut with
a ``…`` marker, numbers JSON cannot carry and other objects become text, and a record
stays under ``RECORD_LIMIT`` bytes. An event that still cannot be recorded becomes an
``audit.unrecordable`` record naming it: nothing is dropped and no event stops the log.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import re
import reprlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from console.errors import AuditError

log = logging.getLogger(__name__)

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


class AuditWriteError(AuditError):
    """The log (or its anchor) cannot be written; the message says what to do."""


class AuditAnchorError(AuditWriteError):
    """The records were written but the head anchor could not be replaced."""

    def __init__(self, message: str, head: Checkpoint) -> None:
        super().__init__(message)
        self.head = head


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


_ADVICE = {
    errno.ENOSPC: "free space on its disk",
    errno.EDQUOT: "free space within the disk quota",
    errno.EACCES: "give this user write access to it and its directory",
    errno.EPERM: "give this user write access to it and its directory",
    errno.EROFS: "make its filesystem writable",
    errno.EISDIR: "move the directory at that path aside",
    errno.ENOENT: "create its directory again",
    errno.ENOTDIR: "make its directory a directory again",
    errno.ELOOP: "replace the link at that path by the file",
    errno.EIO: "check the disk",
    errno.EMFILE: "raise the limit of open files",
    errno.ENFILE: "raise the limit of open files",
}


def _write_error(what: str, path: Path, exc: OSError) -> AuditWriteError:
    reason = exc.strerror or type(exc).__name__
    return AuditWriteError(f"cannot write {what} {path}: {reason}; {_ADVICE.get(exc.errno or 0, 'fix the cause')}")


class AuditLog:
    lock_timeout = 10.0
    """Seconds to wait for another process's append before giving up."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key

    @property
    def anchor_path(self) -> Path:
        return self.path.with_suffix(".head")

    # -- writing -----------------------------------------------------------------------

    def append(self, events: Sequence[AuditEvent], now: datetime | None = None) -> Checkpoint | None:
        """Chain and append ``events`` in one write, move the head anchor; return the new head.

        The file lock serialises writers across processes (console changes and the
        gateway's batched writer), and the chain continues from whatever is on disk.
        All or nothing: a failed write is taken back before ``AuditWriteError`` is raised.
        An event that cannot be recorded becomes an ``audit.unrecordable`` record.
        ``AuditAnchorError`` (carrying the head) means the records are written but the
        anchor is not.
        """
        if not events:
            return None
        stamp = timestamp(now)
        bodies = [self._body(event) for event in events]  # the costly part, outside the lock
        with self._locked() as (fd, seq, prev):
            lines = []
            for body in bodies:
                seq += 1
                line, prev = self._seal(body, seq, stamp, prev)
                lines.append(line)
            self._write(fd, b"".join(lines))
            head = Checkpoint(seq, prev)
            self._write_anchor(head)  # under the lock: anchors never go backwards
            return head

    def reanchor(self) -> Checkpoint | None:
        """Write the head anchor for the log as it is (after an anchor could not be written)."""
        with self._locked() as (_, seq, mac):
            head = Checkpoint(seq, mac) if seq else None
            if head is not None:
                self._write_anchor(head)
            return head

    @contextmanager
    def _locked(self) -> Iterator[tuple[int, int, str]]:
        """The log open for appending and locked, with its head (seq, MAC) checked against
        the anchor; OS errors become ``AuditWriteError`` naming what to do."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise _write_error("the audit log", self.path, exc) from exc
        try:
            self._lock(fd)
            seq, mac = self._head(fd)
            self._check_anchor(seq, mac)
            yield fd, seq, mac
        except OSError as exc:  # reading the head or locking; writes raise AuditWriteError
            raise _write_error("the audit log", self.path, exc) from exc
        finally:
            os.close(fd)  # releases the lock

    def _body(self, event: AuditEvent) -> dict[str, Any]:
        try:
            return event_body(event)
        except Exception as exc:  # noqa: BLE001 - one bad event never stops the log
            try:
                return event_body(unrecordable(event, exc))
            except Exception:  # noqa: BLE001
                return dict(_LAST_RESORT)

    def _seal(self, body: dict[str, Any], seq: int, stamp: str, prev: str) -> tuple[bytes, str]:
        try:
            record = {"seq": seq, "ts": stamp, **body, "prev": prev}
            record["mac"] = record_mac(self._key, record)
        except Exception:  # noqa: BLE001 - cannot happen to a cleaned body; still never wedge
            record = {"seq": seq, "ts": stamp, **_LAST_RESORT, "prev": prev}
            record["mac"] = record_mac(self._key, record)
        return canonical(record) + b"\n", record["mac"]

    def _lock(self, fd: int) -> None:
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AuditWriteError(
                        f"the audit log {self.path} has been locked by another process for over "
                        f"{self.lock_timeout:g}s; stop the stuck process (fuser -v {self.path})"
                    ) from None
                time.sleep(0.005)

    def _write(self, fd: int, data: bytes) -> None:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                done = os.write(fd, view)
                if done <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[done:]
            os.fsync(fd)
        except OSError as exc:
            # Take the partial batch back so the log stays whole; if even that fails the torn
            # tail stays, and append and verify name it.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise _write_error("the audit log", self.path, exc) from exc

    def _anchor_mac(self, seq: int, mac: str) -> str:
        return hmac.new(self._key, f"tbx-audit-head:{seq}:{mac}".encode(), hashlib.sha256).hexdigest()

    def _write_anchor(self, head: Checkpoint) -> None:
        data = json.dumps({"seq": head.seq, "mac": head.mac, "auth": self._anchor_mac(head.seq, head.mac)})
        tmp = self.anchor_path.with_name(self.anchor_path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, data.encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.anchor_path)
        except OSError as exc:
            raise AuditAnchorError(str(_write_error("the audit log's head anchor", self.anchor_path, exc)),
                                   head) from exc

    def _check_anchor(self, seq: int, mac: str) -> None:
        """Refuse to continue a log its anchor says was longer (or different): appending
        would move the anchor and hide the cut. A missing or empty log starts over (a
        deliberate restart cannot be told from a deletion here; the vault's checkpoint
        still reports a deleted log)."""
        anchor, problem = self.read_anchor()
        if seq == 0:
            if anchor is not None or problem:
                log.warning("the audit log %s is missing or empty but has a head anchor; starting a new log "
                            "('tbx audit verify' holds it against the vault's checkpoint)", self.path)
            return
        fix = (f"run 'tbx audit verify', keep {self.path.name} and {self.anchor_path.name} as evidence, "
               f"then move {self.anchor_path} aside to continue")
        if problem:
            raise AuditError(f"the audit log's head anchor {self.anchor_path} {problem}; {fix}")
        if anchor is not None and (anchor.seq > seq or (anchor.seq == seq and anchor.mac != mac)):
            raise AuditError(
                f"the audit log {self.path} ends at record {seq} but its head anchor says {anchor.seq} "
                f"records were written (cut off or replaced); {fix}"
            )

    # -- reading -----------------------------------------------------------------------

    def read_anchor(self) -> tuple[Checkpoint | None, str | None]:
        """The head anchor and, when one is there but cannot be trusted, why not."""
        try:
            fd = os.open(self.anchor_path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})"
        try:
            raw = os.read(fd, 4096)
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})"
        finally:
            os.close(fd)
        try:
            data = json.loads(raw)
            seq, mac, auth = data["seq"], data["mac"], data["auth"]
            valid = (type(seq) is int and seq > 0 and isinstance(mac, str) and isinstance(auth, str)
                     and _HEX64.fullmatch(mac) and _HEX64.fullmatch(auth))
        except (ValueError, RecursionError, TypeError, KeyError):
            valid = False
        if not valid:
            return None, "is unreadable (not an anchor written by tbx)"
        if not hmac.compare_digest(auth, self._anchor_mac(seq, mac)):
            return None, "does not match its MAC (altered, or written without the audit key)"
        return Checkpoint(seq, mac), None

    def _head(self, fd: int) -> tuple[int, str]:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS
        line = _last_line(fd, size)
        try:
            record = json.loads(line)
            return int(record["seq"]), str(record["mac"])
        except (ValueError, KeyError, TypeError, RecursionError):
            raise AuditError(
                f"the audit log {self.path} ends with an unreadable record; "
                f"run 'tbx audit verify' to see where, then move the log aside to continue"
            ) from None

    def head(self) -> Checkpoint | None:
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            seq, mac = self._head(fd)
        finally:
            os.close(fd)
        return Checkpoint(seq, mac) if seq else None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable record in order; unreadable lines are skipped (verify names them)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(record, dict):
                    yield record

    def verify(self, checkpoint: Checkpoint | None) -> Verification:
        """Walk the chain, then hold its end against the vault's checkpoint and the head anchor."""
        return self._verify(checkpoint, None)

    def verify_appended(self, since: Verification, checkpoint: Checkpoint | None) -> Verification:
        """Go on from an intact verification over the records appended since: only the new
        bytes are read, so a busy log stays verified up to its last record. A log that was
        cut or replaced is checked from its start again. An edit in place before
        ``since.end`` is not seen here: the next full ``verify`` finds it."""
        if not since.ok or not since.inode:
            return self.verify(checkpoint)
        return self._verify(checkpoint, since)

    def _verify(self, checkpoint: Checkpoint | None, since: Verification | None) -> Verification:
        # The anchor first: an append running meanwhile moves it only once its records are on disk.
        anchor, anchor_problem = self.read_anchor()
        marks = [(mark, name) for mark, name in ((anchor, "its head anchor"), (checkpoint, "the vault's checkpoint"))
                 if mark is not None]
        wanted = {mark.seq for mark, _ in marks}
        prev, count, offset, inode, macs = GENESIS, 0, 0, 0, {}
        if since is not None:
            prev, count, offset = since.head, since.records, since.end
            macs[count] = prev
        anchored = anchor.seq if anchor else None
        if not self.path.exists() and since is not None:
            return self._verify(checkpoint, None)
        if self.path.exists():
            with open(self.path, "rb") as lines:
                stat = os.fstat(lines.fileno())
                if since is not None and (stat.st_ino != since.inode or stat.st_size < since.end):
                    return self._verify(checkpoint, None)  # replaced or cut: all of it again
                inode = stat.st_ino
                lines.seek(offset)
                for line in lines:
                    if since is not None and not line.endswith(b"\n"):
                        break  # still being written: the next look reads it
                    record, bad = self._check_line(line, count + 1, prev)
                    if record is None:
                        return Verification(False, count, f"record {count + 1}: {bad}", count + 1, anchored)
                    prev = record["mac"]
                    count += 1
                    offset += len(line)
                    if count in wanted:
                        macs[count] = prev
        if anchor_problem:
            return Verification(False, count, f"its head anchor {self.anchor_path}: it {anchor_problem}")
        for mark, name in sorted(marks, key=lambda pair: -pair[0].seq):
            if mark.seq > count:
                return Verification(
                    False, count,
                    f"record {count + 1}: missing — the log ends at record {count} but {name} says "
                    f"{mark.seq} records were written (the end was cut off)",
                    count + 1, anchored,
                )
            if since is not None and mark.seq < since.records:
                continue  # behind what was verified already: the full check held it
            if macs.get(mark.seq) != mark.mac:
                return Verification(False, count, f"record {mark.seq}: does not match {name} (log replaced)",
                                    mark.seq, anchored)
        return Verification(True, count, f"{count} records, chain intact", None, anchored, offset, prev, inode)

    def _check_line(self, line: bytes, expected: int, prev: str) -> tuple[dict[str, Any] | None, str]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            return None, "unreadable (not a JSON record)"
        if not isinstance(record, dict) or not {"seq", "prev", "mac"} <= record.keys():
            return None, "malformed (fields missing)"
        if record["seq"] != expected:
            found = printable_text(record["seq"], 40)
            return None, f"out of place: found record {found} where {expected} belongs (deleted or reordered)"
        if record["prev"] != prev:
            return None, "does not follow the record before it (a record was deleted or reordered)"
        try:
            expected_mac = record_mac(self._key, record)
        except (ValueError, RecursionError, TypeError):
            expected_mac = ""
        given = record["mac"]
        if not (isinstance(given, str) and _HEX64.fullmatch(given) and hmac.compare_digest(given, expected_mac)):
            return None, "altered: its MAC does not match its contents"
        return record, ""

    def export(self, dest: Path) -> int:
        """Copy the log to ``dest`` atomically; return the number of records."""
        tmp = dest.with_name(dest.name + ".part")
        count = 0
        with open(tmp, "wb") as out:
            if self.path.exists():
                with open(self.path, "rb") as src:
                    for line in src:
                        out.write(line)
                        count += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        return count


def _last_line(fd: int, size: int) -> bytes:
    """The last line of the file (without its newline), read backwards in blocks."""
    end = size - 1 if os.pread(fd, 1, size - 1) == b"\n" else size
    buf, pos = b"", end
    while pos > 0:
        step = min(8192, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        newline = buf.rfind(b"\n")
        if newline >= 0:
            return buf[newline + 1 :]
    return buf
