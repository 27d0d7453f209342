"""The tamper-evident audit log: append-only JSONL chained with HMAC-SHA256.

Each record carries the MAC of the one before it, and its own MAC over its canonical
form (which includes that link), keyed with a secret that lives in the vault. Editing,
deleting or reordering records breaks the chain at the first record touched. Cutting
records off the end cannot break a chain, so the vault also keeps a checkpoint (the
sequence number and MAC of the last record a commit saw) and ``verify`` compares the
log's tail against it.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.errors import AuditError

GENESIS = "0" * 64
_SECRETISH = re.compile(r"(secret|token|passw|passphrase|api[_-]?key|private|credential)", re.I)
_PREVIEW_LIMIT = 200


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


def redact(value: Any, depth: int = 0) -> Any:
    """Mask values under secret-looking keys and shorten long strings.

    Callers never hand secrets to the audit log on purpose; this is the second line.
    """
    if isinstance(value, dict):
        return {
            str(k): "<redacted>" if _SECRETISH.search(str(k)) else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value[:20]]
    if isinstance(value, str) and len(value) > _PREVIEW_LIMIT:
        return value[:_PREVIEW_LIMIT] + "…"
    return value


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_mac(key: bytes, record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "mac"}
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def _timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key

    def append(self, events: Sequence[AuditEvent], now: datetime | None = None) -> Checkpoint | None:
        """Chain and append ``events`` in one write; return the new head.

        The file lock serialises writers across processes (console changes and the
        gateway's batched writer), and the chain continues from whatever is on disk.
        """
        if not events:
            return None
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._head(fd)
            stamp = _timestamp(now)
            lines = []
            for event in events:
                seq += 1
                record = {
                    "seq": seq,
                    "ts": stamp,
                    "actor": event.actor,
                    "action": event.action,
                    "target": event.target,
                    "decision": event.decision,
                    "agent": event.agent,
                    "detail": redact(event.detail),
                    "prev": prev,
                }
                record["mac"] = prev = record_mac(self._key, record)
                lines.append(canonical(record) + b"\n")
            os.write(fd, b"".join(lines))
            os.fsync(fd)
            return Checkpoint(seq, prev)
        finally:
            os.close(fd)

    def _head(self, fd: int) -> tuple[int, str]:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS
        line = _last_line(fd, size)
        try:
            record = json.loads(line)
            return int(record["seq"]), str(record["mac"])
        except (ValueError, KeyError, TypeError):
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
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record

    def verify(self, checkpoint: Checkpoint | None) -> Verification:
        prev, expected, count = GENESIS, 1, 0
        macs: dict[int, str] = {}
        lines: Iterable[bytes] = open(self.path, "rb") if self.path.exists() else []  # noqa: SIM115
        try:
            for line in lines:
                bad = self._check_line(line, expected, prev)
                if bad:
                    return Verification(False, count, f"record {expected}: {bad}", expected)
                record = json.loads(line)
                prev = macs[expected] = record["mac"]
                expected += 1
                count += 1
        finally:
            if hasattr(lines, "close"):
                lines.close()
        if checkpoint is not None:
            if checkpoint.seq > count:
                return Verification(
                    False, count,
                    f"record {count + 1}: missing — the log ends at record {count} but the vault's "
                    f"checkpoint says {checkpoint.seq} records were written (the end was cut off)",
                    count + 1,
                )
            if macs.get(checkpoint.seq) != checkpoint.mac:
                return Verification(
                    False, count,
                    f"record {checkpoint.seq}: does not match the vault's checkpoint (log replaced)",
                    checkpoint.seq,
                )
        return Verification(True, count, f"{count} records, chain intact")

    def _check_line(self, line: bytes, expected: int, prev: str) -> str | None:
        try:
            record = json.loads(line)
        except ValueError:
            return "unreadable (not a JSON record)"
        if not isinstance(record, dict) or not {"seq", "prev", "mac"} <= record.keys():
            return "malformed (fields missing)"
        if record["seq"] != expected:
            return f"out of place: found record {record['seq']} where {expected} belongs (deleted or reordered)"
        if record["prev"] != prev:
            return "does not follow the record before it (a record was deleted or reordered)"
        if not hmac.compare_digest(str(record["mac"]), record_mac(self._key, record)):
            return "altered: its MAC does not match its contents"
        return None

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
