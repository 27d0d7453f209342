"""First run: create the vault, then offer the local toolbox, a starter server and a demo agent.

The screen's result is the new workspace (``dismiss``): the app shows the console then."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Log, RadioButton, RadioSet, Static

from console.errors import TbxError
from console.tui.modals.secret_once import SecretOnceModal
from console.workspace import Workspace

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp

STARTER = "time"
DEMO_AGENT = "demo"


class SetupScreen(Screen[Workspace]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "app.quit", "Quit", id="setup.quit")]

    def __init__(self, keyring_usable: bool) -> None:
        super().__init__()
        self.keyring_usable = keyring_usable

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="setup", classes="dialog wide"):
            yield Label("Welcome to Toolbox Console", classes="dialog-title")
            yield Static("Everything you set up is kept in one encrypted vault. Where should its key live?",
                         classes="dialog-body")
            with RadioSet(id="source"):
                yield RadioButton("the OS keyring (nothing to type)", value=self.keyring_usable,
                                  disabled=not self.keyring_usable, id="keyring")
                yield RadioButton("a passphrase I type when I open the console", value=not self.keyring_usable,
                                  id="passphrase")
            if not self.keyring_usable:
                yield Static("No usable OS keyring here, so the vault is locked by a passphrase.", classes="note")
            yield Input(password=True, placeholder="passphrase (at least 8 characters)", id="first")
            yield Input(password=True, placeholder="the same passphrase again", id="second")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create the vault", id="create", variant="primary")
        with Vertical(id="starter", classes="dialog wide hidden"):
            yield Label("The vault is ready", classes="dialog-title")
            yield Static("", id="engine", classes="dialog-body")
            yield Static(f"Create the local toolbox with a starter server ({STARTER}) and a demo agent "
                         f"('{DEMO_AGENT}') that may call it? You can remove them later.", classes="dialog-body")
            yield Log(id="progress", max_lines=200, classes="hidden")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Skip", id="skip")
                yield Button("Create them", id="starter-go", variant="primary")

    def on_mount(self) -> None:
        self._show_passphrase(not self.keyring_usable)

    def _show_passphrase(self, shown: bool) -> None:
        for widget_id in ("#first", "#second"):
            self.query_one(widget_id, Input).display = shown

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self._show_passphrase(event.pressed.id == "passphrase")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter in the first passphrase moves to the confirmation; Enter there creates the
        # vault, as the unlock screen and every form submit on Enter.
        event.stop()
        if event.input.id == "first":
            self.query_one("#second", Input).focus()
        else:
            self._create()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        match event.button.id:
            case "create":
                self._create()
            case "skip":
                self.dismiss(self.console.backend.workspace)
            case "starter-go":
                event.button.disabled = True
                self.query_one("#progress", Log).remove_class("hidden")
                self._starter()

    def _create(self) -> None:
        use_passphrase = self.query_one("#passphrase", RadioButton).value
        passphrase = None
        if use_passphrase:
            first, second = self.query_one("#first", Input).value, self.query_one("#second", Input).value
            problem = "at least 8 characters, please" if len(first) < 8 else (
                "the two passphrases differ" if first != second else "")
            if problem:
                self.query_one("#problem", Static).update(problem)
                return
            passphrase = first
        self.query_one("#create", Button).disabled = True
        self._create_vault(passphrase)

    @work(exclusive=True, exit_on_error=False, group="setup")
    async def _create_vault(self, passphrase: str | None) -> None:
        backend = self.console.backend
        try:  # Argon2id, the keyring, the disk: off the loop
            await asyncio.to_thread(backend.create_vault, passphrase)
        except TbxError as exc:
            self.query_one("#problem", Static).update(str(exc))
            self.query_one("#create", Button).disabled = False
            return
        status = await asyncio.to_thread(backend.engine_status)
        self._created(status.reachable, status.describe())

    def _created(self, engine_ok: bool, description: str) -> None:
        self.query_one("#setup").add_class("hidden")
        self.query_one("#starter").remove_class("hidden")
        self.query_one("#engine", Static).update(
            description if engine_ok else f"{description}. Servers need a Docker engine; the rest works without.")
        self.query_one("#starter-go", Button).disabled = not engine_ok
        self.query_one("#starter-go", Button).focus() if engine_ok else self.query_one("#skip", Button).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup")
    def _starter(self) -> None:
        from console.catalog import load_catalog
        from console.services import agents, grants, servers, toolboxes
        from console.services.grants import Target
        from console.services.tools import approve

        ws = self.console.backend.workspace
        log = self.query_one("#progress", Log)

        def say(line: str) -> None:
            self.app.call_from_thread(log.write_line, line)

        try:
            if ws.repos.toolboxes.by_name("local") is None:
                toolboxes.add_local(ws, "local")
            say("toolbox local added")
            servers.add_server(ws, "local", load_catalog(ws.paths).get(STARTER), progress=say)
            approve(ws, "local", STARTER)
            _agent, token = agents.add_agent(ws, DEMO_AGENT)
            grants.grant(ws, DEMO_AGENT, Target.parse("local"))
            grants.grant(ws, DEMO_AGENT, Target.parse(f"local/{STARTER}"))
            say(f"agent {DEMO_AGENT} may call every tool of {STARTER}")
        except TbxError as exc:
            say(f"stopped: {exc}")
            self.notify(str(exc), severity="error", timeout=10)
            self.app.call_from_thread(self.dismiss, ws)
            return
        self.app.call_from_thread(self._done, ws, token)

    def _done(self, ws: Workspace, token: str) -> None:
        modal = SecretOnceModal(f"Token of agent {DEMO_AGENT}", token,
                                "Shown once: tbx keeps only its hash. Put it in the agent's MCP client "
                                "(the Agents screen prints a ready snippet).")
        self.app.push_screen(modal, lambda _result: self.dismiss(ws))
