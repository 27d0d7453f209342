"""Verifying only what was appended since an intact verification: the Audit screen keeps
"chain intact: N records" current on a busy log without hashing it all again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from console.audit import AuditEvent, AuditLog, Checkpoint
from tests.test_audit import _lines, _log


def more(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append([AuditEvent("gateway", "tool.call", f"tool:local/t/{i}", "allow")])


def fresh(tmp_path: Path, name: str, n: int) -> tuple[AuditLog, Checkpoint]:
    folder = tmp_path / name
    folder.mkdir()
    return _log(folder, n)


def overwrite(log: AuditLog, at: int, data: bytes) -> None:
    """Change bytes in place: the same file, the same size."""
    with open(log.path, "r+b") as fh:
        fh.seek(at)
        fh.write(data)


def test_it_reads_only_the_new_records_and_ends_where_a_full_check_ends(tmp_path: Path) -> None:
    log, head = _log(tmp_path, 6)
    first = log.verify(head)
    assert first.ok and first.end == log.path.stat().st_size and first.head == head.mac and first.inode
    more(log, 4)
    again = log.verify_appended(first, log.head())
    assert again == log.verify(log.head()) and again.ok and again.records == 10

    overwrite(log, 0, b"x" * 20)  # before what was verified: not read again, the full check sees it
    assert log.verify_appended(again, None).ok
    assert not log.verify(None).ok


def test_a_replaced_log_is_checked_from_its_start(tmp_path: Path) -> None:
    log, head = _log(tmp_path, 6)
    first = log.verify(head)
    more(log, 2)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(b"x" * 20 + log.path.read_bytes()[20:])
    os.replace(copy, log.path)
    found = log.verify_appended(first, None)
    assert not found.ok and found.bad_seq == 1


def test_a_bad_new_record_is_caught(tmp_path: Path) -> None:
    log, head = _log(tmp_path, 3)
    first = log.verify(head)
    more(log, 2)
    lines = _lines(log)
    record = json.loads(lines[4])
    record["decision"] = "deny"
    overwrite(log, sum(len(line) for line in lines[:4]),
              json.dumps(record, separators=(",", ":")).encode().ljust(len(lines[4]) - 1) + b"\n")
    bad = log.verify_appended(first, None)
    assert not bad.ok and bad.bad_seq == 5 and "altered" in bad.message


def test_a_cut_end_is_caught_and_a_half_written_record_waits(tmp_path: Path) -> None:
    log, head = fresh(tmp_path, "cut", 4)
    first = log.verify(head)
    more(log, 2)
    lines = _lines(log)
    with open(log.path, "r+b") as fh:  # the last record cut off; the head anchor still says 6
        fh.truncate(sum(len(line) for line in lines[:5]))
    found = log.verify_appended(first, None)
    assert not found.ok and "record 6: missing" in found.message

    log, head = fresh(tmp_path, "half", 2)
    done = log.verify(head)
    more(log, 1)
    whole = log.path.stat().st_size
    with open(log.path, "ab") as fh:
        fh.write(b'{"seq": 4, "half')
    waiting = log.verify_appended(done, None)
    assert waiting.ok and waiting.records == 3 and waiting.end == whole
