"""Messages workers and live sources post; screens and widgets render from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from console.runtime.streams import Stats
    from console.runtime.supervisor import Health


@dataclass
class VaultChanged(Message):
    """The vault was changed (by this console or another process); re-read what you show."""


@dataclass
class HealthChanged(Message):
    health: Health


@dataclass
class StatsSample(Message):
    server_id: str
    stats: Stats


@dataclass
class EngineChecked(Message):
    reachable: bool
    description: str
