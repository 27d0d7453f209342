"""The vault: an encrypted TinyDB held in memory, written back in transactions.

Reading is free (the decrypted tables live in memory). Every change happens inside
``transaction()``, which takes the cross-process lock, first reloads the file if another
process wrote it since, applies the change and writes the new version atomically before
releasing the lock. So two ``tbx`` processes granting at the same moment both land: the
second one applies its change on top of the first one's.

Versions only move forward: each write records its generation in the rollback anchor
(``anchor.py``) after the file is on disk, and opening or reloading an older version
raises ``VaultRolledBack``. ``restore_backup`` and ``Vault.replace_contents`` (``tbx vault
restore``) are the way back: the older contents come back as a new, higher generation.

The key: the OS keyring, a passphrase (``TBX_PASSPHRASE`` first, then the prompt), or a
``MachineSecret`` given by the caller, which nothing in the environment replaces (a
remote toolbox's policy mirror, keyed by its gateway secret).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from console.errors import (
    AlreadyExists,
    VaultCorrupt,
    VaultError,
    VaultLocked,
    VaultMissing,
    VaultRolledBack,
    WrongPassphrase,
)
from console.vault import fileformat as ff
from console.vault.anchor import GenerationAnchor, Mark
from console.vault.fileio import exclusive_lock, remove_stray_temporaries, replace_atomically
from console.vault.keys import (
    KeyringKeys,
    MachineSecret,
    derive_from_machine_secret,
    machine_params,
)
from console.vault.slots import (
    KEY_SOURCES,
    MACHINE_SLOT,
    PassphraseProvider,
    load_kek,
    machine_slot,
    new_kek,
    unwrap,
    wrapped_for,
)


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


class _Stamp(NamedTuple):
    """What tells one version of the file from another (a tuple: compared on every gateway
    request, so it must be cheap)."""

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
    """``None`` means the OS keyring. A random secret a machine made is a
    ``MachineSecret`` instead (no Argon2id)."""


class Vault:
    def __init__(
        self,
        path: Path,
        header: ff.Header,
        data_key: bytes,
        kek: bytes,
        kek_kdf: dict[str, Any],
        tables: dict[str, dict[str, Any]],
        stamp: _Stamp,
        *,
        keyring_timeout: float,
        lock_timeout: float,
        anchor: GenerationAnchor,
        mark: Mark,
        allow_older: bool = False,
    ) -> None:
        self.path = path
        self._path_str = str(path)
        self.header = header
        self._data_key = data_key
        self._kek = kek
        self._kek_kdf = kek_kdf
        """The key parameters ``_kek`` belongs to: the header's ``kdf``, or its machine slot's."""
        self._stamp = stamp
        self.anchor = anchor
        self._mark = mark
        self._allow_older = allow_older
        self.rolled_back = False
        """Opened with ``allow_older`` and older than the anchor: a copy put back by hand."""
        self.keyring_timeout = keyring_timeout
        self.lock_timeout = lock_timeout
        self.db = VaultDB(storage=_MemoryTables)
        self._storage.data = tables
        # Threads of one process (TUI workers) take turns here; the file lock then
        # serialises processes. Re-entry by the thread already inside joins its change.
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._nested_seals: list[Callable[[VaultDB], None]] = []
        """``before_write`` steps of transactions joined into the one being made: run with it."""

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
        return KEY_SOURCES.get(self._kek_kdf.get("name"), "unknown")

    # -- creation and opening ---------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        source: KeySource | MachineSecret,
        *,
        keyring_timeout: float = 5.0,
        lock_timeout: float = 15.0,
        anchor_dir: Path | None = None,
    ) -> Vault:
        """A new, empty vault. ``anchor_dir`` holds the file copy of the rollback anchor
        (the installation's state directory; the vault's own folder when not given)."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = path.with_name(path.name + ".lock")
        with exclusive_lock(lock, lock_timeout, f"vault {path}"):
            if path.exists():
                raise AlreadyExists(f"a vault already exists at {path}; use it, or remove it first")
            vault_id = uuid.uuid4().hex
            kek, params = new_kek(source, vault_id, keyring_timeout)
            data_key = os.urandom(32)
            anchor = GenerationAnchor(anchor_dir or path.parent, keyring_timeout)
            mark = Mark.fresh()
            header = ff.Header(
                vault_id=vault_id,
                key_id=uuid.uuid4().hex[:16],
                generation=0,
                kdf=params,
                wrapped_key=ff.wrap_key(kek, data_key),
                nonce=os.urandom(12),
                writer=mark.writer,
            )
            blob = ff.seal(header, data_key, b"{}")
            replace_atomically(path, blob)
            stamp = _Stamp.of(path.stat())
            mark.saw(header.writer, header.generation)
            anchor.save(vault_id, mark)
        return cls(
            path, header, data_key, kek, params, {}, stamp,
            keyring_timeout=keyring_timeout, lock_timeout=lock_timeout, anchor=anchor, mark=mark,
        )

    @classmethod
    def open(
        cls,
        path: Path,
        passphrase: PassphraseProvider | MachineSecret | None = None,
        *,
        keyring_timeout: float = 5.0,
        lock_timeout: float = 15.0,
        anchor_dir: Path | None = None,
        allow_older: bool = False,
    ) -> Vault:
        """Open and decrypt. A version older than this machine's anchor raises
        ``VaultRolledBack`` unless ``allow_older`` (reading a backup, ``tbx vault restore``).

        ``passphrase`` is asked only when the vault is locked by a passphrase and
        ``TBX_PASSPHRASE`` is unset. A ``MachineSecret`` is the key itself, whatever the
        environment says; a vault it opens through Argon2id (a mirror made before) gets
        its machine slot (``MACHINE_SLOT``) then, so that run is its last."""
        anchor = GenerationAnchor(anchor_dir or path.parent, keyring_timeout)
        # The anchor before the file (see ``_reload``), read while the key is fetched or
        # derived: the header line names both.
        peeked = _peek_header(path)
        waiting = anchor.load_soon(peeked.vault_id) if peeked else None
        kek = load_kek(peeked, path, passphrase, keyring_timeout) if peeked else None
        mark = waiting() if waiting else None
        blob, stamp = _read(path)
        line, header, ciphertext = ff.split(blob, path)
        if mark is None or peeked is None or header.vault_id != peeked.vault_id:
            mark = anchor.load(header.vault_id)
        wrapped = wrapped_for(header, kek.kdf, path) if kek else None
        if kek is None or wrapped is None:  # re-keyed meanwhile
            kek = load_kek(header, path, passphrase, keyring_timeout)
            wrapped = kek.wrapped
        data_key = unwrap(kek.key, wrapped, path, passphrase)
        tables = _parse(ff.open_body(line, header, data_key, ciphertext, path), path)
        older = _older_than_anchor(path, header, mark)
        if older is not None and not allow_older:
            raise older
        mark.saw(header.writer, header.generation)
        vault = cls(
            path, header, data_key, kek.key, kek.kdf, tables, stamp,
            keyring_timeout=keyring_timeout, lock_timeout=lock_timeout, anchor=anchor, mark=mark,
            allow_older=allow_older,
        )
        vault.rolled_back = older is not None
        if isinstance(passphrase, MachineSecret) and kek.kdf.get("name") == "argon2id" and not vault.rolled_back:
            vault._add_machine_slot(passphrase)
        return vault

    # -- the rollback anchor ----------------------------------------------------------

    @property
    def anchored_generation(self) -> int:
        """The newest generation this process knows this machine wrote or saw."""
        return self._mark.generation

    @property
    def next_generation(self) -> int:
        """The generation the next write gets: above everything seen, so never reused."""
        return max(self.header.generation, self._mark.generation) + 1

    def anchor_description(self) -> str:
        return self.anchor.describe(self.header.vault_id)

    # -- reading other processes' changes ---------------------------------------------

    def is_stale(self) -> bool:
        # os.stat on a str: the gateway asks this on every request.
        try:
            st = os.stat(self._path_str)
            return (st.st_ino, st.st_size, st.st_mtime_ns) != self._stamp
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
        # The anchor before the file: a writer records after writing, so a file read later
        # is never older than the record (reading the other way round, a commit landing in
        # between would look like a rollback).
        anchored = self.anchor.load(self.header.vault_id)
        blob, stamp = _read(self.path)
        if not force and stamp == self._stamp:
            return
        line, header, ciphertext = ff.split(blob, self.path)
        if header.vault_id != self.header.vault_id:
            raise VaultCorrupt(f"{self.path} was replaced by a different vault; reopen tbx")
        changed = VaultLocked(f"the key of vault {self.path} was changed by another process; reopen tbx")
        wrapped = wrapped_for(header, self._kek_kdf, self.path)
        if wrapped is None:
            raise changed
        if wrapped != wrapped_for(self.header, self._kek_kdf, self.path):
            try:
                data_key = ff.unwrap_key(self._kek, wrapped, self.path)
            except WrongPassphrase:
                raise changed from None
        else:
            data_key = self._data_key
        tables = _parse(ff.open_body(line, header, data_key, ciphertext, self.path), self.path)
        # What this process saw, and what other processes of this machine recorded since.
        mark = self._mark.merged(anchored)
        older = _older_than_anchor(self.path, header, mark)
        if older is not None and not self._allow_older:
            raise older
        mark.saw(header.writer, header.generation)
        self._mark, self.rolled_back = mark, older is not None
        self.header, self._data_key, self._stamp = header, data_key, stamp
        self._storage.data = tables
        self.db.clear_cache()

    @contextmanager
    def reading(self) -> Iterator[VaultDB]:
        """Hold off this process's writers (and reloads) while a reader walks the tables,
        e.g. the gateway compiling its policy in a worker thread."""
        with self._thread_lock:
            yield self.db

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
                # Joined into the transaction being made: its before_write (an inner change's
                # audit records) runs when that one writes, so records land with their change
                # or, if the outer one fails, not at all.
                self._depth += 1
                try:
                    yield self.db
                    if before_write is not None:
                        self._nested_seals.append(before_write)
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
            self._nested_seals = []
            try:
                yield self.db
                for seal in [*self._nested_seals, *([before_write] if before_write is not None else [])]:
                    seal(self.db)
                if self._storage.dirty:
                    self._write(self._next_header())
            except BaseException:
                # The file still holds the last good version (we hold the lock): go back to it.
                self._storage.writable = False
                self._reload(force=True)
                raise
            finally:
                self._depth = 0
                self._nested_seals = []
                self._storage.writable = False
                self.db.clear_cache()

    def _next_header(self, **changes: Any) -> ff.Header:
        """Call under the lock. A process that has not recorded anything yet takes the id
        another process of this machine may have settled on meanwhile."""
        if not self._mark.stored:
            self._mark = self._mark.merged(self.anchor.load(self.header.vault_id))
        return self.header.next(generation=self.next_generation, writer=self._mark.writer, **changes)

    def _write(self, header: ff.Header, data_key: bytes | None = None) -> None:
        remove_stray_temporaries(self.path)
        key = data_key or self._data_key
        base = self.header
        _seal_to(self.path, header, key, self._storage.data, backup=self.backup_path)
        self.header, self._data_key = header, key
        self._stamp = _Stamp.of(self.path.stat())
        # Only now that the file is on disk: a crash before this line leaves the anchor
        # behind the file (no false alarm), never ahead of it.
        self._mark.saw(base.writer, base.generation)
        self._mark.saw(header.writer, header.generation)
        self.anchor.save(header.vault_id, self._mark)

    def replace_contents(self, tables: dict[str, dict[str, Any]]) -> None:
        """Inside a transaction: make ``tables`` the whole contents (``tbx vault restore``)."""
        if not self._storage.writable:
            raise RuntimeError("vault changes must happen inside Vault.transaction()")
        self._storage.write(json.loads(json.dumps(tables)))

    def change_key_source(self, source: KeySource) -> None:
        """Re-wrap the data key under a new key-encryption key (``tbx vault passwd``)."""
        with self._thread_lock, exclusive_lock(self.lock_path, self.lock_timeout, f"vault {self.path}"):
            if self.is_stale():
                self._reload()
            old_params = self.header.kdf
            kek, params = new_kek(source, self.header.vault_id, self.keyring_timeout)
            self._write(self._rewrapped(kek, params, self._data_key))
            self._kek, self._kek_kdf = kek, params
        if old_params.get("name") == "keyring" and params.get("name") != "keyring":
            KeyringKeys(self.keyring_timeout).forget(old_params)

    def rotate_data_key(self) -> None:
        """Re-encrypt everything under a fresh data key (``tbx vault rotate``)."""
        with self._thread_lock, exclusive_lock(self.lock_path, self.lock_timeout, f"vault {self.path}"):
            if self.is_stale():
                self._reload()
            data_key = os.urandom(32)
            self._write(self._rewrapped(self._kek, self._kek_kdf, data_key, key_id=uuid.uuid4().hex[:16]), data_key)

    def _rewrapped(self, kek: bytes, kdf: dict[str, Any], data_key: bytes, **changes: Any) -> ff.Header:
        """Call under the lock. The next header with ``data_key`` wrapped under ``kek`` alone:
        a machine slot whose key this process does not hold cannot follow, and a slot left
        behind would still open the vault after a passphrase change."""
        extra = {k: v for k, v in self.header.extra.items() if k != MACHINE_SLOT}
        return self._next_header(kdf=kdf, wrapped_key=ff.wrap_key(kek, data_key), extra=extra, **changes)

    def _add_machine_slot(self, secret: MachineSecret) -> None:
        """Wrap the data key a second time, under ``secret`` through HKDF (``MACHINE_SLOT``),
        as a new generation: every later open with ``secret`` skips Argon2id."""
        with self._thread_lock, exclusive_lock(self.lock_path, self.lock_timeout, f"vault {self.path}"):
            if self.is_stale():
                self._reload()
            if self.header.kdf.get("name") != "argon2id" or machine_slot(self.header, self.path) is not None:
                return  # another process did it meanwhile
            params = machine_params()
            wrapped = ff.wrap_key(derive_from_machine_secret(secret, params), self._data_key)
            slot = {"kdf": params, "wrapped_key": ff.b64e(wrapped)}
            self._write(self._next_header(extra={**self.header.extra, MACHINE_SLOT: slot}))


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


def _peek_header(path: Path) -> ff.Header | None:
    try:
        with open(path, "rb") as fh:
            return ff.parse_header(fh.readline(64 * 1024).rstrip(b"\n"), path)
    except (OSError, VaultError):
        return None  # the full read says what is wrong


def _seal_to(path: Path, header: ff.Header, data_key: bytes, tables: dict[str, Any], backup: Path | None) -> None:
    plaintext = json.dumps(tables, separators=(",", ":"), ensure_ascii=False)
    replace_atomically(path, ff.seal(header, data_key, plaintext.encode("utf-8")), backup=backup)


def _older_than_anchor(path: Path, header: ff.Header, mark: Mark) -> VaultRolledBack | None:
    if not mark.rolled_back(header.writer, header.generation):
        return None
    return VaultRolledBack(
            f"vault {path} is older than the last version this machine wrote (generation "
            f"{header.generation} < {mark.generation}), so a revoke or other change may have been "
            f"undone: if you put this copy back on purpose, run 'tbx vault restore' to keep it "
            f"(recorded in the audit log); otherwise put the newest copy back"
    )


def restore_backup(
    path: Path,
    passphrase: PassphraseProvider | MachineSecret | None = None,
    *,
    source: Path | None = None,
    keyring_timeout: float = 5.0,
    lock_timeout: float = 15.0,
    anchor_dir: Path | None = None,
) -> Path | None:
    """Put an older copy (the backup unless ``source`` is given) in place of a damaged or
    missing vault.

    The copy must open with its own key first. It is written as a new generation, above
    every one this machine recorded, so the anchor keeps growing. The damaged file is kept
    beside it (``vault.tbx.damaged-<time>``), never overwritten. Returns where it was kept.
    A vault that still opens is restored with ``Vault.replace_contents`` instead, in a
    transaction that records it in the audit log.
    """
    import time

    source = source or path.with_name(path.name + ".bak")
    if not source.exists():
        raise VaultMissing(f"there is no backup at {source} to restore")
    old = Vault.open(source, passphrase, keyring_timeout=keyring_timeout, lock_timeout=lock_timeout,
                     anchor_dir=anchor_dir, allow_older=True)
    with exclusive_lock(path.with_name(path.name + ".lock"), lock_timeout, f"vault {path}"):
        kept = None
        header = old._next_header()
        if path.exists():
            header = replace(header, generation=max(header.generation, _generation_of(path, header.vault_id) + 1))
            kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
            os.link(path, kept)
        _seal_to(path, header, old._data_key, old._storage.data, backup=None)
        old._mark.saw(header.writer, header.generation)
        old.anchor.save(header.vault_id, old._mark)
    return kept


def _generation_of(path: Path, vault_id: str) -> int:
    """The generation a damaged file still names in its header, if it is this vault's."""
    try:
        _line, header, _body = ff.split(path.read_bytes(), path)
    except (OSError, VaultError):
        return -1
    return header.generation if header.vault_id == vault_id else -1
