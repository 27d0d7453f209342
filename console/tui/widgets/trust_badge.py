"""How trust states, item kinds, finding severities and server health look, in the theme's colours.

Cells and detail panes are Rich ``Text`` (never markup: tool descriptions are written
by servers, and a ``[`` in one must not restyle the console).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import App

TRUST_COLOUR = {"approved": "success", "pending": "warning", "changed": "accent", "blocked": "error"}
TRUST_MARK = {"approved": "✓", "pending": "?", "changed": "Δ", "blocked": "✗"}
SEVERITY_COLOUR = {"high": "error", "medium": "warning", "low": "text-muted"}
HEALTH_COLOUR = {
    "healthy": "success", "starting": "warning", "adding": "warning", "stopping": "warning",
    "restarting": "warning", "removing": "warning", "queued": "warning", "image": "warning", "creating": "warning",
    "connecting": "warning", "ready": "success",
    "unresponsive": "error", "down": "error", "stopped": "text-muted", "unknown": "text-muted",
}


def colour(app: App, variable: str) -> str:
    """A theme variable (``success``, ``$error``...) as a colour Rich understands."""
    return app.theme_variables.get(variable.lstrip("$"), "default")


def trust_text(app: App, trust: str) -> Text:
    style = colour(app, TRUST_COLOUR.get(trust, "text-muted"))
    bold = " bold" if trust in ("changed", "blocked") else ""
    return Text(f"{TRUST_MARK.get(trust, ' ')} {trust}", style=style + bold)


def kind_text(app: App, kind: str) -> Text:
    """An item's kind: tools muted, the other kinds in the secondary colour, to stand out among tools."""
    return Text(kind, style=colour(app, "text-muted" if kind == "tool" else "secondary"))


def severity_text(app: App, severity: str) -> Text:
    bold = " bold" if severity == "high" else ""
    return Text(severity, style=colour(app, SEVERITY_COLOUR.get(severity, "text-muted")) + bold)


def health_text(app: App, health: str) -> Text:
    return Text(health, style=colour(app, HEALTH_COLOUR.get(health, "text-muted")))


def muted(app: App, text: str) -> Text:
    return Text(text, style=colour(app, "text-muted"))
