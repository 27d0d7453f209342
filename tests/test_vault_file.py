"""The vault file under bad input: each case a clear error, and the file left untouched."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from console.errors import VaultCorrupt, VaultLocked, VaultMissing, VaultTooNew, WrongPassphrase
from console.model import Agent
from console.vault import KeySource, MachineSecret, Repos, Vault
from console.vault.fileformat import split
from console.vault.store import restore_backup
from tests.conftest import CANARY


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _add_agent(vault: Vault, name: str) -> None:
    with vault.transaction() as db:
        Repos(db).agents.put(Agent(name=name, token_hash="0" * 64))


@pytest.fixture
def locked_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A passphrase vault with two versions written, so a backup exists."""
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    path = tmp_path / "vault.tbx"
    vault = Vault.create(path, KeySource(passphrase=CANARY))
    _add_agent(vault, "first")
    _add_agent(vault, "second")
    return path


def test_round_trip_with_passphrase(locked_vault: Path) -> None:
    vault = Vault.open(locked_vault, lambda _reason: CANARY)
    assert sorted(a.name for a in Repos(vault.db).agents) == ["first", "second"]
    assert CANARY.encode() not in locked_vault.read_bytes()
    assert b"first" not in locked_vault.read_bytes()


def test_wrong_passphrase_is_clear_and_leaves_the_file_untouched(locked_vault: Path) -> None:
    before = _fingerprint(locked_vault)
    with pytest.raises(WrongPassphrase) as err:
        Vault.open(locked_vault, lambda _reason: "not the passphrase")
    assert "wrong passphrase" in str(err.value)
    assert "\n" not in str(err.value)
    assert _fingerprint(locked_vault) == before


def test_env_passphrase_is_used(locked_vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBX_PASSPHRASE", CANARY)
    vault = Vault.open(locked_vault, None)
    assert len(Repos(vault.db).agents.all()) == 2


def test_the_prompt_is_asked_only_when_the_env_passphrase_is_unset(locked_vault: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def ask(reason: str) -> str:
        asked.append(reason)
        return CANARY

    monkeypatch.setenv("TBX_PASSPHRASE", CANARY)
    assert len(Repos(Vault.open(locked_vault, ask).db).agents.all()) == 2
    assert asked == []
    monkeypatch.setenv("TBX_PASSPHRASE", "not the passphrase")
    with pytest.raises(WrongPassphrase):
        Vault.open(locked_vault, ask)
    assert asked == [], "a wrong TBX_PASSPHRASE fails; it does not fall back to asking"
    monkeypatch.delenv("TBX_PASSPHRASE")
    assert len(Repos(Vault.open(locked_vault, ask).db).agents.all()) == 2
    assert asked == [f"Passphrase for vault {locked_vault}"]


def test_a_machine_secret_is_used_whatever_the_env_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = MachineSecret(secrets.token_urlsafe(32))
    path = tmp_path / "mirror.tbx"
    monkeypatch.setenv("TBX_PASSPHRASE", CANARY)
    _add_agent(Vault.create(path, secret), "first")
    assert Vault.open(path, secret).header.kdf["name"] == "hkdf-sha256"
    assert CANARY.encode() not in path.read_bytes() and secret.value.encode() not in path.read_bytes()
    with pytest.raises(WrongPassphrase, match="does not open vault"):
        Vault.open(path, MachineSecret(secrets.token_urlsafe(32)))


def test_no_passphrase_source_says_how_to_give_one(locked_vault: Path) -> None:
    with pytest.raises(VaultLocked, match="TBX_PASSPHRASE"):
        Vault.open(locked_vault, None)


def test_missing_vault_says_to_init(tmp_path: Path) -> None:
    with pytest.raises(VaultMissing, match="tbx init"):
        Vault.open(tmp_path / "nope.tbx", None)


@pytest.mark.parametrize("cut", [1, 100, 0.5])
def test_truncated_vault_names_the_backup_and_changes_nothing(locked_vault: Path, cut: float) -> None:
    blob = locked_vault.read_bytes()
    keep = int(len(blob) * cut) if isinstance(cut, float) else len(blob) - cut
    locked_vault.write_bytes(blob[:keep])
    before = _fingerprint(locked_vault)
    backup_before = _fingerprint(locked_vault.with_name("vault.tbx.bak"))
    with pytest.raises(VaultCorrupt) as err:
        Vault.open(locked_vault, lambda _r: CANARY)
    message = str(err.value)
    assert "vault.tbx.bak" in message and "tbx vault restore" in message
    assert _fingerprint(locked_vault) == before
    assert _fingerprint(locked_vault.with_name("vault.tbx.bak")) == backup_before


def _flip(path: Path, offset: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))


def test_bit_flip_in_body_is_damage_not_a_wrong_passphrase(locked_vault: Path) -> None:
    _flip(locked_vault, len(locked_vault.read_bytes()) - 20)
    with pytest.raises(VaultCorrupt, match="fail authentication"):
        Vault.open(locked_vault, lambda _r: CANARY)


def test_bit_flip_in_header_is_damage_not_a_wrong_passphrase(locked_vault: Path) -> None:
    blob = locked_vault.read_bytes()
    offset = blob.index(b'"wrapped_key":"') + 20
    _flip(locked_vault, offset)
    with pytest.raises(VaultCorrupt, match="header"):
        Vault.open(locked_vault, lambda _r: CANARY)


def test_every_single_bit_flip_fails_closed(locked_vault: Path) -> None:
    original = locked_vault.read_bytes()
    for offset in range(0, len(original), max(1, len(original) // 64)):
        _flip(locked_vault, offset)
        with pytest.raises((VaultCorrupt, VaultTooNew, WrongPassphrase)):
            Vault.open(locked_vault, lambda _r: CANARY)
        locked_vault.write_bytes(original)


def test_newer_format_says_to_upgrade(locked_vault: Path) -> None:
    line, _header, body = locked_vault.read_bytes().partition(b"\n")[0], None, locked_vault.read_bytes().partition(b"\n")[2]
    fields = json.loads(line)
    fields["format"] = 2
    locked_vault.write_bytes(json.dumps(fields).encode() + b"\n" + body)
    with pytest.raises(VaultTooNew, match="upgrade"):
        Vault.open(locked_vault, lambda _r: CANARY)


def test_body_from_another_vault_fails_closed(tmp_path: Path, locked_vault: Path) -> None:
    other = tmp_path / "other.tbx"
    Vault.create(other, KeySource(passphrase=CANARY))
    line, _h, _body = split(locked_vault.read_bytes(), locked_vault)
    _l, _h2, foreign = split(other.read_bytes(), other)
    locked_vault.write_bytes(line + b"\n" + foreign)
    with pytest.raises(VaultCorrupt):
        Vault.open(locked_vault, lambda _r: CANARY)


def test_body_from_an_older_version_fails_closed(locked_vault: Path) -> None:
    """Same key, older contents: the header's fresh nonce binds the body to this write."""
    backup = locked_vault.with_name("vault.tbx.bak")
    line, _h, _body = split(locked_vault.read_bytes(), locked_vault)
    _l, _h2, older = split(backup.read_bytes(), backup)
    locked_vault.write_bytes(line + b"\n" + older)
    with pytest.raises(VaultCorrupt):
        Vault.open(locked_vault, lambda _r: CANARY)


def test_weakened_kdf_parameters_are_refused(locked_vault: Path) -> None:
    line, _sep, body = locked_vault.read_bytes().partition(b"\n")
    fields = json.loads(line)
    fields.pop("check")
    fields["kdf"]["memory_kib"] = 8
    import hashlib

    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    fields["check"] = hashlib.sha256(canonical).hexdigest()
    locked_vault.write_bytes(json.dumps(fields).encode() + b"\n" + body)
    with pytest.raises(VaultCorrupt, match="weaker"):
        Vault.open(locked_vault, lambda _r: CANARY)


def test_not_a_vault(tmp_path: Path) -> None:
    path = tmp_path / "v.tbx"
    path.write_bytes(b"hello\nworld")
    with pytest.raises(VaultCorrupt, match="not a Toolbox Console vault"):
        Vault.open(path, None)


def test_restore_keeps_the_damaged_file_and_brings_back_the_previous_version(locked_vault: Path) -> None:
    _flip(locked_vault, len(locked_vault.read_bytes()) - 5)
    damaged = locked_vault.read_bytes()
    kept = restore_backup(locked_vault, lambda _r: CANARY)
    assert kept is not None and kept.read_bytes() == damaged
    vault = Vault.open(locked_vault, lambda _r: CANARY)
    assert [a.name for a in Repos(vault.db).agents] == ["first"]


def test_stray_temporary_from_a_killed_writer_is_cleaned(locked_vault: Path) -> None:
    stray = locked_vault.with_name("vault.tbx.tmp-99999")
    stray.write_bytes(b"half a vault")
    vault = Vault.open(locked_vault, lambda _r: CANARY)
    _add_agent(vault, "third")
    assert not stray.exists()
    assert os.listdir(locked_vault.parent).count("vault.tbx") == 1
