"""A remote toolbox's policy mirror opens with its own key (the gateway secret), fast,
whatever ``TBX_PASSPHRASE`` says (issue 12)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail
from click.testing import CliRunner, Result

from console.cli import cli
from console.errors import VaultLocked, WrongPassphrase
from console.paths import Paths, resolve_paths
from console.remote import policy
from console.remote.policy import MIRRORED, Mirror
from console.vault import KeySource, MachineSecret, Repos, Vault
from console.vault import fileformat as ff
from console.vault import slots
from console.vault.keys import derive_from_passphrase
from console.workspace import Workspace

USER = "the user's own passphrase"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring) -> Paths:  # noqa: ANN001
    monkeypatch.setenv("TBX_HOME", str(tmp_path / "tbx"))
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    monkeypatch.setattr(policy, "_OPENED", {})
    paths = resolve_paths()
    paths.ensure()
    return paths


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts Argon2id derivations (the secret each was asked for, so the test can tell whose)."""
    runs: list[str] = []

    def counted(passphrase: str, params: dict[str, Any]) -> bytes:
        runs.append(passphrase)
        return derive_from_passphrase(passphrase, params)

    monkeypatch.setattr(slots, "derive_from_passphrase", counted)  # where a key is derived
    return runs


def fresh_process() -> None:
    """What a new ``tbx`` command starts with: no mirror opened yet."""
    policy._OPENED.clear()


def tables(agents: int) -> policy.Tables:
    wanted: policy.Tables = {name: {} for name in MIRRORED}
    wanted["agents"] = {f"ag_{i}": {"id": f"ag_{i}", "name": f"agent-{i}"} for i in range(agents)}
    return wanted


def mirror_of(paths: Paths, name: str = "tb_one") -> Mirror:
    return Mirror(paths.state_dir / "remote" / name, secrets.token_urlsafe(32))


def old_mirror(mirror: Mirror) -> Mirror:
    """A mirror as made before machine secrets had their own KDF: Argon2id of the secret."""
    mirror.paths.ensure()
    ws = Workspace.create(mirror.paths, KeySource(passphrase=mirror.passphrase))
    with ws.vault.transaction() as db:
        db.storage.write({**(db.storage.read() or {}), **tables(1)})
    return mirror


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# -- the defect: TBX_PASSPHRASE took the place of the mirror's key -------------------------


def test_mirrors_open_and_write_with_the_users_passphrase_in_the_environment(
    home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    Workspace.create(home, KeySource(passphrase=USER))
    monkeypatch.setenv("TBX_PASSPHRASE", USER)  # how the user scripts tbx
    ws = Workspace.open(home, None)
    assert ws.vault.key_source == "passphrase (Argon2id)"
    new, old = mirror_of(home, "tb_new"), old_mirror(mirror_of(home, "tb_old"))
    fresh_process()
    for mirror in (new, old):
        assert mirror.write(tables(2))
        assert mirror.write(tables(3))
        fresh_process()
        assert set(mirror.open().tables()["agents"]) == {"ag_0", "ag_1", "ag_2"}


# -- the fast key -----------------------------------------------------------------------------


def test_a_new_mirror_opens_in_a_few_ms_without_argon2id(home: Paths, argon2_runs: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBX_PASSPHRASE", USER)
    mirror = mirror_of(home)
    assert mirror.write(tables(1))
    assert mirror.open().vault.header.kdf["name"] == "hkdf-sha256"
    assert mirror.open().vault.key_source == "machine secret (HKDF-SHA256)"
    took = []
    for n in range(5):
        fresh_process()
        started = time.perf_counter()
        assert mirror.write(tables(n + 2))
        took.append(time.perf_counter() - started)
    assert argon2_runs == []
    # Argon2id alone took ~100 ms per mirror; open + write now is file I/O.
    assert sorted(took)[2] < 0.03, took


def test_an_argon2id_mirror_gets_its_fast_key_once(home: Paths, argon2_runs: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBX_PASSPHRASE", USER)
    mirror = old_mirror(mirror_of(home))
    argon2_runs.clear()
    before = Vault.open(mirror.paths.vault, MachineSecret(mirror.passphrase)).header.generation
    assert argon2_runs == [mirror.passphrase], "one run, with the gateway secret, not the user's passphrase"
    header = ff.split(mirror.paths.vault.read_bytes(), mirror.paths.vault)[1]
    assert header.generation == before
    assert header.kdf["name"] == "argon2id" and header.extra["machine_key"]["kdf"]["name"] == "hkdf-sha256"
    for n in range(3):
        fresh_process()
        assert mirror.write(tables(n + 2))
    assert argon2_runs == [mirror.passphrase]
    assert "machine_key" in ff.split(mirror.paths.vault.read_bytes(), mirror.paths.vault)[1].extra


def test_a_migrated_mirror_still_opens_for_a_gateway_of_older_code(home: Paths) -> None:
    """A toolbox's gateway deployed before keeps its code: it reads ``kdf`` and
    ``wrapped_key`` only (Argon2id of its secret), and keeps the slot when it writes."""
    mirror = old_mirror(mirror_of(home))
    mirror.write(tables(2))
    line, header, body = ff.split(mirror.paths.vault.read_bytes(), mirror.paths.vault)
    assert "machine_key" in header.extra
    data_key = ff.unwrap_key(derive_from_passphrase(mirror.passphrase, header.kdf), header.wrapped_key,
                             mirror.paths.vault)
    assert b"ag_1" in ff.open_body(line, header, data_key, body, mirror.paths.vault)
    assert "machine_key" in header.next().fields()


def tbx(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, list(args), env={**os.environ, **env}, catch_exceptions=False)


def test_the_gateways_copy_opens_with_its_secret_in_the_environment(home: Paths) -> None:
    """In its container the gateway is ``tbx gateway serve`` with TBX_HOME at its copy and
    the secret in TBX_PASSPHRASE (console/remote/deploy.py): old, migrated and new mirrors open."""

    def key_source(mirror: Mirror) -> str:
        done = tbx("vault", "info", "--json", env={"TBX_HOME": str(mirror.root), "TBX_PASSPHRASE": mirror.passphrase})
        assert done.exit_code == 0, done.stderr
        refused = tbx("vault", "info", env={"TBX_HOME": str(mirror.root), "TBX_PASSPHRASE": secrets.token_urlsafe(32)})
        assert refused.exit_code == 1 and "does not open vault" in refused.stderr
        return json.loads(done.stdout)["key_source"]

    new, old = mirror_of(home, "tb_new"), old_mirror(mirror_of(home, "tb_old"))
    new.write(tables(1))
    assert key_source(old) == "passphrase (Argon2id)"
    # Opening it there does not rewrite it: only the console's pushes change the policy.
    assert "machine_key" not in ff.split(old.paths.vault.read_bytes(), old.paths.vault)[1].extra
    fresh_process()
    old.write(tables(2))
    assert key_source(old) == key_source(new) == "machine secret (HKDF-SHA256)"


def test_a_migrated_mirror_is_news_to_the_gateway_not_a_rollback(home: Paths, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway on the toolbox commits checkpoints into its copy; the console's next
    push (with the new key slot) is a newer version of the console's, and reloads in place.
    Two machines: each keeps its anchor in its own state directory (no shared keyring)."""
    keyring.set_keyring(fail.Keyring())  # the memory keyring comes back after the test
    mirror = old_mirror(mirror_of(home))
    remote = tmp_path / "remote" / "vault.tbx"
    remote.parent.mkdir()
    shutil.copy2(mirror.paths.vault, remote)
    monkeypatch.setenv("TBX_PASSPHRASE", mirror.passphrase)  # the gateway's container
    gateway = Vault.open(remote, None, anchor_dir=tmp_path / "remote-state")
    for n in range(3):
        with gateway.transaction() as db:
            Repos(db).meta.set("audit", {"checkpoint": n})
    fresh_process()
    assert mirror.write(tables(2))  # opens (adds the slot), then writes
    shutil.copy2(mirror.paths.vault, remote)
    assert gateway.refresh() and "ag_1" in gateway.db.storage.read()["agents"]
    assert "machine_key" in gateway.header.extra and not gateway.rolled_back
    with gateway.transaction() as db:
        Repos(db).meta.set("audit", {"checkpoint": 9})
    assert "machine_key" in gateway.header.extra
    assert Vault.open(remote, None, anchor_dir=tmp_path / "remote-state").key_source.startswith("machine secret")


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["new", "migrated", "old"])
def test_a_wrong_secret_is_refused_and_nothing_changes(home: Paths, kind: str) -> None:
    mirror = mirror_of(home) if kind == "new" else old_mirror(mirror_of(home))
    if kind != "old":
        mirror.write(tables(2))
    before = fingerprint(mirror.paths.vault)
    with pytest.raises(WrongPassphrase, match="does not open vault"):
        Workspace.open(mirror.paths, MachineSecret(secrets.token_urlsafe(32)))
    assert fingerprint(mirror.paths.vault) == before


def test_a_passphrase_never_gets_the_fast_key(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="passphrase"):
        MachineSecret("a passphrase someone chose")
    assert "value" not in repr(MachineSecret(secrets.token_urlsafe(32)))
    user = Workspace.create(home, KeySource(passphrase=USER))
    assert user.vault.header.kdf["name"] == "argon2id" and "machine_key" not in user.vault.header.extra
    # A machine secret does not open a vault whose key is elsewhere.
    with pytest.raises(VaultLocked, match="not locked by a machine secret"):
        Vault.open(_keyring_vault(home), MachineSecret("k" * 43))
    # A machine-secret vault is never unlocked at the passphrase prompt.
    mirror = mirror_of(home)
    mirror.write(tables(1))
    asked: list[str] = []
    with pytest.raises(VaultLocked, match="machine secret"):
        Vault.open(mirror.paths.vault, _asking(asked), anchor_dir=mirror.paths.state_dir)
    assert asked == []
    monkeypatch.setenv("TBX_PASSPHRASE", USER)
    with pytest.raises(WrongPassphrase):
        Vault.open(mirror.paths.vault, _asking(asked), anchor_dir=mirror.paths.state_dir)
    assert asked == []


def _keyring_vault(paths: Paths) -> Path:
    path = paths.data_dir / "keyring.tbx"
    Vault.create(path, KeySource(passphrase=None))
    return path


def _asking(asked: list[str]) -> Callable[[str], str]:
    def ask(reason: str) -> str:
        asked.append(reason)
        return USER

    return ask


def test_rotating_a_migrated_mirror_keeps_only_the_key_it_holds(home: Paths, argon2_runs: list[str]) -> None:
    mirror = old_mirror(mirror_of(home))
    mirror.write(tables(1))  # migrated
    fresh_process()
    ws = mirror.open()  # through the slot
    ws.vault.rotate_data_key()
    assert ws.vault.header.kdf["name"] == "hkdf-sha256" and "machine_key" not in ws.vault.header.extra
    fresh_process()
    argon2_runs.clear()
    assert mirror.write(tables(2)) and argon2_runs == []
