"""What the console does, without Textual: opening the vault, the engine, the gateway.

Screens call these from workers (they block); nothing here knows about widgets. The
live parts — the supervisor and the stats streams — are async and run on the app's loop.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from console.config import Settings, load_settings
from console.errors import VaultLocked
from console.gateway import process as gateway_process
from console.gateway.process import GatewayInfo
from console.paths import Paths, resolve_paths
from console.runtime.engine import EngineStatus, probe_engine
from console.vault import KeySource
from console.vault.keys import PASSPHRASE_ENV, keyring_status
from console.workspace import Workspace


class Backend:
    def __init__(self, paths: Paths | None = None, settings: Settings | None = None) -> None:
        self.paths = paths or resolve_paths()
        self.settings = settings or load_settings(self.paths.config_file)
        self.ws: Workspace | None = None
        self._passphrase: str | None = None
        """Kept only to hand to a gateway process we start for a passphrase vault."""
        self._remember_lock = threading.Lock()
        self._opening: Future[Workspace] | None = None
        """A vault being opened in a thread since before the console started (``open_early``)."""

    # -- the vault -----------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        if self.ws is None:
            raise VaultLocked("the vault is not open")
        return self.ws

    def vault_exists(self) -> bool:
        return self.paths.vault.exists()

    def keyring_usable(self) -> bool:
        return keyring_status(self.settings.vault.keyring_timeout).usable

    def needs_passphrase(self) -> bool:
        """Whether opening the existing vault needs a passphrase we have not got."""
        if PASSPHRASE_ENV in os.environ:
            return False
        try:
            with self.paths.vault.open("rb") as vault:  # the header line, not megabytes of records
                header = vault.readline()
            return json.loads(header).get("kdf", {}).get("name") == "argon2id"
        except (OSError, ValueError):
            return False  # opening will say what is wrong

    def open_early(self) -> Future[Workspace] | None:
        """Start opening the vault in a thread when that needs nobody (its key is in the
        keyring, or ``TBX_PASSPHRASE`` is set), while the console itself starts: the first
        paint then waits on whichever is slower, not on both in turn."""
        if self._opening is None and self.ws is None and self.vault_exists() and not self.needs_passphrase():
            self._opening = Future()
            threading.Thread(target=self._open_into, args=(self._opening,), name="vault-open", daemon=True).start()
        return self._opening

    def _open_into(self, opening: Future[Workspace]) -> None:
        try:
            opening.set_result(self._open(None))
        except BaseException as exc:  # handed to whoever waits on it, as if it had opened the vault itself
            opening.set_exception(exc)

    def open_vault(self, passphrase: str | None = None) -> Workspace:
        """Open the vault; without a passphrase, an opening started early is awaited (once:
        after it failed, the next call tries afresh)."""
        opening, self._opening = self._opening, None
        if opening is not None and passphrase is None:
            return opening.result()
        return self._open(passphrase)

    def _open(self, passphrase: str | None) -> Workspace:
        self.ws = Workspace.open(self.paths, (lambda _reason: passphrase) if passphrase else None, self.settings)
        self._passphrase = passphrase or os.environ.get(PASSPHRASE_ENV)
        return self.ws

    def create_vault(self, passphrase: str | None) -> Workspace:
        self.ws = Workspace.create(self.paths, KeySource(passphrase=passphrase), self.settings)
        self._passphrase = passphrase
        return self.ws

    # -- the engine ----------------------------------------------------------------------

    def engine_status(self, endpoint: str | None = None) -> EngineStatus:
        return probe_engine(endpoint, timeout=2.0)

    # -- the gateway process -------------------------------------------------------------

    def gateway_info(self, toolbox: str) -> GatewayInfo | None:
        return gateway_process.running(self.paths, toolbox)

    def start_gateway(self, toolbox: str, timeout: float = 30.0) -> GatewayInfo:
        """Start ``tbx gateway serve`` as its own process: it outlives the console."""
        return gateway_process.start(self.paths, toolbox, passphrase=self._passphrase, timeout=timeout)

    def stop_gateway(self, toolbox: str, timeout: float = 15.0) -> None:
        gateway_process.stop(self.paths, toolbox, timeout=timeout)

    # -- remembered console state --------------------------------------------------------

    @property
    def _ui_file(self) -> Path:
        return self.paths.state_dir / "console.json"

    def ui_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._ui_file.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def remember(self, **values: Any) -> None:
        with self._remember_lock:  # the console writes from worker threads
            self._remember(values)

    def _remember(self, values: dict[str, Any]) -> None:
        state = {**self.ui_state(), **values}
        self._ui_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._ui_file.with_name(self._ui_file.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self._ui_file)
