"""The rollback anchor: the newest vault generation this machine wrote, kept away from the vault.

Every commit bumps the header's ``generation``. Whoever can write the vault's folder can
put an older copy back (``vault.tbx.bak``, a sync conflict, a backup tool), and an older
copy is perfectly valid — it just no longer holds the last revoke. So after each write
the generation is also recorded where that person cannot rewrite it along with the
file: the OS keyring, under the vault's id. A copy of the record goes to a small file in
the state directory, which is all there is without a usable keyring: it catches an old
copy put back by accident, not by someone who can write that file too.

A real keyring is slow (the Secret Service through ``keyring`` takes ~40 ms a write), so
the keyring write does not hold up the commit: one thread per process writes the newest
record of each vault after the commit returns, and the interpreter waits for it at exit
(it is not a daemon), each keyring call bounded by the keyring timeout. Processes take
turns on a lock of their own and keep the larger record, so a slow writer never puts an
older generation back. The file copy is written in the commit; reading merges both, so
this machine's own processes see every commit at once.

Each machine signs its writes with a random *writer* id kept in the record. A version
another machine wrote (the console pushing a new policy to a toolbox's own gateway,
whose checkpoints counted on) is judged against what this machine saw of that machine:
newer than that is a new version, not a rollback.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.errors import KeyringUnavailable
from console.filelock import held
from console.vault.keys import KEYRING_SERVICE, call_with_timeout, keyring_status


@dataclass
class Mark:
    """What one machine knows of one vault's history."""

    writer: str
    """This machine's id in the headers it writes."""
    generation: int = -1
    """The newest generation written or seen here."""
    peers: dict[str, int] = field(default_factory=dict)
    """Per other writer, the newest of its generations seen or built on here."""
    stored: bool = False
    """Read from an anchor (so ``writer`` is settled), not made up just now."""

    @classmethod
    def fresh(cls) -> Mark:
        return cls(writer=uuid.uuid4().hex[:16])

    def rolled_back(self, writer: str, generation: int) -> bool:
        """Whether a version (``writer``, ``generation``) is older than what is known here."""
        if generation >= self.generation:
            return False
        # Another machine's version newer than any of its versions seen here is news.
        return writer == self.writer or generation <= self.peers.get(writer, -1)

    def saw(self, writer: str, generation: int) -> None:
        self.generation = max(self.generation, generation)
        if writer != self.writer:
            self.peers[writer] = max(self.peers.get(writer, -1), generation)

    def merged(self, other: Mark) -> Mark:
        """Both records in one: ``other``'s writer if it is settled, every maximum."""
        kept, dropped = (other, self) if other.stored else (self, other)
        peers = dict(self.peers)
        for writer, generation in other.peers.items():
            peers[writer] = max(peers.get(writer, -1), generation)
        if dropped.writer != kept.writer and dropped.generation >= 0:
            # Two processes that each made up an id: the dropped one's versions stay judged.
            peers[dropped.writer] = max(peers.get(dropped.writer, -1), dropped.generation)
        peers.pop(kept.writer, None)
        return Mark(kept.writer, max(self.generation, other.generation), peers, self.stored or other.stored)

    def to_json(self) -> str:
        return json.dumps({"writer": self.writer, "generation": self.generation, "peers": self.peers},
                          separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Mark | None:
        """``None`` for no record; an unreadable record counts as none (it can only lower the bar)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(str(data["writer"]), int(data["generation"]),
                       {str(k): int(v) for k, v in dict(data.get("peers") or {}).items()}, True)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class GenerationAnchor:
    """Reads and writes one machine's :class:`Mark` per vault: OS keyring plus a file copy."""

    def __init__(self, directory: Path, keyring_timeout: float) -> None:
        self.directory = directory
        self.timeout = keyring_timeout
        self._keyring: bool | None = None
        self._backend: Any = None
        """The keyring judged usable, kept: a later write goes where the reads went."""
        self.note = ""
        """Why the keyring is not used, when it is not."""

    def _keyring_usable(self) -> bool:
        if self._keyring is None:
            import keyring

            status = keyring_status(self.timeout)
            self._backend = keyring.get_keyring() if status.usable else None  # found by now: instant
            self._keyring = status.usable
            self.note = "" if status.usable else status.reason
        return self._keyring

    def _give_up_keyring(self, exc: BaseException) -> None:
        # A keyring that failed once is not asked again by this process: every commit
        # would otherwise wait the whole timeout.
        self._keyring = False
        self.note = f"the OS keyring failed: {exc}"

    @property
    def in_keyring(self) -> bool:
        return self._keyring_usable()

    def file_path(self, vault_id: str) -> Path:
        return self.directory / f"generation-{vault_id}.json"

    def describe(self, vault_id: str) -> str:
        if self.in_keyring:
            return f"OS keyring ({KEYRING_SERVICE}/generation-{vault_id}), copy in {self.file_path(vault_id)}"
        return f"file {self.file_path(vault_id)} only ({self.note})"

    def load(self, vault_id: str) -> Mark:
        mark = Mark.fresh()
        from_file = self._read_file(vault_id)
        if from_file is not None:
            mark = mark.merged(from_file)
        if self._keyring_usable():
            try:
                from_keyring = Mark.from_json(self._keyring_call("get", vault_id))
            except Exception as exc:  # noqa: BLE001 - a keyring that fails leaves the file
                self._give_up_keyring(exc)
            else:
                if from_keyring is not None:
                    mark = mark.merged(from_keyring)
        return mark

    def load_soon(self, vault_id: str) -> Callable[[], Mark]:
        """Start :meth:`load` in a thread (opening reads the key meanwhile); call the result to wait."""
        done, box = threading.Event(), dict[str, Any]()

        def run() -> None:
            try:
                box["mark"] = self.load(vault_id)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="keyring:read generation", daemon=True).start()

        def result() -> Mark:
            done.wait()  # load() is bounded: every keyring call in it has the timeout
            if "error" in box:
                raise box["error"]
            return box["mark"]

        return result

    def save(self, vault_id: str, mark: Mark) -> None:
        """Record ``mark``: the file now, the keyring just after. Never raises (the vault
        file is already written by then)."""
        mark.stored = True
        with contextlib.suppress(OSError):
            self._write_file(vault_id, mark.to_json())
        if self._keyring_usable():
            _WRITER.submit(self, vault_id, Mark(mark.writer, mark.generation, dict(mark.peers), True))

    def _record_in_keyring(self, vault_id: str, mark: Mark) -> None:
        """The larger of ``mark`` and what the keyring holds, under this machine's lock."""
        lock = self.directory / f"generation-{vault_id}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        busy = KeyringUnavailable(f"another process held {lock} too long")
        with held(lock, 3 * self.timeout, lambda _holder: busy):
            stored = Mark.from_json(self._keyring_call("get", vault_id))
            if stored is not None:
                mark = stored.merged(mark)
                if mark.to_json() == stored.to_json():
                    return
            self._keyring_call("set", vault_id, mark.to_json())

    def _keyring_call(self, verb: str, vault_id: str, value: str = "") -> Any:
        backend, account = self._backend, f"generation-{vault_id}"
        if verb == "get":
            return call_with_timeout(lambda: backend.get_password(KEYRING_SERVICE, account),
                                     self.timeout, "read vault generation")
        return call_with_timeout(lambda: backend.set_password(KEYRING_SERVICE, account, value),
                                 self.timeout, "record vault generation")

    def _read_file(self, vault_id: str) -> Mark | None:
        try:
            return Mark.from_json(self.file_path(vault_id).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def _write_file(self, vault_id: str, text: str) -> None:
        # No fsync: a record lost in a crash only lowers the bar, it never raises a false alarm.
        path = self.file_path(vault_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(tmp, path)


class _KeyringWriter:
    """The process's one keyring-writing thread: the newest record per vault, in order."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[GenerationAnchor, Mark]] = {}
        self._idle = threading.Condition()
        self._running = False

    def submit(self, anchor: GenerationAnchor, vault_id: str, mark: Mark) -> None:
        with self._idle:
            self._pending[vault_id] = (anchor, mark)  # a newer record replaces one not yet written
            if not self._running:
                self._running = True
                # Not a daemon: a CLI command's revoke reaches the keyring before the process ends.
                threading.Thread(target=self._run, name="keyring:record generation").start()

    def _run(self) -> None:
        while True:
            with self._idle:
                if not self._pending:
                    self._running = False
                    self._idle.notify_all()
                    return
                vault_id = next(iter(self._pending))
                anchor, mark = self._pending.pop(vault_id)
            try:
                if anchor._keyring_usable():
                    anchor._record_in_keyring(vault_id, mark)
            except Exception as exc:  # noqa: BLE001 - the file copy holds; say so in describe()
                anchor._give_up_keyring(exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record handed over is written; False if ``timeout`` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)


_WRITER = _KeyringWriter()


def flush_keyring_writes(timeout: float | None = None) -> bool:
    """Wait for this process's pending keyring records (tests, benchmarks)."""
    return _WRITER.flush(timeout)
