"""What every main screen shares: the navigation keys, the backend, vault-change hooks."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.events import ScreenResume
from textual.screen import Screen
from textual.worker import Worker

from console.tui.messages import VaultChanged
from console.workspace import Workspace

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp
    from console.tui.backend import Backend


class ConsoleScreen(Screen):
    """A top-level screen. Subclasses implement ``reload()`` to re-read the vault.

    A screen reads when it mounts and when the vault changes while it is in front or under
    a dialog (the app posts ``VaultChanged`` when the workspace tells of a commit); coming
    back, it reads again only if the vault or the toolbox in view changed meanwhile (a
    table of 2,000 tools costs a quarter of a second to compare), unless it shows live
    state that follows it only while in front (``RELOAD_ON_EVERY_VISIT``).
    """

    AUTO_FOCUS = "DataTable, *"
    RELOAD_ON_EVERY_VISIT: ClassVar[bool] = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="screen.filter", tooltip="Filter what this screen lists"),
        Binding("ctrl+r", "refresh", "Refresh", id="screen.refresh", show=False, tooltip="Read everything again"),
    ]

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    @property
    def backend(self) -> Backend:
        return self.console.backend

    @property
    def ws(self) -> Workspace:
        return self.backend.workspace

    def __init__(self) -> None:
        super().__init__()
        self._read_since_shown = False
        """Read since the screen last went out of view: a resume need not read again."""
        self._read_for: tuple[object, ...] | None = None
        """What the last read read: the vault's generation and the toolbox in view."""
        self._styled_for: tuple[int, bool] | None = None
        """The app's CSS generation and focus when this screen was last styled."""
        app = self.console
        # A new screen's widgets are styled as they mount, with the stylesheet of the moment.
        # Textual would still re-parse every stylesheet and restyle the whole app for it
        # (refresh_css: about 0.3 s for a first visit); its own CSS joins the stylesheet now,
        # parsed once with the others' cached rules, instead of by another full re-parse.
        self._css_update_count = app._css_update_count
        if self.CSS:
            read_from = (inspect.getfile(type(self)), f"{type(self).__name__}.CSS")
            if not app.stylesheet.has_source(*read_from):
                app.stylesheet.add_source(self.CSS, read_from=read_from, is_default_css=False,
                                          scope=self._css_type_name if self.SCOPED_CSS else "")

    def on_mount(self) -> None:
        # Textual calls the on_mount of every class up the hierarchy, and subclasses call
        # super() as well: read once.
        if self._read_for is None:
            self._reread()
            # Made ahead of its first visit (console/tui/warmup.py): that visit reads again if
            # the vault changed in between.
            self._read_since_shown = self.is_current

    def _on_screen_resume(self, event: ScreenResume) -> None:
        # Runs before Textual's own handler (subclass first). Textual restyles every widget of
        # a screen it brings back (0.1 s for a table and its footer); nothing a style depends on
        # changed unless the CSS (a theme) did, which Textual's switch already applied, or the
        # terminal's focus did.
        now = (self.app._css_update_count, self.app.app_focus)
        event.refresh_styles = self._styled_for not in (None, now)
        self._styled_for = now
        if not self.is_current or self._read_since_shown:  # made ahead; or a first visit's two
            return
        if self.RELOAD_ON_EVERY_VISIT or self._read_for != self._inputs():
            self._reread()

    def _on_screen_suspend(self) -> None:
        self._read_since_shown = False
        self._styled_for = (self.app._css_update_count, self.app.app_focus)

    def _inputs(self) -> tuple[object, ...]:
        ws = self.backend.ws
        return (ws.vault.header.generation if ws else None, self.console.toolbox_name)

    def _reread(self) -> None:
        self._read_since_shown = True
        self._read_for = self._inputs()
        self.reload()

    def on_vault_changed(self, _message: VaultChanged) -> None:
        self._reread()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker state messages go to the node that started the worker and do not
        # bubble: hand them to the app, which reports failures the same way everywhere.
        self.console.on_worker_state_changed(event)

    def reload(self) -> None:
        """Re-read what this screen shows from the (in-memory) vault. Must be quick."""

    def action_filter(self) -> None:
        """Open the screen's filter, if it has one."""
        from console.tui.widgets.filter import FilterInput

        filters = self.query(FilterInput)
        if filters:
            filters.first().open()
        else:
            self.notify("this screen has nothing to filter", severity="information")

    def action_refresh(self) -> None:
        self.reload()
