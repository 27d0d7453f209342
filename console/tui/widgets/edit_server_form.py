"""What can change on a server without adding it again — plain env, mounts, limits,
egress — as the add form's fields (same look, same checks), filled with its settings.

Secrets and the bound account are not here: their values never come back out of the
vault, so changing them means removing the server and adding it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Static

from console.catalog.model import CatalogEntry
from console.model import Limits, Mount, ServerInstance
from console.tui.widgets.add_server_form import AddServerForm, FormProblem, egress_fields, host_folder
from console.tui.widgets.add_server_form import _label as field_label

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class EditRequest:
    """A validated edit: what ``console.services.server_edit.edit_server`` is called with."""

    env: dict[str, str]
    mounts: list[Mount]
    limits: Limits
    network: Literal["none", "egress"] = "none"
    egress: list[str] = field(default_factory=list)


class EditServerForm(AddServerForm):
    """An ``AddServerForm`` (its styles, ``_value`` and limits check) with the edit's fields."""

    def __init__(self, entry: CatalogEntry, server: ServerInstance, *, check_paths: bool) -> None:
        super().__init__(entry, taken=lambda _name: False, check_paths=check_paths)
        self.server = server
        needs = {need.target: need for need in entry.mounts}
        self.targets = list(needs) + [m.target for m in server.mounts if m.target not in needs]
        """Mount rows: what the catalog entry asks for, then any other mount the server has."""
        self.extra_env = [key for key in server.env if key not in {var.name for var in entry.env}]

    def compose(self) -> ComposeResult:
        entry, server = self.entry, self.server
        yield Static(Text(f"{entry.title}: {entry.description}"), classes="form-description")
        yield Static("Environment", classes="form-section")
        for var in entry.env:
            yield Label(field_label(var.name, var.required, var.description, var.default))
            yield Input(value=server.env.get(var.name, ""), id=f"env-{var.name}", compact=True)
        for key in self.extra_env:
            yield Label(field_label(key, False, "set when the server was added; empty removes it"))
            yield Input(value=server.env[key], id=f"env-{key}", compact=True)
        yield Label(field_label("new variable", False, "NAME=value"))
        yield Input(placeholder="NAME=value", id="env-new", compact=True)
        if self.targets:
            yield Static("Folders from this machine", classes="form-section")
        mounted = {m.target: m for m in server.mounts}
        needs = {need.target: need for need in entry.mounts}
        for index, target in enumerate(self.targets):
            need, mount = needs.get(target), mounted.get(target)
            yield Label(field_label(target, need.required if need else False,
                                    need.description if need else "empty removes it"))
            with Horizontal(classes="mount-row"):
                yield Input(value=mount.source if mount else "", placeholder="/path/on/this/machine",
                            id=f"mount-{index}", compact=True)
                read_only = mount.read_only if mount else bool(need and need.read_only)
                yield Checkbox("read-only", read_only, id=f"ro-{index}", compact=True)
        yield Static("Network and limits", classes="form-section")
        yield from egress_fields(server.egress, server.network == "egress")
        with Horizontal(classes="limits-row"):
            for key, label, value in (("cpus", "CPUs", f"{server.limits.cpus:g}"),
                                      ("memory", "memory MiB", str(server.limits.memory_mb)),
                                      ("pids", "processes", str(server.limits.pids))):
                with Vertical():
                    yield Label(label)
                    yield Input(value=value, id=f"limit-{key}", compact=True)

    def collect(self) -> EditRequest:  # type: ignore[override] - an edit, not an add
        """The edit, or ``FormProblem`` naming the first field that is wrong."""
        env: dict[str, str] = {}
        for var in self.entry.env:
            value = self._value(f"env-{var.name}")
            if var.required and not value:
                raise FormProblem(f"{var.name} is required: {var.description or 'give a value'}", f"env-{var.name}")
            if value:
                env[var.name] = value
        for key in self.extra_env:
            if value := self._value(f"env-{key}"):
                env[key] = value
        if new := self._value("env-new"):
            name, sep, value = new.partition("=")
            if not sep or not ENV_NAME.match(name.strip()):
                raise FormProblem("a new variable is NAME=value, the name letters, digits and _", "env-new")
            if name.strip() in self.server.secret_refs or name.strip() in {s.name for s in self.entry.secrets}:
                raise FormProblem(f"{name.strip()} is a secret: remove the server and add it again to change it",
                                  "env-new")
            env[name.strip()] = value
        mounts = []
        needs = {need.target: need for need in self.entry.mounts}
        for index, target in enumerate(self.targets):
            source = self._value(f"mount-{index}")
            need = needs.get(target)
            if not source:
                if need is not None and need.required:
                    raise FormProblem(f"{target} needs a folder: {need.description or 'a host path'}",
                                      f"mount-{index}")
                continue
            path = host_folder(source, f"mount-{index}", self.check_paths)
            mounts.append(Mount(source=str(path), target=target,
                                read_only=self.query_one(f"#ro-{index}", Checkbox).value))
        return EditRequest(env, mounts, self._limits(), *self._egress())
