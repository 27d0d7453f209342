"""The edit dialog's form for a remote server: its URL and its headers' names.

A header's value never comes back out of the vault, so a row shows its name only: an
empty value keeps the value (a new name renames it), a value typed replaces it, an empty
name removes it. The last row adds a header. The edit itself is
``console.services.remote_edit``'s, which tries the new settings before keeping them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Static

from console.errors import UsageError
from console.model import ServerInstance
from console.tui.widgets.add_server_form import FormProblem
from console.tui.widgets.remote_server_form import RemoteServerForm


@dataclass
class RemoteEditRequest:
    """What ``edit_remote_server`` is called with (None: the URL stays)."""

    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    rename: dict[str, str] = field(default_factory=dict)


class EditRemoteForm(RemoteServerForm):
    """``RemoteServerForm``'s look, filled with the server's URL and header names."""

    def __init__(self, server: ServerInstance) -> None:
        super().__init__(None, taken=lambda _name: False)  # type: ignore[arg-type] - no catalog entry here
        self.server = server
        self.names = sorted(server.secret_refs)

    def compose(self) -> ComposeResult:
        yield Label(Text.assemble(("URL", "bold"), (" required", "italic"),
                                  ("  https://... (another origin drops its sign-in)", "dim")))
        yield Input(value=self.server.url or "", id="url", compact=True)
        yield Static("Headers (an empty value keeps the one in the vault; an empty name removes it)",
                     classes="form-section")
        for index, name in enumerate([*self.names, ""]):
            with Horizontal(classes="header-row"):
                yield Input(value=name, placeholder="Header-Name", id=f"header-name-{index}", compact=True)
                yield Input(password=True, placeholder="kept" if name else "value, typed masked",
                            id=f"header-value-{index}", compact=True)

    def collect(self) -> RemoteEditRequest:  # type: ignore[override] - an edit, not an add
        """The edit, or ``FormProblem`` naming the first field that is wrong."""
        from console.services.remote_servers import check_header, check_url

        try:
            url = check_url(self._value("url"))
        except UsageError as exc:
            raise FormProblem(str(exc), "url") from None
        request = RemoteEditRequest(url if url != self.server.url else None)
        for index, old in enumerate([*self.names, None]):
            name = self._value(f"header-name-{index}")
            value = self.query_one(f"#header-value-{index}", Input).value
            if not name:
                if value:
                    raise FormProblem("a header needs a name", f"header-name-{index}")
                if old is not None:
                    request.remove.append(old)
                continue
            try:
                check_header(name, value or "kept")
                if old is None and not value:
                    check_header(name, value)
            except UsageError as exc:
                raise FormProblem(str(exc), f"header-name-{index}" if value else f"header-value-{index}") from None
            if value:
                request.headers[name] = value
                if old is not None and name != old:
                    request.remove.append(old)
            elif old is not None and name != old:
                request.rename[old] = name
        return request
