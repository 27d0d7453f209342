"""An installation whose key other processes can read: tests that start `tbx` subprocesses
(the gateway, `tbx connect`, the console's gateway) need the same vault key as the test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keyring

from tests.support.keyrings import FileKeyring

REPO = Path(__file__).resolve().parents[2]
_NAMES = ("TBX_HOME", "TBX_PASSPHRASE", "TBX_TEST_KEYRING_FILE", "PYTHON_KEYRING_BACKEND", "PYTHONPATH")


@contextmanager
def shared_keyring_home(root: Path) -> Iterator[Path]:
    """TBX_HOME under ``root`` and a keyring file both this process and `tbx` subprocesses
    use; the environment and keyring are restored afterwards. Yields the home."""
    saved = {name: os.environ.get(name) for name in _NAMES}
    home = root / "home"
    os.environ.update({"TBX_HOME": str(home), "TBX_TEST_KEYRING_FILE": str(root / "keyring.json"),
                       "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.FileKeyring", "PYTHONPATH": str(REPO)})
    os.environ.pop("TBX_PASSPHRASE", None)
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        yield home
    finally:
        keyring.set_keyring(previous)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
