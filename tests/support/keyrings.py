"""Keyring backends for tests, plugged into the real ``keyring`` library.

``MemoryKeyring`` stands in for a desktop Secret Service inside one process;
``FileKeyring`` shares entries between processes (for multi-process tests, selected with
PYTHON_KEYRING_BACKEND); ``HangingKeyring`` never answers, like a locked Secret Service
waiting on a dialog nobody sees.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


class FileKeyring(KeyringBackend):
    priority = 10  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ["TBX_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def _store(self, entries: dict[str, str]) -> None:
        # Atomic, as a keyring service is: processes committing at once read whole files.
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(entries))
        tmp.replace(self.path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._store(entries)

    def delete_password(self, service: str, username: str) -> None:
        entries = self._load()
        entries.pop(f"{service}/{username}", None)
        self._store(entries)


class HangingKeyring(KeyringBackend):
    priority = 10  # type: ignore[assignment]
    release = threading.Event()
    """Set by a test when done, to let the threads it left waiting go."""

    def __init__(self) -> None:
        super().__init__()
        # Each test's keyring hangs afresh: a release left set by an earlier test would
        # make this one answer at once (and the test of the timeout pass or fail by order).
        type(self).release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(30)

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait(30)
