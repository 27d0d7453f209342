"""The vault: an encrypted TinyDB held in memory, written back in transactions.

Reading is free (the decrypted tables live in memory). Every change happens inside
``transaction()``, which takes the cross-process lock, first reloads the file if another
process wrote it since, applies the change and writes the new version atomically before
releasing the lock. So two ``tbx`` processes granting at the same moment both land: the
second one applies its change on top of the first one's.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from console.errors import AlreadyExists, VaultCorrupt, VaultLocked, VaultMissing
from console.vault import fileformat as ff
from console.vault.fileio import exclusive_lock, remove_stray_temporaries, replace_atomically
from console.vault.keys import (
    PASSPHRASE_ENV,
    KeyringKeys,
    derive_from_passphrase,
    passphrase_params,
)

PassphraseProvider = Callable[[str], str]
"""Asked for the passphrase with a one-line reason; returns it or raises VaultLocked."""


class _StrIdTable(Table):
    """Documents keyed by our own ids (``ag_...``, ``agent|server|tool``) for O(1) lookups."""

    document_id_class = str  # type: ignore[assignment]


class _MemoryTables(Storage):
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.writable = False
        self.dirty = False

    def read(self) -> dict[str, dict[str, Any]]:
        return self.data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if not self.writable:
            raise RuntimeError("vault changes must happen inside Vault.transaction()")
        self.data = data
        self.dirty = True


class VaultDB(TinyDB):
    table_class = _StrIdTable


@dataclass(frozen=True)
class _Stamp:
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Stamp:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class KeySource:
    """How a vault's key-encryption key is obtained."""

    passphrase: str | None
    """``None`` means the OS keyring."""


class Vault:
    def __init__(
        self,
        path: Path,
        header: ff.Header,
        data_key: bytes,
        kek: bytes,
        tables: dict[str, dict[str, Any]],
        stamp: _Stamp,
        *,
        keyring_timeout: float,
        lock_timeout: float,
    ) -> None:
        self.path = path
        self.header = header
        self._data_key = data_key
        self._kek = kek
        self._stamp = stamp
        self.keyring_timeout = keyring_timeout
        self.lock_timeout = lock_timeout
        self.db = VaultDB(storage=_MemoryTables)
        self._storage.data = tables
        # Threads of one process (TUI workers) take turns here; the file lock then
        # serialises processes. Re-entry by the thread already inside joins its change.
        self._thread_lock = threading.RLock()
        self._depth = 0

    @property
    def _storage(self) -> _MemoryTables:
        return self.db.storage  # type: ignore[return-value]

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def key_source(self) -> str:
        return "OS keyring" if self.header.kdf.get("name") == "keyring" else "passphrase (Argon2id)"

    # -- creation and opening ---------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        source: KeySource,
        *,
        keyring_timeout: float = 5.0,
        lock_timeout: float = 15.0,
    ) -> Vault:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = path.with_name(path.name + ".lock")
        with exclusive_lock(lock, lock_timeout, f"vault {path}"):
            if path.exists():
                raise AlreadyExists(f"a vault already exists at {path}; use it, or remove it first")
            vault_id = uuid.uuid4().hex
            kek, params = _new_kek(source, vault_id, keyring_timeout)
            data_key = os.urandom(32)
            header = ff.Header(
                vault_id=vault_id,
                key_id=uuid.uuid4().hex[:16],
                generation=0,
                kdf=params,
                wrapped_key=ff.wrap_key(kek, data_key),
                nonce=os.urandom(12),
            )
            blob = ff.seal(header, data_key, b"{}")
            replace_atomically(path, blob)
            stamp = _Stamp.of(path.stat())
        return cls(
            path, header, data_key, kek, {}, stamp,
            keyring_timeout=keyring_timeout, lock_timeout=lock_timeout,
        )

    @classmethod
    def open(
        cls,
        path: Path,
        passphrase: PassphraseProvider | None = None,
        *,
        keyring_timeout: float = 5.0,
        lock_timeout: float = 15.0,
    ) -> Vault:
        blob, stamp = _read(path)
        line, header, ciphertext = ff.split(blob, path)
        kek = _load_kek(header, path, passphrase, keyring_timeout)
        data_key = ff.unwrap_key(kek, header.wrapped_key, path)
        tables = _parse(ff.open_body(line, header, data_key, ciphertext, path), path)
        return cls(
            path, header, data_key, kek, tables, stamp,
            keyring_timeout=keyring_timeout, lock_timeout=lock_timeout,
        )

    # -- reading other processes' changes ---------------------------------------------

    def is_stale(self) -> bool:
        try:
            return _Stamp.of(self.path.stat()) != self._stamp
        except FileNotFoundError:
            return True

    def refresh(self) -> bool:
        """Reload if another process wrote the vault; return whether anything changed."""
        with self._thread_lock:
            if not self.is_stale():
                return False
            self._reload()
            return True

    def _reload(self, force: bool = False) -> None:
        blob, stamp = _read(self.path)
        if not force and stamp == self._stamp:
            return
        line, header, ciphertext = ff.split(blob, self.path)
        if header.vault_id != self.header.vault_id:
            raise VaultCorrupt(f"{self.path} was replaced by a different vault; reopen tbx")
        if header.wrapped_key != self.header.wrapped_key:
            try:
                data_key = ff.unwrap_key(self._kek, header.wrapped_key, self.path)
            except ff.WrongPassphrase:
                raise VaultLocked(
                    f"the key of vault {self.path} was changed by another process; reopen tbx"
                ) from None
        else:
            data_key = self._data_key
        tables = _parse(ff.open_body(line, header, data_key, ciphertext, self.path), self.path)
        self.header, self._data_key, self._stamp = header, data_key, stamp
        self._storage.data = tables
        self.db.clear_cache()

    # -- changing ---------------------------------------------------------------------

    @contextmanager
    def transaction(self, before_write: Callable[[VaultDB], None] | None = None) -> Iterator[VaultDB]:
        """Apply changes to the latest version under the lock and write them out.

        ``before_write`` runs under the lock after the changes, just before the write
        (the audit log uses it to chain its records to the same commit). If the block
        raises, the in-memory tables are restored and nothing is written.
        """
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            with self._locked_transaction(before_write) as db:
                yield db

    @contextmanager
    def _locked_transaction(self, before_write: Callable[[VaultDB], None] | None) -> Iterator[VaultDB]:
        with exclusive_lock(self.lock_path, self.lock_timeout, f"vault {self.path}"):
            if self.is_stale():
                self._reload()
            self._storage.writable = True
            self._storage.dirty = False
            self._depth = 1
            try:
                yield self.db
                if before_write is not None:
                    before_write(self.db)
                if self._storage.dirty:
                    self._write(self.header.next())
            except BaseException:
                # The file still holds the last good version (we hold the lock): go back to it.
                self._storage.writable = False
                self._reload(force=True)
                raise
            finally:
                self._depth = 0
                self._storage.writable = False
                self.db.clear_cache()

    def _write(self, header: ff.Header, data_key: bytes | None = None) -> None:
        remove_stray_temporaries(self.path)
        key = data_key or self._data_key
        plaintext = json.dumps(self._storage.data, separators=(",", ":"), ensure_ascii=False)
        blob = ff.seal(header, key, plaintext.encode("utf-8"))
        replace_atomically(self.path, blob, backup=self.backup_path)
        self.header, self._data_key = header, key
        self._stamp = _Stamp.of(self.path.stat())

    def change_key_source(self, source: KeySource) -> None:
        """Re-wrap the data key under a new key-encryption key (``tbx vault passwd``)."""
        with self._thread_lock, exclusive_lock(self.lock_path, self.lock_timeout, f"vault {self.path}"):
            if self.is_stale():
                self._reload()
            old_params = self.header.kdf
            kek, params = _new_kek(source, self.header.vault_id, self.keyring_timeout)
            header = self.header.next(kdf=params, wrapped_key=ff.wrap_key(kek, self._data_key))
            self._write(header)
            self._kek = kek
        if old_params.get("name") == "keyring" and params.get("name") != "keyring":
            KeyringKeys(self.keyring_timeout).forget(old_params)

    def rotate_data_key(self) -> None:
        """Re-encrypt everything under a fresh data key (``tbx vault rotate``)."""
        with self._thread_lock, exclusive_lock(self.lock_path, self.lock_timeout, f"vault {self.path}"):
            if self.is_stale():
                self._reload()
            data_key = os.urandom(32)
            header = self.header.next(
                key_id=uuid.uuid4().hex[:16], wrapped_key=ff.wrap_key(self._kek, data_key)
            )
            self._write(header, data_key)


def _new_kek(source: KeySource, vault_id: str, keyring_timeout: float) -> tuple[bytes, dict[str, Any]]:
    if source.passphrase is None:
        return KeyringKeys(keyring_timeout).create(vault_id)
    params = passphrase_params()
    return derive_from_passphrase(source.passphrase, params), params


def _load_kek(
    header: ff.Header, path: Path, passphrase: PassphraseProvider | None, keyring_timeout: float
) -> bytes:
    name = header.kdf.get("name")
    if name == "keyring":
        return KeyringKeys(keyring_timeout).load(header.kdf)
    if name == "argon2id":
        secret = os.environ.get(PASSPHRASE_ENV)
        if secret is None:
            if passphrase is None:
                raise VaultLocked(
                    f"vault {path} is locked by a passphrase: set {PASSPHRASE_ENV} "
                    f"or run tbx in a terminal to be asked for it"
                )
            secret = passphrase(f"Passphrase for vault {path}")
        return derive_from_passphrase(secret, header.kdf)
    raise VaultCorrupt(f"vault {path} names an unknown key source {name!r}; it was altered")


def _read(path: Path) -> tuple[bytes, _Stamp]:
    try:
        with open(path, "rb") as fh:
            stamp = _Stamp.of(os.fstat(fh.fileno()))
            return fh.read(), stamp
    except FileNotFoundError:
        raise VaultMissing(f"no vault at {path}: run 'tbx init' to create one") from None


def _parse(plaintext: bytes, path: Path) -> dict[str, dict[str, Any]]:
    try:
        tables = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VaultCorrupt(f"vault {path} decrypted to unreadable data; restore it from a backup") from None
    if not isinstance(tables, dict):
        raise VaultCorrupt(f"vault {path} decrypted to unexpected data; restore it from a backup")
    return tables


def restore_backup(
    path: Path,
    passphrase: PassphraseProvider | None = None,
    *,
    keyring_timeout: float = 5.0,
    lock_timeout: float = 15.0,
) -> Path | None:
    """Put the backup back in place of a damaged vault.

    The backup must open with its own key first; the damaged file is kept beside it
    (``vault.tbx.damaged-<time>``), never overwritten. Returns where it was kept.
    """
    import time

    backup = path.with_name(path.name + ".bak")
    if not backup.exists():
        raise VaultMissing(f"there is no backup at {backup} to restore")
    Vault.open(backup, passphrase, keyring_timeout=keyring_timeout, lock_timeout=lock_timeout)
    lock = path.with_name(path.name + ".lock")
    with exclusive_lock(lock, lock_timeout, f"vault {path}"):
        kept = None
        if path.exists():
            kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
            os.link(path, kept)
        replace_atomically(path, backup.read_bytes())
    return kept
