"""The audit chain catches edits, deletions, reordering and truncation."""

from __future__ import annotations

import asyncio
import errno
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.audit import (
    RECORD_LIMIT,
    AuditEvent,
    AuditLog,
    AuditWriteError,
    Checkpoint,
    escape,
    redact,
)
from console.errors import AuditError
from console.gateway.audit_writer import AuditWriter
from console.services import agents, grants, toolboxes
from console.services.grants import Target
from console.workspace import Workspace

KEY = b"k" * 32


def _log(tmp_path: Path, n: int = 6) -> tuple[AuditLog, Checkpoint]:
    log = AuditLog(tmp_path / "audit.jsonl", KEY)
    head = None
    for i in range(n):
        head = log.append([AuditEvent("user:t", "test.event", f"thing:{i}", detail={"i": i})])
    assert head is not None
    return log, head


def _lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def test_intact_chain_verifies(tmp_path: Path) -> None:
    log, head = _log(tmp_path)
    result = log.verify(head)
    assert result.ok and result.records == 6
    assert [r["seq"] for r in log.records()] == [1, 2, 3, 4, 5, 6]


def test_batch_append_continues_the_chain(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, 2)
    head = log.append([AuditEvent("gateway", "tool.call", f"t{i}", "allow") for i in range(50)])
    assert head == Checkpoint(52, head.mac)
    assert log.verify(head).ok


def test_edit_is_caught_at_the_edited_record(tmp_path: Path) -> None:
    log, head = _log(tmp_path)
    lines = _lines(log)
    record = json.loads(lines[2])
    record["target"] = "thing:evil"
    lines[2] = json.dumps(record).encode() + b"\n"
    log.path.write_bytes(b"".join(lines))
    result = log.verify(head)
    assert not result.ok and result.bad_seq == 3 and "altered" in result.message


def test_deletion_is_caught(tmp_path: Path) -> None:
    log, head = _log(tmp_path)
    lines = _lines(log)
    del lines[3]
    log.path.write_bytes(b"".join(lines))
    result = log.verify(head)
    assert not result.ok and result.bad_seq == 4


def test_reordering_is_caught(tmp_path: Path) -> None:
    log, head = _log(tmp_path)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    log.path.write_bytes(b"".join(lines))
    result = log.verify(head)
    assert not result.ok and result.bad_seq == 2


def test_tail_truncation_is_caught_by_the_checkpoint(tmp_path: Path) -> None:
    log, head = _log(tmp_path)
    log.path.write_bytes(b"".join(_lines(log)[:4]))
    log.anchor_path.unlink()
    assert log.verify(None).ok, "without the checkpoint or the anchor a clean cut is invisible"
    result = log.verify(head)
    assert not result.ok and result.bad_seq == 5 and "cut off" in result.message


def test_resequenced_forgery_without_the_key_fails(tmp_path: Path) -> None:
    log, head = _log(tmp_path)
    forged = AuditLog(tmp_path / "forged.jsonl", b"x" * 32)
    for i in range(6):
        forged.append([AuditEvent("user:t", "test.event", f"thing:{i}")])
    log.path.write_bytes(forged.path.read_bytes())
    result = log.verify(head)
    assert not result.ok and result.bad_seq == 1


def test_a_torn_last_line_is_reported_and_blocks_appending(tmp_path: Path) -> None:
    log, head = _log(tmp_path)
    log.path.write_bytes(log.path.read_bytes()[:-15])
    assert not log.verify(head).ok
    with pytest.raises(Exception, match="unreadable record"):
        log.append([AuditEvent("user:t", "x", "y")])


def test_redaction_masks_secret_looking_keys() -> None:
    cleaned = redact({"token": "abc", "nested": {"api_key": "k", "ok": "fine"}, "long": "x" * 500})
    assert cleaned["token"] == "<redacted>" and cleaned["nested"]["api_key"] == "<redacted>"
    assert cleaned["nested"]["ok"] == "fine" and len(cleaned["long"]) < 210


def test_every_console_change_is_recorded_with_actor_and_target(workspace: Workspace) -> None:
    toolboxes.add_local(workspace, "local")
    agents.add_agent(workspace, "bot")
    grants.grant(workspace, "bot", Target.parse("local"))
    agents.rotate_token(workspace, "bot")
    agents.set_enabled(workspace, "bot", False)
    grants.revoke(workspace, "bot", Target.parse("local"))
    agents.remove_agent(workspace, "bot")
    toolboxes.remove_toolbox(workspace, "local")
    records = list(workspace.audit.records())
    assert [r["action"] for r in records] == [
        "vault.init", "toolbox.add", "agent.add", "grant.toolbox", "agent.rotate",
        "agent.disable", "revoke.toolbox", "agent.remove", "toolbox.remove",
    ]
    assert all(r["actor"].startswith("user:") for r in records)
    assert records[3]["target"] == "toolbox:local" and records[3]["agent"] == "bot"
    assert workspace.audit.verify(workspace.audit_checkpoint).ok
    assert workspace.audit_checkpoint == Checkpoint(9, records[-1]["mac"])


def test_no_change_no_record(workspace: Workspace) -> None:
    toolboxes.add_local(workspace, "local")
    agents.add_agent(workspace, "bot")
    grants.grant(workspace, "bot", Target.parse("local"))
    before = len(list(workspace.audit.records()))
    outcome = grants.grant(workspace, "bot", Target.parse("local"))
    assert not outcome.changed
    assert len(list(workspace.audit.records())) == before


# -- any value is recorded safely ------------------------------------------------------


def test_escape_makes_unsafe_characters_visible_text() -> None:
    lone = json.loads('"\\ud800"')
    assert escape(f"a{lone}b\x00c\x1b[2J\u202e\n\U000e0041") == "a\\ud800b\\x00c\\x1b[2J\\u202e\\n\\U000e0041"
    plain = "grüße, 日本, emoji 😀"
    assert escape(plain) is plain or escape(plain) == plain


def test_redact_survives_what_an_agent_can_send() -> None:
    lone = json.loads('"\\udfff"')
    deep: list[Any] = []
    inner = deep
    for _ in range(10_000):
        inner.append([])
        inner = inner[0]
    cleaned = redact({
        lone: lone, 1: "int key", (1, 2): "tuple key", None: "none key", "nan": math.nan, "inf": -math.inf,
        "huge": 10**5000, "big": 2**70, "deep": deep, "many": list(range(1000)), "bytes": b"\x00\xff",
        "Api-Key\x00": "hidden", "long": "x" * 5_000_000,
    })
    text = json.dumps(cleaned, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # no lone surrogate left
    assert cleaned["\\udfff"] == "\\udfff" and cleaned["1"] == "int key" and cleaned["(1, 2)"] == "tuple key"
    assert cleaned["null"] == "none key" and cleaned["nan"] == "NaN" and cleaned["inf"] == "-Infinity"
    assert cleaned["huge"] == "<int of 16610 bits>" and cleaned["big"] == str(2**70)
    assert cleaned["Api-Key\\x00"] == "<redacted>"
    assert len(cleaned["many"]) == 50 and cleaned["many"][-1] == "… 951 more items cut"
    assert len(cleaned["long"]) == 200 and cleaned["long"].endswith("…")
    assert "nested deeper than 12 levels" in text and len(text) < 20_000


def test_keys_that_become_equal_are_all_kept() -> None:
    cleaned = redact({"a\x00": 1, "a\\x00": 2, "k" * 300: 3, "k" * 301: 4})
    assert sorted(cleaned.values()) == [1, 2, 3, 4]
    assert "a\\x00#2" in cleaned


def test_a_detail_stops_at_its_budget_with_a_marker() -> None:
    cleaned = redact({f"k{i}": {f"j{j}": "x" * 199 for j in range(49)} for i in range(49)})
    assert 10_000 < len(json.dumps(cleaned)) < 17_000
    assert cleaned["…"] == "47 more keys cut" and cleaned["k1"]["…"].endswith("more keys cut")
    numbers = redact([[[list(range(49))] * 49] * 49] * 49)  # 5.7 million numbers: every node counts
    assert len(json.dumps(numbers)) < 17_000


def test_a_record_holds_at_most_the_limit_and_says_it_was_cut(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", KEY)
    wide = {f"k{i}": {f"j{j}": "😀" * 199 for j in range(49)} for i in range(49)}
    tags = "\U000e0041" * 1000  # each escaped as 10 characters
    head = log.append([AuditEvent(tags, "tool.call", "t" * 10_000, tags, "a\x00" + tags, wide)])
    line = log.path.read_bytes()
    assert len(line) <= RECORD_LIMIT
    record = json.loads(line)
    assert "cut" in record["detail"] and len(record["detail"]["sha256"]) == 64
    assert record["target"] == "t" * 511 + "…" and record["agent"].startswith("a\\x00\\U000e0041")
    assert log.verify(head).ok


def test_a_poisoned_event_becomes_a_placeholder_and_the_others_are_written(tmp_path: Path) -> None:
    class Bomb(dict):  # type: ignore[type-arg]
        def __len__(self) -> int:
            raise RuntimeError("boom")

    log = AuditLog(tmp_path / "audit.jsonl", KEY)
    events: list[Any] = [
        AuditEvent("agent:a", "tool.call", "t1", "allow"),
        AuditEvent("agent:\x00evil", "tool.call", "t\ud800", "allow", "evil", Bomb(x=1)),
        object(),  # not even an event
        AuditEvent("agent:a", "tool.call", "t3", "deny"),
    ]
    head = log.append(events)
    records = list(log.records())
    assert [r["action"] for r in records] == ["tool.call", "audit.unrecordable", "audit.unrecordable", "tool.call"]
    assert records[1]["actor"] == "agent:\\x00evil" and records[1]["target"] == "t\\ud800"
    assert records[1]["detail"] == {"action": "tool.call", "error": "RuntimeError"}
    assert records[2]["detail"]["error"] == "AttributeError"
    assert head == Checkpoint(4, records[-1]["mac"]) and log.verify(head).ok


def test_a_failed_write_is_taken_back_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one simulated failure: a write that stops half-way with ENOSPC (as a full disk
    does) cannot be made to happen at a chosen byte on a real disk."""
    log, head = _log(tmp_path, 2)
    before = log.path.read_bytes()
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 1000:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(AuditWriteError, match="No space left on device; free space on its disk"):
        log.append([AuditEvent("gateway", "tool.call", f"t{i}", "allow") for i in range(20)])
    assert log.path.read_bytes() == before
    monkeypatch.undo()
    assert log.append([AuditEvent("gateway", "tool.call", "after", "allow")]) == Checkpoint(3, log.head().mac)
    assert log.verify(head).ok


# -- the head anchor -------------------------------------------------------------------


def test_the_anchor_catches_a_cut_after_a_kill(tmp_path: Path) -> None:
    """The vault's checkpoint stays at record 2 (the gateway was killed before moving it);
    the anchor, moved by every append, names record 6."""
    log, _ = _log(tmp_path, 2)
    checkpoint = log.head()
    for i in range(4):
        log.append([AuditEvent("agent:a", "tool.call", f"t{i}", "allow")])
    log.path.write_bytes(b"".join(_lines(log)[:-1]))
    result = log.verify(checkpoint)
    assert not result.ok and result.bad_seq == 6
    assert "its head anchor says 6 records were written (the end was cut off)" in result.message
    with pytest.raises(AuditError, match="ends at record 5 but its head anchor says 6"):
        log.append([AuditEvent("agent:a", "tool.call", "papering over", "allow")])


def test_a_tampered_anchor_is_reported(tmp_path: Path) -> None:
    log, head = _log(tmp_path, 3)
    anchor = json.loads(log.anchor_path.read_text())
    anchor["seq"] = 2
    log.anchor_path.write_text(json.dumps(anchor))
    result = log.verify(head)
    assert not result.ok and "head anchor" in result.message and "does not match its MAC" in result.message
    log.anchor_path.write_text("garbage")
    assert "unreadable" in log.verify(head).message
    with pytest.raises(AuditError, match="move .*audit.head aside to continue"):
        log.append([AuditEvent("user:t", "x", "y")])


def test_a_missing_anchor_falls_back_on_the_checkpoint(tmp_path: Path) -> None:
    log, head = _log(tmp_path, 4)
    log.anchor_path.unlink()
    assert log.verify(head).ok and log.verify(head).anchor_seq is None
    log.path.write_bytes(b"".join(_lines(log)[:3]))
    result = log.verify(head)
    assert not result.ok and "the vault's checkpoint says 4" in result.message


def test_an_older_anchor_put_back_is_bounded_by_the_checkpoint(tmp_path: Path) -> None:
    log, _ = _log(tmp_path, 2)
    old_anchor = log.anchor_path.read_bytes()
    for i in range(3):
        log.append([AuditEvent("agent:a", "tool.call", f"t{i}", "allow")])
    checkpoint = log.head()  # the vault saw record 5
    log.append([AuditEvent("agent:a", "tool.call", "t6", "allow")])
    log.path.write_bytes(b"".join(_lines(log)[:4]))
    log.anchor_path.write_bytes(old_anchor)  # valid: it was written with the key
    result = log.verify(checkpoint)
    assert not result.ok and "the vault's checkpoint says 5" in result.message


def test_verify_reads_the_anchor_before_the_log(tmp_path: Path) -> None:
    """An append between reading the anchor and the log cannot look like a cut."""
    log, _ = _log(tmp_path, 2)
    real = log.read_anchor

    def anchor_then_append() -> tuple[Checkpoint | None, str | None]:
        found = real()
        AuditLog(log.path, KEY).append([AuditEvent("gateway", "tool.call", "meanwhile", "allow")])
        return found

    log.read_anchor = anchor_then_append  # type: ignore[method-assign]
    assert log.verify(None).ok


# -- the gateway's writer --------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real full disk."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=64k tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("needs root and mount to make a real full disk")
    try:
        yield mount
    finally:
        os.system(f"umount {mount}")


def _writer(workspace: Any, log: AuditLog | None = None, **options: Any) -> tuple[AuditWriter, list[str | None]]:
    states: list[str | None] = []
    writer = AuditWriter(workspace, 0.01, 3600, on_state_change=states.append, **options)
    if log is not None:
        writer.log = log
    return writer, states


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_full_disk_sets_failure_keeps_events_and_recovers(workspace: Workspace, tiny_disk: Path) -> None:
    log = AuditLog(tiny_disk / "audit.jsonl", KEY)
    writer, states = _writer(workspace, log)

    async def scenario() -> None:
        writer.record(AuditEvent("agent:a", "tool.call", "before", "allow"))
        assert await writer.flush()
        filler = _fill(tiny_disk)
        for i in range(5):  # each bigger than a page: the log must grow
            writer.record(AuditEvent("agent:a", "tool.call", f"during{i}", "deny", "a", _page_of_detail()))
        assert not await writer.flush()
        assert writer.failure is not None and not writer.healthy
        assert writer.failure.startswith(f"cannot write the audit log {log.path}: No space left on device; free space")
        assert writer.failure.endswith("tool calls are refused until it can")
        assert writer.pending == 5
        assert not await writer.flush()  # still full: retried, still kept
        filler.unlink()
        assert await writer.flush()
        assert writer.healthy and writer.pending == 0

    _run(scenario())
    assert [r["target"] for r in log.records()] == ["before"] + [f"during{i}" for i in range(5)]
    assert len(states) == 2 and states[0] and states[1] is None
    assert log.verify(log.head()).ok


def _page_of_detail() -> dict[str, str]:
    return {f"arg{i}": "v" * 190 for i in range(25)}


def test_an_anchor_that_cannot_be_written_fails_closed_until_it_can(workspace: Workspace, tiny_disk: Path) -> None:
    """The log's last page had room, the anchor's new file had none: the records are
    written (not kept twice), the failure names the anchor, and a probe clears it."""
    log = AuditLog(tiny_disk / "audit.jsonl", KEY)
    writer, states = _writer(workspace, log)

    async def scenario() -> None:
        writer.record(AuditEvent("agent:a", "tool.call", "first", "allow"))
        assert await writer.flush()
        log.anchor_path.unlink()
        filler = _fill(tiny_disk)
        writer.record(AuditEvent("agent:a", "tool.call", "small", "allow"))
        assert not await writer.flush()
        assert writer.pending == 0 and writer.written == 2
        assert (writer.failure or "").startswith("cannot write the audit log's head anchor")
        filler.unlink()
        assert await writer.flush()  # nothing pending: the probe writes the anchor

    _run(scenario())
    assert len(states) == 2 and states[-1] is None
    assert [r["target"] for r in log.records()] == ["first", "small"]
    assert log.read_anchor()[0] == log.head()


def test_past_the_cap_events_are_counted_in_a_gap_record(workspace: Workspace, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "logdir" / "audit.jsonl", KEY)
    log.path.parent.mkdir()
    writer, states = _writer(workspace, log, max_pending=5)

    async def scenario() -> None:
        log.path.mkdir()  # the log replaced by a directory
        for i in range(12):
            writer.record(AuditEvent("agent:a", "tool.call" if i % 2 else "session.open", f"t{i}", "deny", "a"))
        assert not await writer.flush()
        assert "Is a directory; move the directory at that path aside" in (writer.failure or "")
        assert writer.pending == 5 and writer.dropped == 7
        log.path.rmdir()
        assert await writer.flush()

    _run(scenario())
    records = list(log.records())
    assert [r["target"] for r in records[:5]] == [f"t{i}" for i in range(5)]
    gap = records[5]
    assert gap["action"] == "audit.gap" and gap["decision"] == "error" and gap["detail"]["dropped"] == 7
    assert gap["detail"]["actions"] == {"tool.call": 4, "session.open": 3}
    assert "Is a directory" in gap["detail"]["why"]
    assert len(records) == 6 and log.verify(None).ok and states[-1] is None


def test_a_read_only_filesystem_fails_closed(workspace: Workspace, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0 or os.system(f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro}") != 0:
        pytest.skip("needs root and mount for a read-only bind")
    try:
        writer, _ = _writer(workspace, AuditLog(ro / "audit.jsonl", KEY))
        writer.record(AuditEvent("agent:a", "tool.call", "t", "allow"))
        assert not _run(writer.flush())
        assert "Read-only file system; make its filesystem writable" in (writer.failure or "")
        assert writer.pending == 1
    finally:
        os.system(f"umount {ro}")


def test_the_writer_moves_the_checkpoint_and_stops_within_its_bound(workspace: Workspace) -> None:
    writer, states = _writer(workspace, stop_seconds=2.0)

    async def scenario() -> None:
        async with writer:
            writer.record(AuditEvent("agent:a", "tool.call", "t", "allow"))

    _run(scenario())
    assert writer.written == 1 and states == []
    assert workspace.audit_checkpoint == workspace.audit.head()

    # A log that cannot be written: the stop gives up after stop_seconds and says so.
    stuck, _ = _writer(workspace, AuditLog(workspace.paths.data_dir, KEY), stop_seconds=0.3)

    async def stop_while_failing() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with stuck:
            stuck.record(AuditEvent("agent:a", "tool.call", "lost", "allow"))
        return loop.time() - started

    assert _run(stop_while_failing()) < 2.0 and stuck.pending == 1 and stuck.failure


def test_a_cancelled_flush_does_not_write_twice(workspace: Workspace) -> None:
    writer, _ = _writer(workspace)

    async def scenario() -> None:
        for i in range(50):
            writer.record(AuditEvent("agent:a", "tool.call", f"t{i}", "allow"))
        first = asyncio.ensure_future(writer.flush())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0.05)
        assert await writer.flush()

    before = workspace.audit.head()
    _run(scenario())
    targets = [r["target"] for r in workspace.audit.records()][before.seq if before else 0:]
    assert targets == [f"t{i}" for i in range(50)]


def test_a_deleted_log_is_reported_and_a_new_one_starts(tmp_path: Path) -> None:
    """Deleting the whole log is caught by the anchor until something is appended, and
    by the vault's checkpoint after that; appending starts a new log (deliberate restarts
    cannot be told apart here, and refusing would stop the console for good)."""
    log, head = _log(tmp_path, 3)
    log.path.unlink()
    result = log.verify(None)
    assert not result.ok and "its head anchor says 3 records" in result.message
    log.append([AuditEvent("user:t", "test.event", "fresh")])
    assert log.verify(None).ok
    assert "the vault's checkpoint says 3" in log.verify(head).message
