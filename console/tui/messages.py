"""Messages workers and live sources post; screens and widgets render from them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class VaultChanged(Message):
    """The vault was changed (by this console or another process); re-read what you show."""
