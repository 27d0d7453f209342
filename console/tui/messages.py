"""Messages workers and live sources post; screens and widgets render from them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from console.workspace import Commit


@dataclass
class VaultCommitted(Message, bubble=False):
    """To the app, from the thread that changed the vault (or read another process's
    change): the app keeps what follows the vault in step and tells the screens."""

    commit: Commit


@dataclass
class VaultChanged(Message, bubble=False):
    """The vault was changed (by this console or another process); re-read what you show."""

    def can_replace(self, message: Message) -> bool:
        # A burst of changes queued behind each other is read once, at the last.
        return isinstance(message, VaultChanged)
