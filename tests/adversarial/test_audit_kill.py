"""A gateway killed with SIGKILL moves no checkpoint on its way out: the head anchor,
replaced by every append, still lets `tbx audit verify` catch a cut of any record that
was flushed. Real processes, a real SIGKILL, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli
from console.paths import resolve_paths
from console.vault import KeySource
from console.workspace import Workspace
from tests.support.sharedkeys import shared_keyring_home

GATEWAY_LIKE = """
import asyncio, sys
from console.audit import AuditEvent
from console.gateway.audit_writer import AuditWriter
from console.workspace import Workspace

async def main() -> None:
    ws = Workspace.open()
    # checkpoint_seconds far away: as if the kill came between two checkpoints
    async with AuditWriter(ws, 0.05, 3600) as writer:
        for i in range(int(sys.argv[1])):
            writer.record(AuditEvent("agent:bot", "tool.call", f"call{i}", "allow", "bot"))
        while writer.pending:
            await asyncio.sleep(0.01)
        print("flushed", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Workspace]:
    with shared_keyring_home(tmp_path):
        paths = resolve_paths()
        paths.ensure()
        yield Workspace.create(paths, KeySource(None))


def _killed_after_flushing(count: int) -> None:
    process = subprocess.Popen([sys.executable, "-c", GATEWAY_LIKE, str(count)], stdout=subprocess.PIPE,
                               env=os.environ.copy(), text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "flushed"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL


def _verify() -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify"], env=dict(os.environ), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


def _cut_last(path: Path, records: int = 1) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-records]))


def test_a_cut_after_a_kill_is_caught_by_the_anchor(installation: Workspace) -> None:
    _killed_after_flushing(5)
    installation.refresh()
    assert installation.audit_checkpoint is not None and installation.audit_checkpoint.seq == 1
    code, out = _verify()
    assert code == 0 and "6 records, chain intact; checkpoint at record 1; head anchor at record 6" in out

    _cut_last(installation.paths.audit_log)
    code, out = _verify()
    assert code == 1 and out.count("\n") == 1
    assert "is broken at record 6: missing — the log ends at record 5 but its head anchor says 6" in out


def test_a_restarted_gateway_does_not_paper_over_the_cut(installation: Workspace) -> None:
    _killed_after_flushing(3)
    _cut_last(installation.paths.audit_log, 2)
    process = subprocess.run([sys.executable, "-c", GATEWAY_LIKE.replace("await asyncio.sleep(3600)", "return")
                              .replace("while writer.pending:", "while writer.pending and writer.healthy:")
                              .replace('print("flushed", flush=True)', "print(writer.failure, flush=True)"), "1"],
                             capture_output=True, text=True, env=os.environ.copy(), timeout=60, check=False)
    assert "ends at record 2 but its head anchor says 4 records were written" in process.stdout
    assert "tool calls are refused until it can" in process.stdout
    code, out = _verify()
    assert code == 1 and "is broken at record 3: missing" in out


def test_the_documented_limit_a_deleted_anchor_leaves_only_the_checkpoint(installation: Workspace) -> None:
    """Whoever cuts the log and deletes the anchor too is caught only below the vault's
    checkpoint: the records after it (at most checkpoint_seconds of them) go unnoticed."""
    _killed_after_flushing(3)
    _cut_last(installation.paths.audit_log)
    installation.audit.anchor_path.unlink()
    code, out = _verify()
    assert code == 0 and "no head anchor" in out
    _cut_last(installation.paths.audit_log, 3)  # now below the checkpoint (record 1, vault.init)
    code, out = _verify()
    assert code == 1 and "the vault's checkpoint says 1 records were written" in out


def test_the_anchor_names_the_key_it_was_made_with(installation: Workspace) -> None:
    _killed_after_flushing(2)
    anchor = installation.audit.anchor_path
    forged = json.loads(anchor.read_text()) | {"seq": 2}
    anchor.write_text(json.dumps(forged))
    code, out = _verify()
    assert code == 1 and "head anchor" in out and "does not match its MAC" in out
