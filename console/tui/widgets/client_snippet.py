"""An agent's MCP client config (Claude Desktop, Cursor, VS Code), its token a placeholder."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.widgets import Static

from console.gateway.clientconfig import CLIENTS, render


def placeholder(agent: str) -> str:
    """What stands for the token: it is never kept, so it cannot be shown (rotate to get one)."""
    return f"PASTE-THE-TOKEN-OF-{agent}"


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

    def text(self) -> str | None:
        """The snippet as it would be copied, token placeholder included."""
        if self.agent is None:
            return None
        return render(self.client, self.agent, self.url, placeholder(self.agent))

    def show(self, agent: str | None, url: str) -> None:
        self.agent, self.url = agent, url
        self._draw()

    def cycle(self, step: int) -> str:
        self.client = CLIENTS[(CLIENTS.index(self.client) + step) % len(CLIENTS)]
        self._draw()
        return self.client

    def _draw(self) -> None:
        tabs: list[tuple[str, str]] = []
        for client in CLIENTS:
            tabs += [(f" {client} ", "bold $foreground on $primary 40%" if client == self.client else "$foreground-muted"), (" ", "")]
        tabs.append(("  [ ] switch client · c copy", "$foreground-muted"))
        self.query_one("#clients", Static).update(Content.assemble(*tabs))
        snippet = self.text()
        self.query_one("#snippet", Static).update(
            highlight(snippet, language="json") if snippet else Content.styled("no agent selected", "$foreground-muted"))
        self.query_one("#snippet-note", Static).update(
            "" if self.agent is None else
            f"The token is shown only once. Paste {self.agent}'s token where it says PASTE-…, "
            f"or rotate (r) to get a new one shown once with this config filled in.")
