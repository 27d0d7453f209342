"""The audit chain catches edits, deletions, reordering and truncation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.audit import AuditEvent, AuditLog, Checkpoint, redact
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
    assert log.verify(None).ok, "without the checkpoint a clean cut is invisible"
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
