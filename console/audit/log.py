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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from console.audit.record import (
    _HEX64,
    _LAST_RESORT,
    GENESIS,
    AuditEvent,
    Checkpoint,
    Verification,
    canonical,
    event_body,
    printable_text,
    record_mac,
    timestamp,
    unrecordable,
)
from console.errors import AuditError

log = logging.getLogger(__name__)


class AuditWriteError(AuditError):
    """The log (or its anchor) cannot be written; the message says what to do."""


class AuditAnchorError(AuditWriteError):
    """The records were written but the head anchor could not be replaced."""

    def __init__(self, message: str, head: Checkpoint) -> None:
        super().__init__(message)
        self.head = head


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
