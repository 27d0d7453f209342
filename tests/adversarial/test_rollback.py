"""Putting an old vault back does not undo a revoke, not even for a running gateway.

The attacker of the files copies an older vault.tbx (from before a revoke) over the
current one. The gateway keeps enforcing the last good policy and says why; every tbx
command refuses the old file until the owner restores on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from console.services import grants
from console.services.grants import Target
from tests.gateway.conftest import Stack, subprocess_env
from tests.support.rawmcp import RawAgent

pytestmark = pytest.mark.docker


def put_back(source, vault) -> None:  # noqa: ANN001
    """Replace the vault file the way a restore from a backup tool would."""
    staged = vault.with_name("vault.staged")
    shutil.copy2(source, staged)
    os.replace(staged, vault)


def test_an_old_vault_put_back_does_not_undo_a_revoke(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time")
    vault = stack.paths.vault
    before_revoke = vault.with_name("vault.before-revoke")
    shutil.copy2(vault, before_revoke)
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert "result" in raw.call("time__get_current_time", {"timezone": "UTC"})
        grants.revoke(stack.ws, name, Target.parse("local"))
        assert "error" in raw.call("time__get_current_time", {"timezone": "UTC"})
        newest = vault.with_name("vault.newest")
        shutil.copy2(vault, newest)
        try:
            put_back(before_revoke, vault)
            time.sleep(1.0)  # several polls of the gateway
            assert "error" in raw.call("time__get_current_time", {"timezone": "UTC"}), "the revoke was undone"
            problems = stack.gateway.call(lambda gw: gw.problems())
            assert any(p.startswith("policy:") and "older than" in p for p in problems), problems
            refused = subprocess.run([sys.executable, "-m", "console", "access", name], env=subprocess_env(),
                                     capture_output=True, text=True, timeout=60)
            assert refused.returncode == 1 and "older than the last version" in refused.stderr
            assert "Traceback" not in refused.stderr
        finally:
            put_back(newest, vault)
        deadline = time.monotonic() + 5
        while stack.gateway.call(lambda gw: gw.problems()):
            assert time.monotonic() < deadline, "the gateway did not take the newest vault back"
            time.sleep(0.1)
        assert "error" in raw.call("time__get_current_time", {"timezone": "UTC"})
