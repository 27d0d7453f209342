"""Drawing a screen imports nothing it only needs to act: a key pressed just after the
first paint meets a screen not made yet, and waits for its imports on the loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest

from console.tui.backend import Backend
from console.tui.screens import SCREENS
from tests.support.keyrings import FileKeyring
from tests.support import tui as support

SCREEN_MODULES = [spec.target.partition(":")[0] for spec in SCREENS]

ACTING_ONLY = {
    "authlib": "the OAuth client, for a sign-in, refresh or revoke (a quarter of a second with requests)",
    "requests": "the OAuth client's HTTP",
    "httpx2": "Try as an agent, through the gateway",
}
"""Libraries a screen uses only once the user acts: imported by the worker that acts."""


def loaded_after(*modules: str, then: str = "", env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """What importing ``modules`` (and running ``then``) in a fresh interpreter loaded:
    top-level packages, and the console's own modules."""
    probe = ("import importlib, json, sys\n"
             f"for name in {modules!r}: importlib.import_module(name)\n"
             f"{then}\n"
             "print(json.dumps({'top': sorted({m.split('.')[0] for m in sys.modules}), "
             "'console': sorted(m for m in sys.modules if m.startswith('console.'))}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout)


def test_the_console_and_its_screens_import_no_library_they_only_act_with() -> None:
    loaded = loaded_after("console.tui.app", *SCREEN_MODULES)
    assert sorted(set(loaded["top"]) & set(ACTING_ONLY)) == []


def test_the_approve_dialog_does_not_compile_the_scanner() -> None:
    # The scanner compiles its rules on import (tens of ms on the key that opens the
    # dialog); the dialog only needs to know which kinds of finding to ask about.
    loaded = loaded_after("console.tui.app", "console.tui.screens.tools", "console.tui.modals.approve")
    assert "console.trust.scan" not in loaded["console"]



def test_opening_the_vault_imports_neither_the_audit_log_nor_the_policy(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The first paint waits for the vault to open; the audit log (the largest module on
    # that path) and the policy compiler come with their first use.
    home = tmp_path / "home"
    monkeypatch.setenv("TBX_TEST_KEYRING_FILE", str(tmp_path / "keyring.json"))
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        Backend(support.test_paths(home)).create_vault(None)
    finally:
        keyring.set_keyring(previous)
    opening = ("import os; from pathlib import Path; from console.paths import Paths; "
               "from console.tui.backend import Backend; home = Path(os.environ['PROBE_HOME']); "
               "Backend(Paths(home, home / 'config', home / 'state', home / 'cache')).open_vault()")
    env = {**os.environ, "PROBE_HOME": str(home), "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.FileKeyring"}
    loaded = loaded_after("console.tui.app", then=opening, env=env)
    assert {"console.audit", "console.policy"} & set(loaded["console"]) == set()
