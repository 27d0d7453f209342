"""Reading the audit log the way the Audit screen needs it, cheaply (no Textual).

A log of 100,000 records is tens of megabytes: the screen loads only the tail, reads
older pages when asked, and follows the file by its size, reading only the bytes
appended since the last look (by this console, the CLI or a gateway process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.audit import Verification
from console.errors import AuditError
from console.workspace import AUDIT_META, Workspace

BLOCK = 64 * 1024
CHILD_OVER = 4 * 1024 * 1024
"""Logs larger than this (about 8,000 records) are verified by a child process."""
_CHILD = """
import base64, dataclasses, json, sys
from pathlib import Path
from console.audit import AuditLog, Checkpoint
job = json.loads(sys.stdin.read())
log = AuditLog(Path(job["path"]), base64.b64decode(job["key"]))
print(json.dumps(dataclasses.asdict(log.verify(Checkpoint.from_json(job["checkpoint"])))))
"""


def _parse(lines: list[bytes]) -> list[dict[str, Any]]:
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue  # verify names unreadable lines; the table shows what can be read
        if isinstance(record, dict):
            records.append(record)
    return records


class AuditTail:
    """The loaded window of the log: byte offsets ``start``..``end`` (both at line starts)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = 0
        self.end = 0
        self._identity: tuple[int, int] | None = None

    @property
    def at_beginning(self) -> bool:
        return self.start == 0

    def _stat(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None

    def changed(self) -> bool:
        """Whether the file differs from what was read (grew, shrank or was replaced)."""
        stat = self._stat()
        if stat is None:
            return self._identity is not None
        return (stat.st_dev, stat.st_ino) != self._identity or stat.st_size != self.end

    def load_tail(self, count: int) -> list[dict[str, Any]]:
        """Forget what was read and load the last ``count`` records."""
        stat = self._stat()
        self.start = self.end = 0
        self._identity = None if stat is None else (stat.st_dev, stat.st_ino)
        if stat is None or stat.st_size == 0:
            return []
        with open(self.path, "rb") as fh:
            end = self._complete_end(fh, stat.st_size)
            start, lines = self._lines_before(fh, end, count)
        self.start, self.end = start, end
        return _parse(lines)

    def older(self, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` records before the loaded window, oldest first."""
        if self.start == 0:
            return []
        with open(self.path, "rb") as fh:
            self.start, lines = self._lines_before(fh, self.start, count)
        return _parse(lines)

    def appended(self) -> list[dict[str, Any]] | None:
        """Records written since the last read, or None when the file was replaced or cut
        (then the caller loads the tail again)."""
        stat = self._stat()
        if stat is None:
            return None if self._identity is not None else []
        if (stat.st_dev, stat.st_ino) != self._identity or stat.st_size < self.end:
            return None
        if stat.st_size == self.end:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.end)
            data = fh.read(stat.st_size - self.end)
        complete = data.rfind(b"\n") + 1  # a record still being written waits for the next look
        self.end += complete
        return _parse(data[:complete].splitlines())

    @staticmethod
    def _complete_end(fh: Any, size: int) -> int:
        """The offset just after the last newline: a half-written record is not read yet."""
        pos = size
        while pos > 0:
            step = min(BLOCK, pos)
            fh.seek(pos - step)
            chunk = fh.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                return pos - step + newline + 1
            pos -= step
        return 0

    @staticmethod
    def _lines_before(fh: Any, end: int, count: int) -> tuple[int, list[bytes]]:
        """The last ``count`` complete lines before ``end``; returns (their start, lines)."""
        buf, pos = b"", end
        while pos > 0 and buf.count(b"\n") <= count:
            step = min(BLOCK, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
        lines = buf.split(b"\n")[:-1]  # buf ends at a line end: the last piece is empty
        if pos > 0:
            lines = lines[1:]  # the first piece may be a partial line
        lines = lines[-count:]
        start = end - sum(len(line) + 1 for line in lines)
        return start, [line for line in lines if line.strip()]


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _span(within: timedelta) -> str:
    """``15m``, ``24h``, ``7d``: a window as the filter bar takes it."""
    seconds = int(within.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class AuditQuery:
    """What the filters ask for; records are matched on their stored fields."""

    agent: str | None = None
    text: str = ""
    """Matched, case-insensitively, against target and action."""
    decision: str | None = None
    within: timedelta | None = None

    @property
    def active(self) -> bool:
        return bool(self.agent or self.text or self.decision or self.within)

    def describe(self) -> str:
        """``agent cursor, decision deny, "time" in target or action, last 1:00:00``."""
        parts = [f"agent {self.agent}"] if self.agent else []
        parts += [f"decision {self.decision}"] if self.decision else []
        parts += [f'"{self.text}" in target or action'] if self.text else []
        parts += [f"last {_span(self.within)}"] if self.within else []
        return ", ".join(parts) or "no filter"

    def cutoff(self, now: datetime | None = None) -> str | None:
        """ISO timestamps of one fixed width compare as strings: no parsing per record."""
        if self.within is None:
            return None
        return ((now or datetime.now(UTC)) - self.within).strftime(TIME_FORMAT)

    def matches(self, record: dict[str, Any], cutoff: str | None) -> bool:
        if self.agent and record.get("agent") != self.agent:
            return False
        if self.decision and record.get("decision") != self.decision:
            return False
        if cutoff and str(record.get("ts", "")) < cutoff:
            return False
        if self.text:
            wanted = self.text.lower()
            if wanted not in str(record.get("target", "")).lower() and wanted not in str(record.get("action", "")).lower():
                return False
        return True


def export_matching(source: Path, dest: Path, query: AuditQuery) -> tuple[int, int]:
    """Write the records of the whole log (not only those loaded) that match ``query`` to
    ``dest``, exactly as written, atomically; returns (written, records in the log).
    A subset: 'tbx audit verify' cannot check its chain, the full export can."""
    cutoff = query.cutoff()
    tmp = dest.with_name(dest.name + ".part")
    written = total = 0
    with open(tmp, "wb") as out:
        if source.exists():
            with open(source, "rb") as src:
                for line in src:
                    if not line.strip():
                        continue
                    total += 1
                    parsed = _parse([line])
                    if parsed and query.matches(parsed[0], cutoff):
                        out.write(line if line.endswith(b"\n") else line + b"\n")
                        written += 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest)
    return written, total


def verify_log(ws: Workspace) -> Verification:
    """``ws.audit.verify(ws.audit_checkpoint)``; for a large log in a child process.

    Hashing 100,000 records is two seconds of pure Python: in a thread of the console it
    holds the interpreter lock so much that the UI crawls for that long. The child gets
    the audit key on its stdin, never in its arguments or environment.
    """
    log, checkpoint = ws.audit, ws.audit_checkpoint
    try:
        size = log.path.stat().st_size
    except FileNotFoundError:
        size = 0
    if size <= CHILD_OVER:
        return log.verify(checkpoint)
    job = {"path": str(log.path), "key": (ws.repos.meta.get(AUDIT_META) or {})["key"],
           "checkpoint": checkpoint.to_json() if checkpoint else None}
    done = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(job), capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        raise AuditError(f"verifying the audit log failed: {done.stderr.strip().splitlines()[-1:]}")
    return Verification(**json.loads(done.stdout))
