"""The Toolboxes screen's rows for droplets tbx made that no toolbox owns (mixed into
``ToolboxesScreen``): ``d`` destroys one, retried while DigitalOcean refuses (its create
or another action still runs); ``enter`` adopts it as a toolbox, its gateway deployed
again. Both run in thread workers whose progress lines go to the activity log."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work

from console.errors import UsageError
from console.model import check_name
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.widgets.orphan_row import KEY_PREFIX, orphan_row, price, row_key

if TYPE_CHECKING:
    from console.model import Orphan
    from console.services.remote_toolboxes import Added
    from console.tui.widgets.toolbox_detail import ToolboxDetail
    from console.tui.widgets.toolbox_row import Row

HINT = "enter: adopt as a toolbox · d: destroy the droplet"


class OrphanRows:
    """What the Toolboxes screen does with orphan rows (it provides ``ws``, ``console``,
    ``app``, ``notify``, ``reload``, ``_activity`` and ``_show_selected``)."""

    orphan_busy: dict[int, tuple[str, str]]
    """Droplet id -> (destroying | adopting, latest progress line)."""

    # -- reading

    def orphan_rows(self, wanted: str) -> list[tuple[str, Row]]:
        from console.services.droplet_orphans import orphans

        return [(row_key(o), orphan_row(self.console, o, self.orphan_busy.get(o.droplet_id, (None, ""))[0]))
                for o in orphans(self.ws) if not wanted or wanted in o.name]

    def orphan_at(self, key: str | None) -> Orphan | None:
        if not key or not key.startswith(KEY_PREFIX):
            return None
        return self.ws.repos.orphans.get(key.removeprefix(KEY_PREFIX))

    def show_orphan(self, detail: ToolboxDetail, orphan: Orphan) -> None:
        detail.show_orphan(orphan, HINT, self.orphan_busy.get(orphan.droplet_id, ("", ""))[1])

    def _orphan_progress(self, orphan: Orphan, line: str) -> None:
        if orphan.droplet_id in self.orphan_busy:
            self.orphan_busy[orphan.droplet_id] = (self.orphan_busy[orphan.droplet_id][0], line)
        self._activity(f"{orphan.name}: {line}")
        self._show_selected()

    def _orphan_done(self, orphan: Orphan, line: str, note: str) -> None:
        self.orphan_busy.pop(orphan.droplet_id, None)
        self._activity(line)
        self.reload()
        if note:
            self.notify(note, timeout=10)

    # -- destroying

    def destroy_orphan(self, orphan: Orphan) -> None:
        if orphan.droplet_id in self.orphan_busy:
            return
        body = (f"DESTROYS droplet {orphan.droplet_id} ({orphan.region or '?'}, {orphan.size or '?'}, {price(orphan)}) "
                "at DigitalOcean with everything on it. No toolbox owns it. This cannot be undone.")
        self.app.push_screen(ConfirmModal(f"Destroy droplet {orphan.name}?", body, confirm="Destroy droplet"),
                             lambda yes: self._begin_destroy(orphan) if yes else None)

    def _begin_destroy(self, orphan: Orphan) -> None:
        self.orphan_busy[orphan.droplet_id] = ("destroying", "starting")  # the service says so in the log
        self.reload()
        self._destroy(orphan)

    @work(thread=True, exit_on_error=False, group="orphan-destroy")
    def _destroy(self, orphan: Orphan) -> None:
        from console.services.droplet_orphans import destroy_orphan

        try:
            destroy_orphan(self.ws, orphan.droplet_id, partial(self.app.call_from_thread, self._orphan_progress, orphan))
        except Exception as exc:
            # The app tells a failed worker's TbxError in a notification.
            self.app.call_from_thread(self._orphan_done, orphan, f"{orphan.name}: not destroyed: {exc}", "")
            raise
        self.app.call_from_thread(self._orphan_done, orphan, f"{orphan.name}: destroyed",
                                  f"droplet {orphan.name} destroyed")

    # -- adopting

    def adopt_orphan(self, orphan: Orphan) -> None:
        if orphan.droplet_id in self.orphan_busy:
            return
        ws = self.ws

        def check(name: str) -> str | None:
            try:
                check_name("toolbox", name.strip())
            except UsageError as exc:
                return str(exc)
            return f"a toolbox named {name.strip()!r} exists" if ws.repos.toolboxes.by_name(name.strip()) else None

        suggested = orphan.toolbox or orphan.name.removeprefix("tbx-")
        self.app.push_screen(
            PromptModal(f"Adopt droplet {orphan.name}?", f"It becomes a toolbox ({orphan.region}, {price(orphan)}); "
                        "its gateway is deployed again. Name:", value=suggested, check=check, confirm="Adopt"),
            partial(self._named, orphan))

    def _named(self, orphan: Orphan, name: str | None) -> None:
        if name is None:
            return
        if orphan.ssh_key and self.ws.repos.secrets.get(orphan.ssh_key) is not None:
            self._begin_adopt(orphan, name.strip(), None)
            return

        def readable(path: str) -> str | None:
            return None if Path(path).expanduser().is_file() else f"no file {path}"

        self.app.push_screen(
            PromptModal("Which SSH key logs in?", f"tbx has no key for droplet {orphan.droplet_id}: the private key "
                        "that logs in as root", placeholder="~/.ssh/id_ed25519", check=readable, confirm="Adopt"),
            lambda path: self._begin_adopt(orphan, name.strip(), Path(path).expanduser()) if path else None)

    def _begin_adopt(self, orphan: Orphan, name: str, key_path: Path | None) -> None:
        self.orphan_busy[orphan.droplet_id] = ("adopting", "starting")
        self._activity(f"{orphan.name}: adopting as toolbox {name}")
        self.reload()
        self._adopt(orphan, name, key_path)

    @work(thread=True, exit_on_error=False, group="orphan-adopt")
    def _adopt(self, orphan: Orphan, name: str, key_path: Path | None) -> None:
        from console.services.remote_toolboxes import adopt_droplet

        progress = partial(self.app.call_from_thread, self._orphan_progress, orphan)
        try:
            key_text = key_path.read_text(encoding="utf-8") if key_path is not None else None
            added: Added = adopt_droplet(self.ws, orphan.droplet_id, name, key_text, progress=progress)
        except Exception as exc:
            self.app.call_from_thread(self._orphan_done, orphan, f"{orphan.name}: not adopted: {exc}", "")
            raise
        self.app.call_from_thread(self._orphan_done, orphan, f"{orphan.name}: adopted as toolbox {name}",
                                  f"toolbox {name} adopted: gateway {added.gateway_url}/mcp, TLS "
                                  f"{added.gateway_fingerprint}")
