from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner
from keyring.backends import fail

from console.cli import cli
from console.paths import Paths, resolve_paths
from console.vault import KeySource
from console.workspace import Workspace
from tests.support.keyrings import MemoryKeyring

# Every test shares the test environment's base image and one warm image cache, whatever
# throwaway TBX_HOME it uses (scripts/testenv.sh builds the image; the cache fills once).
_REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(_REPO / ".testenv" / "cache"))

# The process's keyring, chosen before anything asks: left to itself, keyring picks the
# highest-priority backend among every class loaded, which once the tests are collected is
# a test's hanging one (tests/test_vault_rollback.py's _Hanging, priority 10). Every vault
# committed without a keyring of its own then waited out the keyring timeout (5 s) for its
# rollback anchor. Tests that want a keyring set one (memory_keyring and others).
keyring.set_keyring(fail.Keyring())

CANARY = "canary-7f3a9c1e-DO-NOT-LEAK-5b2d"
"""Planted as a passphrase or secret; no log, record or output may ever contain it."""


@pytest.fixture
def tbx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    home = tmp_path / "tbx"
    monkeypatch.setenv("TBX_HOME", str(home))
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    monkeypatch.delenv("TBX_NEW_PASSPHRASE", raising=False)
    paths = resolve_paths()
    paths.ensure()
    return paths


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def workspace(tbx_home: Paths, memory_keyring: MemoryKeyring) -> Workspace:
    """A fresh installation whose key sits in the (test) OS keyring: no Argon2 cost."""
    return Workspace.create(tbx_home, KeySource(passphrase=None))


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def tbx(tbx_home: Paths):  # noqa: ANN201
    """Run ``tbx`` in-process with the test's TBX_HOME and environment."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Run:
        result = runner.invoke(cli, list(args), env={**os.environ, **(env or {})}, input=input, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def browser():  # noqa: ANN201
    """Headless Chromium as the user's browser: call it with a URL to open it."""
    from tests.support.browser import HeadlessChromium, require_chromium

    require_chromium()
    with HeadlessChromium() as chromium:
        yield chromium


@pytest.fixture(scope="session")
def docker_engine():  # noqa: ANN201
    """The Docker engine 'make test' started. Under CI its absence fails the run."""
    from console.runtime.engine import probe_engine

    status = probe_engine()
    if not status.reachable:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine: {status.describe()}")
        pytest.skip(status.describe())
    return status
