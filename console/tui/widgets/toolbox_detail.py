"""The selected toolbox in full: where it runs, its link, what agents pin, what it costs.

Built as Textual ``Content`` from (text, style) pieces: values are never read as markup
(an SSH error or a host name may hold ``[``), and styles are theme variables
(``$foreground-muted``), resolved by Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from console.tui.widgets.toolbox_link import LINK_COLOUR, link_word, ssh_fingerprint, tls_fingerprint

if TYPE_CHECKING:
    from console.model import Orphan, Toolbox
    from console.remote.push_state import PolicyStatus
    from console.tui.app import ConsoleApp
    from console.tui.remote_links import LinkState

LABEL_WIDTH = 10
MUTED = "$foreground-muted"
Part = str | tuple[str, str]


@dataclass(frozen=True)
class DetailFacts:
    """What the screen knows about the toolbox beyond its record."""

    servers: int
    gateway: str
    link: LinkState | None = None
    price_monthly: float | None = None
    engine: str = ""
    busy: str = ""
    """The latest progress line of an add, sync or removal under way."""
    policy: PolicyStatus | None = None
    """Where the remote gateway's policy stands (None for a local toolbox)."""


def link_parts(live: bool, link: LinkState | None) -> list[Part]:
    if not live:
        return [("not checked (nothing live)", MUTED)]
    word = link_word(link)
    bold = " bold" if word == "refused" else ""
    parts: list[Part] = [(word, f"${LINK_COLOUR.get(word, 'foreground-muted')}{bold}")]
    if link is not None and link.error and not link.up:
        parts.append((f"  {link.error}", MUTED))
    if link is not None and link.retry_in is not None:
        parts.append((f"  (trying again in {link.retry_in:.0f} s; s: now)", MUTED))
    return parts


def policy_parts(policy: PolicyStatus) -> list[Part]:
    if not policy.pending:
        return [("current", "$success")]
    if policy.removes:
        parts: list[Part] = [("NOT IN FORCE here: a change that takes access away has not landed", "$error bold")]
    else:
        parts = [("pending: the last change has not landed", "$warning")]
    if policy.error:
        parts.append((f"  {policy.error}", MUTED))
    parts.append(("  (retried in the background; s: now)", MUTED))
    return parts


def facts_lines(box: Toolbox, facts: DetailFacts, *, live: bool) -> list[tuple[str, list[Part]]]:
    """(label, pieces) for each line of the detail; pure, for the widget and its tests."""
    rows: list[tuple[str, list[Part]]] = []
    if not box.is_remote:
        rows.append(("engine", [f"{box.engine_endpoint or 'this machine'} · {facts.engine or 'not checked'}"]))
    else:
        rows.append(("SSH", [box.ssh_target or "-"]))
        rows.append(("link", link_parts(live, facts.link)))
    if box.droplet_id is not None or box.region:
        price = f" · ${facts.price_monthly:.2f}/month" if facts.price_monthly is not None else ""
        rows.append(("droplet", [f"{box.droplet_id or '-'} · {box.region or '-'} · {box.size or '-'}{price}"]))
    if box.ssh_host_key:
        rows.append(("host key", [ssh_fingerprint(box.ssh_host_key), ("  pinned", MUTED)]))
    gateway = facts.gateway
    if box.is_remote and gateway.startswith("https://"):
        rows.append(("gateway", [f"{gateway}/mcp", ("  self-signed TLS: agents pin the certificate below", MUTED)]))
    else:
        rows.append(("gateway", [gateway]))
    if box.gateway_cert:
        rows.append(("TLS cert", [tls_fingerprint(box.gateway_cert)]))
    rows.append(("servers", [str(facts.servers)]))
    if facts.policy is not None and facts.policy.remote:
        rows.append(("policy", policy_parts(facts.policy)))
    if facts.busy:
        rows.append(("now", [(facts.busy, "$warning")]))
    return rows


class ToolboxDetail(Static):
    DEFAULT_CSS = """
    ToolboxDetail { height: auto; padding: 0 1; border: round $panel-lighten-2; border-title-color: $text-muted; }
    """

    def show_orphan(self, orphan: Orphan, hint: str, busy: str = "") -> None:
        """A droplet no toolbox owns."""
        from console.tui.widgets.orphan_row import orphan_lines

        self.border_title = f"{orphan.name} · orphaned droplet"
        self._lines(orphan_lines(orphan, busy), hint)

    def _lines(self, rows: list[tuple[str, list[Part]]], hint: str) -> None:
        lines = [Content.assemble((f"{label:<{LABEL_WIDTH}}", MUTED), *parts) for label, parts in rows]
        lines.append(Content.assemble(" " * LABEL_WIDTH, (hint, MUTED)))
        self.update(Content("\n").join(lines))

    def show(self, box: Toolbox | None, facts: DetailFacts | None, hint: str) -> None:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        if box is None or facts is None:
            self.border_title = None
            self.update(Content.assemble((hint, MUTED)))
            return
        self.border_title = f"{box.name} · {box.kind.value}"
        self._lines(facts_lines(box, facts, live=app.live), hint)
