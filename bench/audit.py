"""Audit log benchmark: what one append costs before and after issue 11, in one run.

Three ways of appending the same gateway decisions, side by side, on the same disk:

- before: the record built as before (no sanitising, unbounded ``redact``), no anchor;
- sanitised: every value made safe and bounded (``event_body``), no anchor;
- anchored: sanitised, and the head anchor checked and replaced (temp file, fsync,
  rename) — what ``AuditLog.append`` does now.

Batches of 1 record (a console change) and 100 records (a busy gateway flush), rounds
interleaved so drift affects all alike. Every append fsyncs the log, so the disk sets
the floor. Also: the cost of sanitising one hostile event, and of ``AuditWriter.record``
on the event loop while healthy and while failing (events are compacted then).

Run: .venv/bin/python bench/audit.py [directory on the disk to measure]
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.audit import AuditEvent, AuditLog, Checkpoint, event_body  # noqa: E402
from console.audit.record import _SECRETISH  # noqa: E402
from console.gateway.audit_writer import AuditWriter  # noqa: E402

KEY = b"k" * 32
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "60"))


def old_redact(value: Any) -> Any:
    """``redact`` as it was before issue 11, verbatim (for the 'before' line)."""
    if isinstance(value, dict):
        return {str(k): "<redacted>" if _SECRETISH.search(str(k)) else old_redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [old_redact(v) for v in value[:20]]
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value


class Before(AuditLog):
    def _body(self, event: AuditEvent) -> dict[str, Any]:
        return {"actor": event.actor, "action": event.action, "target": event.target, "decision": event.decision,
                "agent": event.agent, "detail": old_redact(event.detail)}

    def _check_anchor(self, seq: int, mac: str) -> None:
        pass

    def _write_anchor(self, head: Checkpoint) -> None:
        pass


class Sanitised(AuditLog):
    def _check_anchor(self, seq: int, mac: str) -> None:
        pass

    def _write_anchor(self, head: Checkpoint) -> None:
        pass


def decision(i: int) -> AuditEvent:
    arguments = json.dumps({"timezone": "Europe/Paris", "n": i})
    return AuditEvent("agent:bench", "tool.call", "tool:local/time/get_current_time", "allow", "bench", {
        "arguments": {"sha256": hashlib.sha256(arguments.encode()).hexdigest(), "preview": arguments},
        "latency_ms": 2.4, "client": {"name": "bench-client", "version": "1.0"},
    })


def us(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9)]
    return f"{statistics.median(samples) * 1e6:8.0f} µs (p90 {p90 * 1e6:6.0f})"


def appends(root: Path) -> None:
    kinds = {"before": Before, "sanitised": Sanitised, "anchored": AuditLog}
    logs = {name: cls(root / f"{name}.jsonl", KEY) for name, cls in kinds.items()}
    batches = {size: [decision(i) for i in range(size)] for size in (1, 100)}
    samples: dict[tuple[str, int], list[float]] = {(name, size): [] for name in kinds for size in batches}
    for _ in range(ROUNDS):
        for size, events in batches.items():
            for name, log in logs.items():
                started = time.perf_counter()
                log.append(events)
                samples[(name, size)].append(time.perf_counter() - started)
    print(f"append, median per batch over {ROUNDS} rounds ({root}):")
    for size in batches:
        base = statistics.median(samples[("before", size)])
        for name in kinds:
            median = statistics.median(samples[(name, size)])
            extra = "" if name == "before" else f"  {(median - base) * 1e6:+7.0f} µs vs before"
            print(f"  {size:3d} record{'s' if size > 1 else ' '}  {name:10s} {us(samples[(name, size)])}"
                  f"  {median / size * 1e6:7.1f} µs/record{extra}")
    for name, log in logs.items():
        if name != "before":
            assert log.verify(None).ok, name


def sanitising() -> None:
    deep: Any = "x"
    for _ in range(10_000):
        deep = [deep]
    hostile = AuditEvent("agent:\ud800", "tool.call", "t\x00" * 2_500_000, "allow", "a",
                         {"preview": "y" * 5_000_000, "deep": deep, "many": list(range(100_000))})
    for label, event in (("an ordinary decision", decision(0)), ("a hostile event (5 MB, 10,000 deep)", hostile)):
        runs = 200 if label.startswith("an") else 20
        started = time.perf_counter()
        for _ in range(runs):
            event_body(event)
        print(f"  sanitising {label:38s} {(time.perf_counter() - started) / runs * 1e6:8.1f} µs")


class _NoVault:
    def __init__(self, root: Path) -> None:
        self.audit = AuditLog(root / "writer.jsonl", KEY)


def recording(root: Path) -> None:
    writer = AuditWriter(_NoVault(root), 0.2, 2.0, max_pending=10**9, max_pending_bytes=10**12)  # type: ignore[arg-type]
    events = [decision(i) for i in range(20_000)]
    for state in ("healthy", "failing"):
        writer._failure = None if state == "healthy" else "bench"  # noqa: SLF001 - the state only, no callbacks
        started = time.perf_counter()
        for event in events:
            writer.record(event)
        print(f"  AuditWriter.record while {state:8s}       {(time.perf_counter() - started) / len(events) * 1e6:8.2f} µs")


def main() -> None:
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        appends(Path(tmp))
        print("on the event loop / per event:")
        sanitising()
        recording(Path(tmp))


if __name__ == "__main__":
    main()
