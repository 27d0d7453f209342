from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from console.tui.backend import Backend
from tests.support.keyrings import MemoryKeyring
from tests.support.tui import fresh_backend, seeded_backend


@pytest.fixture
def test_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def seeded(tmp_path: Path, test_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    return seeded_backend(tmp_path / "tbx")


@pytest.fixture
def first_run(tmp_path: Path, test_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    return fresh_backend(tmp_path / "tbx")
