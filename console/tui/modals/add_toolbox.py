"""``a`` on Toolboxes: a toolbox on this machine, on a new DigitalOcean droplet, or on an
SSH host that runs Docker.

The modal only collects and validates. Adding a remote toolbox takes minutes (a droplet
boots, cloud-init installs Docker, the gateway is deployed), so the add itself runs in
the Toolboxes screen's worker, which shows its progress and asks to confirm an SSH host
key — the console stays usable meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, ContentSwitcher, Input, Label, RadioButton, RadioSet, Select, Static

from console.model import check_name
from console.tui.widgets.add_server_form import FormProblem
from console.tui.widgets.toolbox_droplet_form import DropletForm, DropletOptions
from console.tui.widgets.toolbox_ssh_form import SshForm

KINDS = (("local", "this machine"), ("droplet", "a new DigitalOcean droplet"), ("ssh", "an SSH host"))


@dataclass(frozen=True)
class AddToolboxRequest:
    kind: str
    """local | droplet | ssh"""
    name: str
    engine: str | None = None
    region: str = ""
    size: str = ""
    price_monthly: float | None = None
    token: str | None = field(default=None, repr=False)
    """A DigitalOcean API token to keep in the vault first (None: the vault has one)."""
    target: str = ""
    key_path: Path | None = None

    @property
    def where(self) -> str:
        if self.kind == "droplet":
            return f"droplet {self.size} in {self.region}"
        return self.target if self.kind == "ssh" else self.engine or "this machine"


class AddToolboxModal(ModalScreen[AddToolboxRequest | None]):
    CSS = """
    AddToolboxModal .dialog { width: 96; }
    AddToolboxModal .row { height: auto; }
    AddToolboxModal .row Label { width: 10; padding: 1 1 0 0; }
    AddToolboxModal .row Input { width: 1fr; }
    AddToolboxModal RadioSet { layout: horizontal; width: 1fr; border: none; padding: 0; margin: 1 0; }
    AddToolboxModal RadioSet:focus-within { background: $primary 10%; }
    AddToolboxModal RadioButton { width: auto; margin-right: 2; }
    AddToolboxModal ContentSwitcher { height: auto; }
    AddToolboxModal #local-note { padding: 0 0 0 10; color: $text-muted; }
    AddToolboxModal #problem { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="add_toolbox.cancel", tooltip="Close without adding"),
        Binding("ctrl+s", "submit", "Add", id="add_toolbox.submit", tooltip="Validate and add the toolbox"),
    ]

    def __init__(self, *, taken: Callable[[str], bool], needs_token: bool, kind: str = "local",
                 options: DropletOptions | None = None, name: str = "") -> None:
        """``needs_token``: the vault holds no DigitalOcean API token yet. ``options``:
        regions and sizes already known (otherwise the droplet form loads them)."""
        super().__init__()
        self.taken, self.needs_token, self.kind = taken, needs_token, kind
        self.options, self.initial_name = options, name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Add a toolbox", classes="dialog-title")
            with Horizontal(classes="row"):
                yield Label("Name")
                yield Input(value=self.initial_name, placeholder="letters, digits and -", id="name")
            with RadioSet(id="kind"):
                for kind, label in KINDS:
                    yield RadioButton(label, value=kind == self.kind, id=f"kind-{kind}")
            with ContentSwitcher(initial=self.kind, id="forms"):
                with Vertical(id="local"):
                    with Horizontal(classes="row"):
                        yield Label("Engine")
                        yield Input(placeholder="default: DOCKER_HOST or the local socket", id="engine")
                    yield Static("Servers run on this machine's Docker engine.", id="local-note")
                yield DropletForm(needs_token=self.needs_token, options=self.options, id="droplet")
                yield SshForm(id="ssh")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Add", id="add", variant="primary")

    def on_mount(self) -> None:
        radios = self.query_one(RadioSet)
        for _ in range([kind for kind, _label in KINDS].index(self.kind)):
            radios.action_next_button()  # the highlight starts on the kind shown, not the first
        self.query_one("#name", Input).focus()
        self._label_button()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.kind = (event.pressed.id or "kind-local").removeprefix("kind-")
        self.query_one(ContentSwitcher).current = self.kind
        self.query_one("#problem", Static).update("")
        self._label_button()

    def on_select_changed(self, _event: Select.Changed) -> None:
        self._label_button()

    def _label_button(self) -> None:
        """A droplet is billed: the button says so, with the price, before anything is made."""
        button = self.query_one("#add", Button)
        if self.kind == "droplet":
            price = self.query_one(DropletForm).price
            button.label = f"Create droplet · ${price:.2f}/mo" if price is not None else "Create droplet"
            button.variant = "warning"
        else:
            button.label, button.variant = "Add", "primary"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        try:
            request = self._collect()
        except FormProblem as problem:
            self.query_one("#problem", Static).update(str(problem))
            self.query_one(f"#{problem.field_id}").focus()
            return
        self.dismiss(request)

    def _collect(self) -> AddToolboxRequest:
        name = self.query_one("#name", Input).value.strip()
        try:
            check_name("toolbox", name)
        except Exception as exc:  # noqa: BLE001 - the model's message, shown inline
            raise FormProblem(str(exc), "name") from None
        if self.taken(name):
            raise FormProblem(f"a toolbox named {name} exists; pick another name", "name")
        if self.kind == "droplet":
            choice = self.query_one(DropletForm).collect()
            return AddToolboxRequest("droplet", name, region=choice.region, size=choice.size,
                                     price_monthly=choice.price_monthly, token=choice.token)
        if self.kind == "ssh":
            ssh = self.query_one(SshForm).collect()
            return AddToolboxRequest("ssh", name, target=ssh.target, key_path=ssh.key_path)
        engine = self.query_one("#engine", Input).value.strip() or None
        return AddToolboxRequest("local", name, engine=engine)

    def action_cancel(self) -> None:
        self.dismiss(None)
