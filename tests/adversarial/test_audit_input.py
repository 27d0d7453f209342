"""What an agent sends ends up in audit records: it is recorded safely, never dropped,
never fatal to the writer, and the log stays readable by `tbx audit list` and `verify`.

The events go through the gateway's own AuditWriter into a real installation's log;
`tbx` reads it back as a user would. A hand-edited log full of hostile lines must be
reported on one line, not crash the reader or drive the terminal.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.audit import AuditEvent, AuditLog, redact
from console.gateway.audit_writer import AuditWriter
from console.workspace import Workspace

LONE = json.loads('"\\ud800"')
"""What json.loads makes of a lone surrogate escape: a valid Python str, not encodable."""
TERMINAL = "\x1b]0;pwned\x07\x1b[2J\x9b31m"
"""An OSC title change, a screen clear and a C1 CSI: what a table must never print raw."""


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"d": [value]}
    return value


def hostile_events() -> list[AuditEvent]:
    return [
        AuditEvent(f"agent:{LONE}", f"tool.call{LONE}", f"tool:s/{LONE}", "deny", f"bot{LONE}", {LONE: LONE}),
        AuditEvent("agent:bot\x00", "tool.call", "tool:s/t\x00\x00", "allow\x00", "bot\x00", {"a\x00b": "c\x00d"}),
        AuditEvent("agent:bot", "tool.call", "x" * 5_000_000, "allow", "bot", {"preview": "y" * 5_000_000}),
        AuditEvent("agent:bot", "tool.call", "tool:s/deep", "allow", "bot", {"arguments": _deep(10_000)}),
        AuditEvent("agent:bot", "tool.call", "tool:s/keys", "allow", "bot",
                   {1: "int", 2.5: "float", None: "none", (1, "x"): "tuple", frozenset({1}): "set"}),
        AuditEvent("agent:bot", "tool.call", "tool:s/numbers", "allow", "bot",
                   {"nan": math.nan, "inf": math.inf, "huge": 10**10_000, "neg": -(2**80), "id": 2**63 - 1}),
        AuditEvent(f"agent:{TERMINAL}", "session.open", TERMINAL, "ok", TERMINAL,
                   {"client": {"name": TERMINAL, "version": "\u202egnp.exe"}, "_meta": {"\u200btoken": "s3cr3t"}}),
        AuditEvent("agent:bot", "tool.call", "tool:s/wide", "allow", "bot",
                   {"many": list(range(100_000)), "map": {f"k{i}": i for i in range(100_000)}}),
    ]


def _flush_through_the_writer(ws: Workspace, events: list[Any]) -> AuditWriter:
    writer = AuditWriter(ws, 0.05, 3600)

    async def scenario() -> None:
        async with writer:
            for event in events:
                writer.record(event)

    asyncio.run(scenario())
    return writer


def test_every_hostile_event_is_recorded_and_the_log_stays_readable(workspace: Workspace, tbx) -> None:  # noqa: ANN001
    before = workspace.audit.head()
    writer = _flush_through_the_writer(workspace, hostile_events())
    assert writer.healthy and writer.written == 8 and writer.pending == 0

    records = list(workspace.audit.records())[before.seq if before else 0:]
    assert len(records) == 8 and all(r["action"] != "audit.unrecordable" for r in records)
    surrogate, nul, big, deep, keys, numbers, terminal, wide = records
    assert surrogate["actor"] == "agent:\\ud800" and surrogate["detail"] == {"\\ud800": "\\ud800"}
    assert nul["target"] == "tool:s/t\\x00\\x00" and nul["detail"] == {"a\\x00b": "c\\x00d"}
    assert big["target"].endswith("…") and len(big["target"]) == 512 and len(big["detail"]["preview"]) == 200
    assert "nested deeper than 12 levels" in json.dumps(deep["detail"])
    assert set(keys["detail"]) == {"1", "2.5", "null", "(1, 'x')", "frozenset({1})"}
    assert numbers["detail"] == {"nan": "NaN", "inf": "Infinity", "huge": "<int of 33220 bits>",
                                 "neg": str(-(2**80)), "id": 2**63 - 1}
    assert terminal["detail"]["_meta"] == {"\\u200btoken": "<redacted>"}
    assert wide["detail"]["many"][-1] == "… 99951 more items cut"
    for line in workspace.paths.audit_log.read_bytes().splitlines():
        assert len(line) <= 64 * 1024
        line.decode("utf-8")  # strict: no surrogate smuggled into the file

    verified = tbx("audit", "verify")
    assert verified.exit_code == 0 and verified.stdout.startswith("ok: ")
    assert "head anchor at record" in verified.stdout
    listed = tbx("audit", "list", "--json", "--limit", "1000")
    assert listed.exit_code == 0
    assert [r["mac"] for r in json.loads(listed.stdout)][-8:] == [r["mac"] for r in records]
    table = tbx("audit", "list", "--limit", "1000")
    assert table.exit_code == 0 and "agent:\\x1b]0;pwned" in table.stdout
    assert not any(char in table.stdout for char in "\x00\x1b\x07\x9b\u202e\u200b")


def test_a_poisoned_event_among_good_ones_becomes_a_placeholder(workspace: Workspace) -> None:
    class Poison(dict):  # type: ignore[type-arg]
        """A detail whose size cannot even be asked: the sanitiser itself fails on it."""

        def __len__(self) -> int:
            raise RecursionError("poison")

    before = workspace.audit.head()
    events: list[Any] = [AuditEvent("agent:bot", "tool.call", f"good{i}", "allow", "bot") for i in range(3)]
    events.insert(1, AuditEvent(f"agent:bot{LONE}", "tool.call", f"bad{LONE}", "allow", "bot", Poison()))
    events.insert(3, "not an event at all")
    writer = _flush_through_the_writer(workspace, events)
    assert writer.healthy and writer.written == 5

    records = list(workspace.audit.records())[before.seq if before else 0:]
    assert [r["target"] for r in records] == ["good0", "bad\\ud800", "good1", "?", "good2"]
    placeholder = records[1]
    assert placeholder["action"] == "audit.unrecordable" and placeholder["decision"] == "error"
    assert placeholder["actor"] == "agent:bot\\ud800"
    assert placeholder["detail"] == {"action": "tool.call", "error": "RecursionError"}
    assert records[3]["detail"]["error"] == "AttributeError"
    assert workspace.audit.verify(workspace.audit_checkpoint).ok


def test_the_writer_keeps_recording_after_any_of_them(workspace: Workspace) -> None:
    """The old failure: one unencodable event put back in the batch failed every later flush."""
    writer = AuditWriter(workspace, 0.01, 3600)

    async def scenario() -> None:
        async with writer:
            for event in hostile_events()[:2]:
                writer.record(event)
                await asyncio.sleep(0.05)
            for i in range(20):
                writer.record(AuditEvent("agent:bot", "tool.call", f"after{i}", "allow", "bot"))
            await asyncio.sleep(0.1)
            assert writer.pending == 0 and writer.healthy

    asyncio.run(scenario())
    assert [r["target"] for r in workspace.audit.records()][-20:] == [f"after{i}" for i in range(20)]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(exclude_categories=())),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(st.characters(exclude_categories=())) | st.integers(), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(detail=json_values, text=st.text(st.characters(exclude_categories=())))
def test_any_value_round_trips_through_its_mac(tmp_path: Path, detail: Any, text: str) -> None:
    """Whatever goes in (any code point, surrogates included), the line written reads back
    to exactly what was MACed: verify recomputes the same MAC."""
    log = AuditLog(tmp_path / "prop.jsonl", b"k" * 32)
    log.path.unlink(missing_ok=True)
    log.anchor_path.unlink(missing_ok=True)
    head = log.append([AuditEvent(text, text, text, text, text, {"v": detail})])
    assert log.verify(head).ok
    (record,) = log.records()
    assert record["detail"] == {"v": redact(detail, 1)} or record["detail"].get("cut")


def test_a_hand_edited_log_of_hostile_lines_is_reported_on_one_line(workspace: Workspace, tbx) -> None:  # noqa: ANN001
    log = workspace.paths.audit_log
    good = log.read_bytes()
    prev = json.loads(good.splitlines()[-1])["mac"].encode()
    hostile = [
        b'{"seq":2,"ts":"\\ud800","actor":"\\u001b[2J","action":"x","target":"\\ud800","decision":"ok",'
        b'"agent":null,"detail":{"\\udfff":NaN},"prev":"' + prev + b'","mac":"\xc3\xa9"}',
        b'{"seq":' + b"9" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe not utf-8 \x00",
        b'{"seq":"\x1b]0;pwned\x07","prev":"x","mac":"y"}',
    ]
    for line in hostile:
        log.write_bytes(good + line + b"\n")
        verified = tbx("audit", "verify")
        assert verified.exit_code == 1, line[:60]
        assert verified.stderr.count("\n") == 1 and "is broken at record 2:" in verified.stderr
        assert "\x1b" not in verified.stderr and "Traceback" not in verified.stderr
        if line is hostile[0]:
            assert "altered: its MAC does not match" in verified.stderr
        listed = tbx("audit", "list", "--json")
        assert listed.exit_code == 0 and json.loads(listed.stdout)
        table = tbx("audit", "list")
        assert table.exit_code == 0 and "\x1b" not in table.stdout
