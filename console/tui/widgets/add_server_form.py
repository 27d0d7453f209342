"""What one catalog entry needs, as a form: name, env, secrets (masked), mounts, limits.

``collect()`` validates everything before anything starts and returns an ``AddRequest``
or the first problem, worded so the user knows which field to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Static

from console.catalog.model import CatalogEntry
from console.errors import UsageError
from console.model import Connection, Limits, Mount, check_name
from console.tui.widgets.connection_picker import ConnectionPicker, binding_problem


@dataclass
class AddRequest:
    """A validated add: what ``console.services.servers.add_server`` is called with."""

    entry: CatalogEntry
    name: str
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """Secret values, only ever handed to ``add_server`` (which puts them in the vault)."""
    mounts: list[Mount] = field(default_factory=list)
    limits: Limits | None = None
    connection: str | None = None
    """Id of the OAuth connection the server acts as (its token is injected at start)."""
    network: Literal["none", "egress"] = "none"
    egress: list[str] = field(default_factory=list)
    """The hosts it may reach through its gateway's proxy."""


class FormProblem(Exception):
    """A field that does not validate; ``field_id`` is the input to focus."""

    def __init__(self, message: str, field_id: str) -> None:
        super().__init__(message)
        self.field_id = field_id


def host_folder(source: str, field_id: str, must_exist: bool) -> Path:
    """The folder typed into a mount field, as an absolute path (``~`` expanded)."""
    path = Path(source).expanduser()
    if not path.is_absolute():
        raise FormProblem(f"{source!r} is not an absolute path (start it with / or ~)", field_id)
    if must_exist and not path.is_dir():
        raise FormProblem(f"{path} is not a folder on this machine", field_id)
    return path


def needs_summary(entry: CatalogEntry) -> str:
    """One line of what an entry asks for, e.g. ``folder /repo · secret GITHUB_TOKEN · reaches api.github.com +2``."""
    if entry.remote is not None:
        return "remote: a URL, and headers if it needs any"
    parts = [f"folder {m.target}" for m in entry.mounts]
    parts += [f"secret {s.name}" for s in entry.secrets]
    parts += [f"env {e.name}" for e in entry.env if e.required]
    optional = sum(1 for e in entry.env if not e.required)
    if optional:
        parts.append(f"{optional} optional env")
    if entry.oauth:
        parts.append(f"{entry.oauth.provider} sign-in")
    if entry.network == "egress":
        more = f" +{len(entry.egress) - 1}" if len(entry.egress) > 1 else ""
        parts.append(f"reaches {entry.egress[0]}{more}" if entry.egress else "network (hosts to give)")
    return " · ".join(parts) or "nothing to fill in"


def egress_fields(hosts: list[str], on: bool) -> ComposeResult:
    """The network part of the add and edit forms: whether the server may reach anything
    (through its gateway's allow-list proxy; its container stays on network none), and what."""
    yield Checkbox("egress: may reach the hosts below, through the gateway's allow-list proxy", on,
                   id="egress-on", compact=True)
    yield Label(_label("hosts", False, "HOST[:PORT] or *.DOMAIN, comma-separated; without a port 443 and 80"))
    yield Input(value=", ".join(hosts), placeholder="none: every attempt is refused and recorded",
                id="egress-hosts", compact=True)


def _label(name: str, required: bool, description: str, default: str | None = None) -> Text:
    text = Text(name, style="bold")
    text.append(" required" if required else " optional", style="italic")
    if description:
        text.append(f"  {description}", style="dim")
    if default is not None:
        text.append(f"  (default {default})", style="dim")
    return text


def free_name(base: str, taken: Callable[[str], bool]) -> str:
    """``base`` (a catalog id), or ``base-2``, ``base-3``... when the toolbox has that name already."""
    name, n = base, 2
    while taken(name):
        name, n = f"{base}-{n}", n + 1
    return name


def checked_name(name: str, taken: Callable[[str], bool]) -> str:
    """A valid server name the toolbox does not have yet, or ``FormProblem`` on ``#name``."""
    try:
        check_name("server", name)
    except UsageError as exc:
        raise FormProblem(str(exc), "name") from None
    if taken(name):
        raise FormProblem(f"this toolbox already has a server named {name!r}: pick another name", "name")
    return name


class AddServerForm(Vertical):
    DEFAULT_CSS = """
    AddServerForm { height: auto; }
    AddServerForm .form-description { margin-bottom: 0; }
    AddServerForm .form-needs { color: $text-muted; }
    AddServerForm .form-section { text-style: bold; color: $primary; margin-top: 1; }
    AddServerForm .form-note { color: $warning; }
    AddServerForm Label { width: 1fr; margin-top: 1; }
    /* Fields are Textual's compact ones: one row, focused or not (a hand-made "height: 1;
       border: none" lost to Input:focus's tall border, and the row left showed only border). */
    AddServerForm Input.-textual-compact { padding: 0 1; background: $panel-lighten-1; }
    AddServerForm Input.-textual-compact:focus { background: $primary 20%; }
    AddServerForm Checkbox.-textual-compact { padding: 0 1; margin-left: 1; }
    AddServerForm .mount-row { height: auto; }
    AddServerForm .mount-row Input { width: 1fr; }
    AddServerForm .mount-row Checkbox { width: auto; }
    AddServerForm .limits-row { height: auto; }
    AddServerForm .limits-row Vertical { height: auto; width: 1fr; }
    """

    def __init__(self, entry: CatalogEntry, *, taken: Callable[[str], bool], check_paths: bool,
                 connections: Sequence[Connection] = ()) -> None:
        """``taken(name)`` says whether the toolbox has a server of that name already;
        ``check_paths``: mount sources are folders on this machine (a local toolbox);
        ``connections``: the user's OAuth accounts (those of the entry's provider are offered)."""
        super().__init__()
        self.entry, self.taken, self.check_paths = entry, taken, check_paths
        self.connections = list(connections)

    def compose(self) -> ComposeResult:
        entry = self.entry
        yield Static(Text(entry.description), classes="form-description")
        yield Static(Text(f"needs: {needs_summary(entry)}"), classes="form-needs")
        yield Label(_label("name", True, "what agents see as the tool prefix"))
        yield Input(value=self._free_name(), id="name", compact=True)
        if entry.env:
            yield Static("Environment", classes="form-section")
        for var in entry.env:
            yield Label(_label(var.name, var.required, var.description, var.default))
            yield Input(value=var.default or "", id=f"env-{var.name}", compact=True)
        if entry.oauth:
            yield from self._account()
        token = entry.oauth.token_env if entry.oauth else None
        if entry.secrets:
            yield Static("Secrets (kept in the encrypted vault, never shown again)", classes="form-section")
        for var in entry.secrets:
            if var.name == token and self._offered():
                yield Label(_label(var.name, False, "only without a connection: a token you made yourself"))
            else:
                yield Label(_label(var.name, var.required, var.description))
            yield Input(password=True, id=f"secret-{var.name}", placeholder="typed masked", compact=True)
        if entry.mounts:
            yield Static("Folders from this machine", classes="form-section")
        for index, need in enumerate(entry.mounts):
            yield Label(_label(need.target, need.required, need.description))
            with Horizontal(classes="mount-row"):
                yield Input(placeholder="/path/on/this/machine", id=f"mount-{index}", compact=True)
                yield Checkbox("read-only", need.read_only, id=f"ro-{index}", compact=True)
        yield Static("Network and limits", classes="form-section")
        yield from egress_fields(entry.egress, entry.network == "egress")
        with Horizontal(classes="limits-row"):
            for key, label, value in (("cpus", "CPUs", f"{entry.limits.cpus:g}"),
                                      ("memory", "memory MiB", str(entry.limits.memory_mb)),
                                      ("pids", "processes", str(entry.limits.pids))):
                with Vertical():
                    yield Label(label)
                    yield Input(value=value, id=f"limit-{key}", compact=True)

    def _account(self) -> ComposeResult:
        """The connection to bind, or why there is none to pick."""
        need = self.entry.oauth
        assert need is not None
        yield Static("Account", classes="form-section")
        scopes = ", ".join(need.scopes) or "no scopes"
        if self._offered():
            yield Static(Text(f"Signs in with {need.provider} ({scopes}). The server acts as the connection you "
                              "pick; its token is refreshed for it."), classes="form-needs")
            yield Label(_label("connection", False, "or none, and give a token below"))
            yield ConnectionPicker(self.connections, need, id="connection")
        else:
            instead = (f"give a token as the secret {need.token_env}" if need.token_env else
                       "mount a folder with the credentials file")
            yield Static(Text(f"Signs in with {need.provider} ({scopes}). No {need.provider} connection yet: connect "
                              f"one on Connections (8) and bind it here, or {instead}."), classes="form-note")

    def _offered(self) -> bool:
        need = self.entry.oauth
        return need is not None and any(c.provider == need.provider for c in self.connections)

    def _connection(self) -> Connection | None:
        pickers = self.query(ConnectionPicker)
        return pickers.first().chosen if pickers else None

    def _free_name(self) -> str:
        return free_name(self.entry.id, self.taken)

    def _value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

    def collect(self) -> AddRequest:
        """The request, or ``FormProblem`` naming the first field that is wrong."""
        entry = self.entry
        name = checked_name(self._value("name"), self.taken)
        env = {}
        for var in entry.env:
            value = self._value(f"env-{var.name}")
            if var.required and not value:
                raise FormProblem(f"{var.name} is required: {var.description or 'give a value'}", f"env-{var.name}")
            if value:
                env[var.name] = value
        connection = self._connection()
        token = entry.oauth.token_env if entry.oauth else None
        secrets = {}
        for var in entry.secrets:
            value = self.query_one(f"#secret-{var.name}", Input).value
            if var.required and not value and not (connection and var.name == token):
                why = f"pick a connection above, or give a token: {var.description}" if var.name == token else (
                    var.description or "give a value")
                raise FormProblem(f"{var.name} is required: {why}", f"secret-{var.name}")
            if value:
                secrets[var.name] = value
        if connection is not None and entry.oauth is not None:
            if token and token in secrets:
                raise FormProblem(f"give either a connection or a token as {token}, not both: empty one of them",
                                  f"secret-{token}")
            problem = binding_problem(connection, entry.oauth, entry.id)
            if problem:
                raise FormProblem(problem, "connection")
        mounts = []
        for index, need in enumerate(entry.mounts):
            source = self._value(f"mount-{index}")
            if not source:
                if need.required:
                    raise FormProblem(f"{need.target} needs a folder: {need.description or 'a host path'}",
                                      f"mount-{index}")
                continue
            path = host_folder(source, f"mount-{index}", self.check_paths)
            read_only = self.query_one(f"#ro-{index}", Checkbox).value
            mounts.append(Mount(source=str(path), target=need.target, read_only=read_only))
        if entry.oauth and entry.oauth.token_file and connection is None and not mounts:
            raise FormProblem(f"{entry.id} signs in with {entry.oauth.provider}: pick a connection, or give the "
                              "folder with its credentials file", "connection" if self.query(ConnectionPicker)
                              else "mount-0")
        network, hosts = self._egress()
        return AddRequest(entry, name, env, secrets, mounts, self._limits(),
                          connection.id if connection is not None else None, network, hosts)

    def _egress(self) -> tuple[Literal["none", "egress"], list[str]]:
        """Whether the server gets the proxy, and the hosts it may reach through it."""
        from console.egress.allowlist import AllowList, EgressError

        text = self._value("egress-hosts")
        try:
            hosts = list(AllowList.parse(text.replace(",", " ").split()).entries)
        except EgressError as exc:
            raise FormProblem(str(exc), "egress-hosts") from None
        on = self.query_one("#egress-on", Checkbox).value or bool(hosts)
        return ("egress" if on else "none"), hosts

    def _limits(self) -> Limits:
        raw = {"cpus": self._value("limit-cpus"), "memory_mb": self._value("limit-memory"),
               "pids": self._value("limit-pids")}
        try:
            return Limits.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = str(first["loc"][0])
            field_id = {"cpus": "limit-cpus", "memory_mb": "limit-memory", "pids": "limit-pids"}[key]
            return_text = {"cpus": "CPUs", "memory_mb": "memory MiB", "pids": "processes"}[key]
            raise FormProblem(f"{return_text}: {first['msg'].lower()}", field_id) from None
