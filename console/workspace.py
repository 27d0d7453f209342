"""One opened installation: paths, settings, the vault and its audit log.

Every console change goes through ``Workspace.change()``: the change and its audit
records land together, the records chained into the log and the vault's checkpoint
moved to the new head inside the same vault commit.
"""

from __future__ import annotations

import base64
import getpass
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from console.config import Settings, load_settings
from console.errors import VaultCorrupt
from console.paths import Paths, resolve_paths
from console.vault import KeySource, MachineSecret, PassphraseProvider, Repos, Vault, VaultDB

# The audit log and the policy compiler come with their first use: opening the vault,
# which the console's first paint waits for, needs neither.
if TYPE_CHECKING:
    from console.audit import AuditEvent, AuditLog, Checkpoint
    from console.policy import CompiledPolicy

AUDIT_META = "audit"
OWNER_META = "owner_key"
DISCOVERY_META = "discovery|"
"""+ server id: what the server said of itself when last discovered (``Discovery.summary``)."""
"""The vault's key for owner tokens (``gateway.auth``); a remote toolbox's mirror carries its own."""
log = logging.getLogger(__name__)


def current_actor() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"user:{os.getuid()}"


@dataclass
class Change:
    """What one console action is doing: the typed tables plus its audit records."""

    repos: Repos
    actor: str
    events: list[AuditEvent] = field(default_factory=list)

    def record(
        self,
        action: str,
        target: str,
        *,
        agent: str | None = None,
        detail: dict[str, Any] | None = None,
        decision: str = "ok",
    ) -> None:
        from console.audit import AuditEvent

        self.events.append(AuditEvent(self.actor, action, target, decision, agent, detail or {}))


@dataclass(frozen=True)
class Commit:
    """A change of the vault now on disk and in this process's tables: one of this process's
    transactions, or another process's write read again (``Workspace.refresh``)."""

    tables: frozenset[str]
    """The tables it changed (every table when the whole file was read again)."""

    @property
    def records_only(self) -> bool:
        """Only ``meta`` changed: audit records and checkpoints, import positions; nothing
        a gateway, a supervisor or a screen's rows follow."""
        return self.tables <= {"meta"}


CommitListener = Callable[[Commit], None]


class Workspace:
    def __init__(self, paths: Paths, settings: Settings, vault: Vault) -> None:
        self.paths = paths
        self.settings = settings
        self.vault = vault
        self.repos = Repos(vault.db)
        self.actor = current_actor()
        self._listeners: tuple[CommitListener, ...] = ()

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        paths: Paths | None = None,
        passphrase: PassphraseProvider | MachineSecret | None = None,
        settings: Settings | None = None,
    ) -> Workspace:
        """``passphrase``: see ``Vault.open`` (a ``MachineSecret`` is used whatever the environment says)."""
        paths = paths or resolve_paths()
        settings = settings or load_settings(paths.config_file)
        vault = Vault.open(paths.vault, passphrase, anchor_dir=paths.state_dir, **settings.vault.timeouts())
        return cls(paths, settings, vault)

    @classmethod
    def create(cls, paths: Paths, source: KeySource | MachineSecret, settings: Settings | None = None) -> Workspace:
        paths.ensure()
        settings = settings or load_settings(paths.config_file)
        vault = Vault.create(paths.vault, source, anchor_dir=paths.state_dir, **settings.vault.timeouts())
        ws = cls(paths, settings, vault)
        with ws.change() as change:
            change.repos.meta.set(AUDIT_META, {"key": base64.b64encode(os.urandom(32)).decode()})
            change.record("vault.init", str(paths.vault), detail={"key_source": vault.key_source})
        return ws

    # -- the audit log ----------------------------------------------------------------

    def _audit_meta(self) -> dict[str, Any]:
        meta = self.repos.meta.get(AUDIT_META)
        if not meta or "key" not in meta:
            raise VaultCorrupt(f"vault {self.paths.vault} has no audit key; it was not created by tbx init")
        return meta

    @property
    def audit(self) -> AuditLog:
        from console.audit import AuditLog

        return AuditLog(self.paths.audit_log, base64.b64decode(self._audit_meta()["key"]))

    @property
    def audit_checkpoint(self) -> Checkpoint | None:
        from console.audit import Checkpoint

        return Checkpoint.from_json(self._audit_meta().get("checkpoint"))

    def _seal_audit(self, events: list[AuditEvent], db: VaultDB) -> None:
        """Append ``events`` and move the checkpoint in the commit being made.

        A log that cannot be written fails the change (``AuditWriteError`` says what to
        do): no change lands unrecorded. If only the head anchor could not be replaced,
        the change goes on: the checkpoint moved in this commit marks the same head.
        """
        from console.audit import AuditAnchorError, Checkpoint

        if not events:
            return
        try:
            head = self.audit.append(events)
        except AuditAnchorError as exc:
            log.warning("%s", exc)
            head = exc.head
        meta = self._audit_meta()
        current = Checkpoint.from_json(meta.get("checkpoint"))
        if head is not None and (current is None or head.seq > current.seq):
            meta["checkpoint"] = head.to_json()
        Repos(db).meta.set(AUDIT_META, meta)

    def log_events(self, events: list[AuditEvent]) -> None:
        """Append records that come with no vault change, moving the checkpoint along."""
        with self._committing(lambda db: self._seal_audit(events, db)):
            pass

    def advance_checkpoint(self, head: Checkpoint) -> None:
        """Move the vault's checkpoint to ``head`` unless it already points further.

        Writers append to the log without touching the vault (the gateway batches) and
        bring the checkpoint along now and then; it never moves backwards.
        """
        from console.audit import Checkpoint

        with self.change() as change:
            meta = self._audit_meta()
            current = Checkpoint.from_json(meta.get("checkpoint"))
            if current is None or head.seq > current.seq:
                meta["checkpoint"] = head.to_json()
                change.repos.meta.set(AUDIT_META, meta)

    # -- changing ----------------------------------------------------------------------

    @contextmanager
    def change(self, actor: str | None = None) -> Iterator[Change]:
        """``actor`` overrides the local user, for changes the gateway makes itself."""
        change = Change(self.repos, actor or self.actor)
        with self._committing(lambda db: self._seal_audit(change.events, db)):
            yield change

    def refresh(self) -> bool:
        """Read the vault again if another process wrote it; return whether it did (the
        listeners hear of it as a commit of every table)."""
        with self.vault.reading():
            before = dict(self.tables())
            changed = self.vault.refresh()
            after = dict(self.tables())
        if changed:
            self._announce(before, after)
        return changed

    # -- commit events ------------------------------------------------------------------

    def on_commit(self, listener: CommitListener) -> Callable[[], None]:
        """Call ``listener`` after every change that reaches the vault, on the thread that
        made it (or read it again), outside the vault's locks; returns what unsubscribes.
        A change made inside another is told once, when the outer one lands."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(known for known in self._listeners if known is not listener)

        return unsubscribe

    @contextmanager
    def _committing(self, before_write: Callable[[VaultDB], None]) -> Iterator[VaultDB]:
        """A vault transaction whose listeners hear which tables it changed once it is on disk.

        TinyDB replaces the dictionary of a table it writes, and a read from disk replaces
        them all: the tables whose dictionary is another object afterwards are the ones that
        changed (a dozen identity checks, whatever the vault's size)."""
        landed: dict[str, Any] | None = None

        def seal(db: VaultDB) -> None:
            nonlocal landed
            before_write(db)
            landed = dict(db.storage.read())  # type: ignore[arg-type]

        # This process's other writers wait from here (the vault's lock is re-entrant), so
        # what differs at the end is this change's, and what the transaction re-read.
        with self.vault.reading():
            before = dict(self.tables())
            with self.vault.transaction(seal) as db:
                yield db
        if landed is not None:  # None: nested in another change, which tells when it lands
            self._announce(before, landed)

    def _announce(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        tables = frozenset(name for name in before.keys() | after.keys() if before.get(name) is not after.get(name))
        if not tables:
            return
        commit = Commit(tables)
        for listener in self._listeners:
            try:
                listener(commit)
            except Exception:
                # The change is on disk: a listener that fails must not make it look failed.
                log.exception("a listener of vault commits failed")

    # -- reading -----------------------------------------------------------------------

    def tables(self) -> dict[str, dict[str, Any]]:
        return self.vault.db.storage.read()  # type: ignore[return-value]

    def policy(self, running: set[str] | None = None) -> CompiledPolicy:
        from console.policy import CompiledPolicy

        return CompiledPolicy.compile(self.tables(), running)

    @staticmethod
    def now() -> float:
        return time.time()
