"""Transactions, other writers, crashes, re-keying and the keyring."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail, null

from console.errors import KeyringUnavailable, VaultRolledBack, WrongPassphrase
from console.model import Agent
from console.vault import KeySource, MachineSecret, Repos, Vault
from console.vault.keys import KeyringKeys, keyring_status
from tests.conftest import CANARY
from tests.support.keyrings import HangingKeyring, MemoryKeyring

REPO = Path(__file__).resolve().parents[1]


def _agent(name: str) -> Agent:
    return Agent(name=name, token_hash="0" * 64)


def test_reads_need_no_transaction_but_writes_do(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    vault = Vault.create(tmp_path / "v.tbx", KeySource(None))
    with pytest.raises(RuntimeError, match="transaction"):
        Repos(vault.db).agents.put(_agent("a"))


def test_failed_transaction_writes_nothing_and_restores_memory(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    path = tmp_path / "v.tbx"
    vault = Vault.create(path, KeySource(None))
    with vault.transaction() as db:
        Repos(db).agents.put(_agent("kept"))
    before = path.read_bytes()
    with pytest.raises(ValueError), vault.transaction() as db:
        Repos(db).agents.put(_agent("lost"))
        raise ValueError("boom")
    assert path.read_bytes() == before
    assert [a.name for a in Repos(vault.db).agents] == ["kept"]


def test_second_writer_builds_on_the_first(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    path = tmp_path / "v.tbx"
    one = Vault.create(path, KeySource(None))
    two = Vault.open(path)
    with one.transaction() as db:
        Repos(db).agents.put(_agent("from-one"))
    with two.transaction() as db:
        Repos(db).agents.put(_agent("from-two"))
    assert one.refresh()
    names = sorted(a.name for a in Repos(one.db).agents)
    assert names == ["from-one", "from-two"]
    assert not one.refresh()


def test_threads_of_one_process_take_turns(tbx_home, memory_keyring: MemoryKeyring) -> None:  # noqa: ANN001
    """TUI workers change the vault from threads: every change and its audit record land."""
    import threading

    from console.workspace import Workspace

    ws = Workspace.create(tbx_home, KeySource(None))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(i: int) -> None:
        start.wait()
        try:
            for j in range(25):
                with ws.change() as change:
                    change.repos.agents.put(_agent(f"t{i}-{j}"))
                    change.record("agent.add", f"agent:t{i}-{j}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reopened = Workspace.open(tbx_home)
    assert len(reopened.repos.agents.all()) == 200
    assert len(list(reopened.audit.records())) == 201
    assert reopened.audit.verify(reopened.audit_checkpoint).ok
    assert reopened.audit_checkpoint is not None and reopened.audit_checkpoint.seq == 201


def test_backup_holds_the_previous_version(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    path = tmp_path / "v.tbx"
    vault = Vault.create(path, KeySource(None))
    with vault.transaction() as db:
        Repos(db).agents.put(_agent("a"))
    with vault.transaction() as db:
        Repos(db).agents.put(_agent("b"))
    with pytest.raises(VaultRolledBack):
        Vault.open(path.with_name("v.tbx.bak"))
    old = Vault.open(path.with_name("v.tbx.bak"), allow_older=True)
    assert [a.name for a in Repos(old.db).agents] == ["a"]


def test_passphrase_change_rewraps_and_rotation_reencrypts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    path = tmp_path / "v.tbx"
    vault = Vault.create(path, KeySource(passphrase="first passphrase"))
    with vault.transaction() as db:
        Repos(db).agents.put(_agent("a"))
    key_id = vault.header.key_id
    vault.change_key_source(KeySource(passphrase="second passphrase"))
    assert vault.header.key_id == key_id
    with pytest.raises(WrongPassphrase):
        Vault.open(path, lambda _r: "first passphrase")
    reopened = Vault.open(path, lambda _r: "second passphrase")
    reopened.rotate_data_key()
    assert reopened.header.key_id != key_id
    final = Vault.open(path, lambda _r: "second passphrase")
    assert [a.name for a in Repos(final.db).agents] == ["a"]
    # The first handle notices the rotation on its next change and keeps working.
    with vault.transaction() as db:
        Repos(db).agents.put(_agent("b"))
    assert len(Repos(Vault.open(path, lambda _r: "second passphrase").db).agents.all()) == 2


def test_a_passphrase_change_drops_the_machine_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second wrap of a policy mirror from before (issue 12) would still open the
    vault after its key changed: a change of key leaves only the new one."""
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    secret = MachineSecret(secrets.token_urlsafe(32))
    path = tmp_path / "v.tbx"
    Vault.create(path, KeySource(passphrase=secret.value))
    vault = Vault.open(path, secret)
    assert "machine_key" in vault.header.extra
    vault.change_key_source(KeySource(passphrase="a new passphrase"))
    assert "machine_key" not in vault.header.extra
    with pytest.raises(WrongPassphrase):
        Vault.open(path, secret)
    assert Vault.open(path, lambda _r: "a new passphrase").key_source == "passphrase (Argon2id)"


def test_moving_the_key_between_keyring_and_passphrase(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    path = tmp_path / "v.tbx"
    vault = Vault.create(path, KeySource(None))

    def keys() -> list[str]:  # the generation record stays, whatever the key source
        return [account for _service, account in memory_keyring.entries if account.startswith("vault-")]

    assert len(keys()) == 1
    vault.change_key_source(KeySource(passphrase=CANARY))
    assert keys() == [], "the old keyring entry is removed"
    assert Vault.open(path, lambda _r: CANARY).key_source.startswith("passphrase")
    vault.change_key_source(KeySource(None))
    assert Vault.open(path).key_source == "OS keyring"


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()])
def test_unusable_keyrings_do_not_count(backend: keyring.backend.KeyringBackend) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        assert not keyring_status(1.0).usable
        with pytest.raises(KeyringUnavailable, match="passphrase"):
            KeyringKeys(1.0).create("x")
    finally:
        keyring.set_keyring(previous)


def test_plaintext_keyring_does_not_count() -> None:
    from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-not-found]

    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        assert not keyring_status(1.0).usable
    finally:
        keyring.set_keyring(previous)


def test_hanging_keyring_times_out(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(HangingKeyring())
    try:
        started = time.monotonic()
        with pytest.raises(KeyringUnavailable, match="did not answer"):
            Vault.create(tmp_path / "v.tbx", KeySource(None), keyring_timeout=0.3)
        assert time.monotonic() - started < 3
        assert not (tmp_path / "v.tbx").exists()
    finally:
        HangingKeyring.release.set()
        keyring.set_keyring(previous)


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TBX_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(REPO),
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.FileKeyring",
        "TBX_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
    }


def _tbx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_concurrent_processes_all_land(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _tbx(env, "init").returncode == 0
    assert _tbx(env, "toolbox", "add", "local", "--local").returncode == 0
    names = [f"agent-{i}" for i in range(8)]
    procs = [subprocess.Popen([sys.executable, "-m", "console", "agent", "add", n], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in names]
    assert all(p.wait(60) == 0 for p in procs)
    procs = [subprocess.Popen([sys.executable, "-m", "console", "grant", n, "local"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in names]
    assert all(p.wait(60) == 0 for p in procs)
    listing = _tbx(env, "agent", "list", "--json")
    import json

    agents = json.loads(listing.stdout)
    assert sorted(a["name"] for a in agents) == names
    assert all(a["toolbox_grants"] == 1 for a in agents)
    verify = _tbx(env, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert "18 records" in verify.stdout  # init, toolbox, 8 agents, 8 grants: nothing lost


WRITER = """
import sys
from pathlib import Path
from console.model import Agent
from console.vault import Repos, Vault
vault = Vault.open(Path(sys.argv[1]))
i = 0
while True:
    with vault.transaction() as db:
        Repos(db).agents.put(Agent(name=f"a{i}", token_hash="0" * 64))
    print(i, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_killed_mid_write_leaves_a_readable_vault(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = tmp_path / "v.tbx"
    os.environ["TBX_TEST_KEYRING_FILE"] = env["TBX_TEST_KEYRING_FILE"]
    try:
        from tests.support.keyrings import FileKeyring

        previous = keyring.get_keyring()
        keyring.set_keyring(FileKeyring())
        vault = Vault.create(path, KeySource(None))
        with vault.transaction() as db:
            Repos(db).meta.set("padding", {"x": "y" * 200_000})  # make writes take a while
        for round_ in range(6):
            proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            assert proc.stdout.readline(), proc.stderr.read() if proc.stderr else ""  # a commit landed
            time.sleep(0.01 * round_)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            reopened = Vault.open(path)
            count = len(Repos(reopened.db).agents.all())
            assert count >= round_ + 1
        keyring.set_keyring(previous)
    finally:
        os.environ.pop("TBX_TEST_KEYRING_FILE", None)
