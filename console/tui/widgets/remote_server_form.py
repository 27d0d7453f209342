"""The add dialog's form for a remote server: its URL and the headers it needs.

Shown for a catalog entry of a remote server (its documented URL filled in) and for
``CUSTOM``, "Remote server (URL)", where the user gives the URL. Header values are typed
masked and kept in the vault; the add itself is ``add_server``'s (which hands a remote
entry to ``console.services.remote_servers``).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from console.catalog.model import CatalogEntry, RemoteSource, Source
from console.errors import UsageError
from console.tui.widgets.add_server_form import AddRequest, FormProblem, checked_name, free_name

HEADER_ROWS = 3
CUSTOM = CatalogEntry(
    id="remote", title="Remote server (URL)", origin="user",
    description="An MCP server someone else runs, reached over Streamable HTTP (or the older HTTP+SSE): give "
                "its URL and the headers it needs (an API key, say); their values are kept in the vault.",
    source=Source(remote=RemoteSource(url="https://mcp.example.com/mcp")),
)
"""The add dialog's "any remote server" choice; its URL is the user's to give."""


class RemoteServerForm(Vertical):
    DEFAULT_CSS = """
    RemoteServerForm { height: auto; }
    RemoteServerForm .form-section { text-style: bold; color: $primary; margin-top: 1; }
    RemoteServerForm .form-needs { color: $text-muted; }
    RemoteServerForm Label { width: 1fr; margin-top: 1; }
    RemoteServerForm Input.-textual-compact { padding: 0 1; background: $panel-lighten-1; }
    RemoteServerForm Input.-textual-compact:focus { background: $primary 20%; }
    RemoteServerForm .header-row { height: auto; margin-top: 1; }
    RemoteServerForm .header-row Input { width: 1fr; }
    """

    def __init__(self, entry: CatalogEntry, *, taken: Callable[[str], bool]) -> None:
        super().__init__()
        self.entry, self.taken = entry, taken

    def compose(self) -> ComposeResult:
        entry = self.entry
        assert entry.remote is not None
        yield Static(Text(entry.description), classes="form-description")
        yield Static(Text("runs elsewhere: no container, the gateway calls it over HTTP"), classes="form-needs")
        yield Label(Text.assemble(("name", "bold"), (" required", "italic"),
                                  ("  what agents see as the tool prefix", "dim")))
        yield Input(value="" if entry is CUSTOM else free_name(entry.id, self.taken), id="name", compact=True)
        yield Label(Text.assemble(("URL", "bold"), (" required", "italic"),
                                  ("  https://... (plain http only to this machine)", "dim")))
        yield Input(value="" if entry is CUSTOM else entry.remote.url, placeholder="https://mcp.example.com/mcp",
                    id="url", compact=True)
        yield Static("Headers (values kept in the encrypted vault, never shown again)", classes="form-section")
        for index in range(HEADER_ROWS):
            with Horizontal(classes="header-row"):
                yield Input(placeholder="Header-Name", id=f"header-name-{index}", compact=True)
                yield Input(password=True, placeholder="value, typed masked", id=f"header-value-{index}",
                            compact=True)

    def _value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

    def collect(self) -> AddRequest:
        """The request, or ``FormProblem`` naming the first field that is wrong."""
        from console.services.remote_servers import check_header, check_url

        assert self.entry.remote is not None
        name = checked_name(self._value("name"), self.taken)
        try:
            url = check_url(self._value("url"))
        except UsageError as exc:
            raise FormProblem(str(exc), "url") from None
        headers = {}
        for index in range(HEADER_ROWS):
            header = self._value(f"header-name-{index}")
            value = self.query_one(f"#header-value-{index}", Input).value
            if not header and not value:
                continue
            try:
                check_header(header, value)
            except UsageError as exc:
                raise FormProblem(str(exc), f"header-name-{index}" if value else f"header-value-{index}") from None
            headers[header] = value
        remote = self.entry.remote.model_copy(update={"url": url})
        entry = self.entry.model_copy(update={"source": Source(remote=remote)})
        return AddRequest(entry, name, secrets=headers)
