"""How a toolbox's link to its engine looks: the SSH status of a remote toolbox, in the
theme's colours, and whether a screen may read its engine live now.

Shared by the Toolboxes screen (the LINK column, the detail pane) and the Servers
screen (a remote toolbox whose link is not up shows the vault's data with a note).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import App

from console.tui.widgets.trust_badge import colour, muted

if TYPE_CHECKING:
    from console.model import Toolbox
    from console.tui.app import ConsoleApp
    from console.tui.remote_links import LinkState

LINK_COLOUR = {
    "up": "success", "connecting": "warning", "reconnecting": "warning", "down": "error", "refused": "error",
    "adding": "warning", "removing": "warning", "syncing": "warning",
    "billed": "error", "destroying": "warning", "adopting": "warning",
}
LINK_WIDTH = 12
"""The LINK column's fixed width: a status change never resizes the table."""


def link_word(state: LinkState | None) -> str:
    return state.status if state is not None else "connecting"


def status_text(app: App, word: str) -> Text:
    """A link status (or a busy word) in its colour; a refused host key stands out."""
    style = colour(app, LINK_COLOUR.get(word, "text-muted")) + (" bold" if word == "refused" else "")
    return Text(word, style=style)


def link_text(app: ConsoleApp, box: Toolbox, *, live: bool) -> Text:
    """The LINK cell: the SSH status of a remote toolbox, the engine of a local one."""
    if not live:
        return muted(app, "not checked")
    if box.is_remote:
        return status_text(app, link_word(app.link_status(box.id)))
    engine = app.engine_description.removeprefix("engine: ")
    if engine.startswith("Docker"):
        return Text(engine, style=colour(app, "success"))
    return Text(engine or "checking", style=colour(app, "error" if engine == "none" else "text-muted"))


def ssh_fingerprint(public_key_line: str) -> str:
    """OpenSSH's ``SHA256:…`` of a host key line, as ``console.remote.sshkeys`` computes
    it, without loading asyncssh on the UI thread for a table cell."""
    try:
        blob = base64.b64decode(public_key_line.split()[1], validate=True)
    except (IndexError, binascii.Error, ValueError):
        return "?"
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def tls_fingerprint(cert_pem: str) -> str:
    """``SHA256:AB:CD:…`` of a PEM certificate (the digest of its DER bytes), as
    ``console.remote.tls`` and ``openssl x509 -fingerprint -sha256`` show it."""
    body = "".join(line for line in cert_pem.strip().splitlines() if line and not line.startswith("-----"))
    try:
        digest = hashlib.sha256(base64.b64decode(body, validate=True)).hexdigest().upper()
    except (binascii.Error, ValueError):
        return "?"
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def short_fingerprint(fingerprint: str) -> str:
    """``1psK…NdPI`` of ``SHA256:1psK…NdPI``: enough to tell keys apart in a table; the
    detail shows the whole fingerprint."""
    _algorithm, _sep, digest = fingerprint.partition(":")
    return f"{digest[:4]}…{digest[-4:]}" if len(digest) > 10 else fingerprint


def engine_live(app: ConsoleApp, box: Toolbox) -> bool:
    """Whether the toolbox's engine may be read now: a local one while the console is
    live, a remote one only while its SSH link is up."""
    if not app.live:
        return False
    return not box.is_remote or app.link_endpoint(box.id) is not None


def link_note(app: ConsoleApp, box: Toolbox) -> str:
    """Why a remote toolbox shows the vault's data instead of live data ('' when live)."""
    if not app.live or engine_live(app, box):
        return ""
    state = app.link_status(box.id)
    return f"SSH link {link_word(state)}: showing the vault's data"
