"""An agent's MCP client config, one client at a time, its token a reference or a placeholder."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.widgets import Static

from console.gateway.clientconfig import CLIENTS, ClientConfig, build


class ClientSnippet(Vertical):
    """Client tabs on top (switched with [ and ] on the screen), the JSON below."""

    DEFAULT_CSS = """
    ClientSnippet { height: 1fr; }
    ClientSnippet #clients { height: 1; padding: 0 1; }
    ClientSnippet VerticalScroll { height: 1fr; padding: 0 1; }
    ClientSnippet #snippet-note { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.client = CLIENTS[0]
        self.agent: str | None = None
        self.url = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="clients")
        with VerticalScroll():
            yield Static("", id="snippet")
        yield Static("", id="snippet-note")

    def config(self) -> ClientConfig | None:
        """The config as it would be copied: the token is never kept, so it cannot be in it."""
        if self.agent is None:
            return None
        return build(self.client, self.agent, self.url)

    def text(self) -> str | None:
        config = self.config()
        return config.text if config else None

    def show(self, agent: str | None, url: str) -> None:
        self.agent, self.url = agent, url
        self._draw()

    def cycle(self, step: int) -> str:
        self.client = CLIENTS[(CLIENTS.index(self.client) + step) % len(CLIENTS)]
        self._draw()
        return self.client

    def _draw(self) -> None:
        # One client named at a time: eight tabs do not fit the panel at 80 columns.
        position = f" {CLIENTS.index(self.client) + 1}/{len(CLIENTS)}"
        self.query_one("#clients", Static).update(Content.assemble(
            (f" {self.client} ", "bold $foreground on $primary 40%"), (position, "$foreground-muted"),
            ("  [ ] switch", "$foreground-muted")))
        config = self.config()
        self.query_one("#snippet", Static).update(
            highlight(config.text, language=config.fmt if config.fmt != "text" else None) if config
            else Content.styled("no agent selected", "$foreground-muted"))
        self.query_one("#snippet-note", Static).update(
            "" if config is None else tui_note(config.token_note))


def tui_note(note: str) -> str:
    """The CLI's note as the console says it: rotating is a key here, not a flag."""
    note = note.replace("run with --rotate", "rotate (r)").replace("--rotate", "rotating (r)")
    return note[:1].upper() + note[1:] + "."
