"""The console's SSH links: one long-lived tunnel per remote toolbox, for the app's life.

A tunnel is opened in a thread worker (connecting can take seconds), kept while its
toolbox exists, and replaced when the toolbox's SSH address, host key pin or key
changes. Its status changes arrive on the tunnel's own thread and come to the UI as a
``LinkChanged`` message; ``RemoteLinks`` keeps the latest ``LinkState`` per toolbox for
screens to read. A first connection that fails for a reason that may pass (no answer,
a timeout) is retried with backoff; a refused key or a changed host key is not, until
the user asks (``retry``). asyncssh is imported only in the workers: start-up pays for
it only when a remote toolbox exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from textual.message import Message

from console.errors import TbxError

if TYPE_CHECKING:
    from textual.timer import Timer

    from console.model import Toolbox
    from console.remote.tunnel import Tunnel
    from console.tui.app import ConsoleApp

RETRY_FIRST = 5.0
RETRY_MAX = 60.0

Identity = tuple[str | None, str | None, str | None]
"""What a tunnel was opened to: SSH target, pinned host key, key secret id."""


@dataclass(frozen=True)
class LinkState:
    """Where one remote toolbox's SSH link is; ``status`` is a ``LinkStatus`` value
    (connecting | up | reconnecting | down | refused)."""

    toolbox_id: str
    status: str
    error: str = ""
    fingerprint: str = ""
    """The host key's SHA256 fingerprint, once connected."""
    endpoint: str | None = None
    """The tunnel's local engine socket (``unix://…``), once opened."""
    retry_in: float | None = None
    """Seconds until the next attempt after a failed first connection; None: no retry."""
    since: float = field(default_factory=time.monotonic)

    @property
    def up(self) -> bool:
        return self.status == "up"


@dataclass
class LinkChanged(Message):
    """Posted (from the tunnel's thread) to the app when a tunnel's status changes."""

    state: LinkState
    tunnel: object


def state_of(toolbox_id: str, tunnel: Tunnel, status: str | None = None) -> LinkState:
    status = status or tunnel.status.value
    return LinkState(toolbox_id, status, "" if status == "up" else tunnel.last_error, tunnel.fingerprint,
                     tunnel.endpoint)


def identity(box: Toolbox) -> Identity:
    return box.ssh_target, box.ssh_host_key, box.ssh_key


class RemoteLinks:
    """Owned by the app; every method but ``_connect`` runs on the UI thread."""

    def __init__(self, app: ConsoleApp, on_change: Callable[[LinkState], None]) -> None:
        self.app = app
        self.on_change = on_change
        self.tunnels: dict[str, Tunnel] = {}
        self.states: dict[str, LinkState] = {}
        self._wanted: dict[str, Identity] = {}
        self._opening: dict[str, int] = {}
        """Toolbox id -> the attempt being made; a result for another attempt is dropped."""
        self._attempts = itertools.count(1)
        self._retry: dict[str, Timer] = {}
        self._delay: dict[str, float] = {}
        self.closed = False

    # -- reading ---------------------------------------------------------------------------

    def state(self, toolbox_id: str) -> LinkState | None:
        return self.states.get(toolbox_id)

    def usable(self, toolbox_id: str) -> Tunnel | None:
        """The toolbox's tunnel if its link is up now."""
        tunnel = self.tunnels.get(toolbox_id)
        state = self.states.get(toolbox_id)
        return tunnel if tunnel is not None and state is not None and state.up else None

    def endpoint(self, toolbox_id: str) -> str | None:
        """The tunnel's local engine socket: stable across reconnects of the link."""
        tunnel = self.tunnels.get(toolbox_id)
        return tunnel.endpoint if tunnel is not None else None

    # -- following the vault -------------------------------------------------------------------

    def follow(self, boxes: Iterable[Toolbox]) -> None:
        """Open links to new remote toolboxes, close those of removed or re-addressed ones."""
        if self.closed:
            return
        wanted = {box.id: identity(box) for box in boxes if box.is_remote}
        for toolbox_id, was in list(self._wanted.items()):
            if wanted.get(toolbox_id) != was:
                self._forget(toolbox_id)
        self._wanted = wanted
        for toolbox_id in wanted:
            if self._idle(toolbox_id):
                self._open(toolbox_id)

    def _idle(self, toolbox_id: str) -> bool:
        """No tunnel, no attempt under way or planned, and not given up on."""
        if toolbox_id in self.tunnels or toolbox_id in self._opening or toolbox_id in self._retry:
            return False
        state = self.states.get(toolbox_id)
        return state is None or state.status not in ("down", "refused")

    def retry(self, toolbox_id: str) -> bool:
        """Connect again now (the user asked). False when the link is up or on its way."""
        state = self.states.get(toolbox_id)
        if toolbox_id not in self._wanted or toolbox_id in self._opening:
            return False
        if state is not None and state.status in ("up", "connecting", "reconnecting"):
            return False
        self._forget(toolbox_id)
        self._open(toolbox_id)
        return True

    def _forget(self, toolbox_id: str) -> None:
        self._opening.pop(toolbox_id, None)
        self._delay.pop(toolbox_id, None)
        self.states.pop(toolbox_id, None)
        timer = self._retry.pop(toolbox_id, None)
        if timer is not None:
            timer.stop()
        tunnel = self.tunnels.pop(toolbox_id, None)
        if tunnel is not None:
            self._close_later(tunnel)

    def _close_later(self, tunnel: Tunnel) -> None:
        self.app.run_worker(tunnel.close, thread=True, group="ssh-link-close", exit_on_error=False,
                            name="close SSH link")

    # -- connecting --------------------------------------------------------------------------

    def _open(self, toolbox_id: str) -> None:
        attempt = next(self._attempts)
        self._opening[toolbox_id] = attempt
        self._set(LinkState(toolbox_id, "connecting"))
        self.app.run_worker(partial(self._connect, toolbox_id, attempt), thread=True, group="ssh-link",
                            exit_on_error=False, name=f"SSH link to toolbox {toolbox_id}")

    def _connect(self, toolbox_id: str, attempt: int) -> None:
        """Thread worker: connect, then hand the tunnel (or the failure) to the UI thread."""
        from console.remote.links import open_tunnel
        from console.remote.ssh import HostKeyChanged, SshAuthFailed, SshError

        box = self.app.backend.workspace.repos.toolboxes.get(toolbox_id)
        if box is None:
            return
        try:
            tunnel = open_tunnel(self.app.backend.workspace, box)
        except HostKeyChanged as exc:
            self._hand_over(self._failed, toolbox_id, attempt, "refused", str(exc), False)
            return
        except SshAuthFailed as exc:
            self._hand_over(self._failed, toolbox_id, attempt, "down", str(exc), False)
            return
        except SshError as exc:  # no answer, a timeout: the host may come up
            self._hand_over(self._failed, toolbox_id, attempt, "down", str(exc), True)
            return
        except TbxError as exc:  # the key is missing from the vault, a bad address: retrying cannot help
            self._hand_over(self._failed, toolbox_id, attempt, "down", str(exc), False)
            return
        # Before the hand-over, so no change is missed; changes before it are read by _opened.
        tunnel.on_status(partial(self._tunnel_status, toolbox_id, tunnel))
        if self.closed or not self._hand_over(self._opened, toolbox_id, attempt, tunnel):
            tunnel.close()

    def _hand_over(self, callback: Callable[..., object], *args: object) -> bool:
        try:
            self.app.call_from_thread(callback, *args)
        except RuntimeError:  # the console has exited meanwhile
            return False
        return True

    def _tunnel_status(self, toolbox_id: str, tunnel: Tunnel, status: object) -> None:
        """On the tunnel's thread: post, never block (a blocking call here would stall the link)."""
        self.app.post_message(LinkChanged(state_of(toolbox_id, tunnel, str(status)), tunnel))

    def _opened(self, toolbox_id: str, attempt: int, tunnel: Tunnel) -> None:
        if self.closed or self._opening.get(toolbox_id) != attempt:
            self._close_later(tunnel)  # the toolbox went or changed while connecting
            return
        del self._opening[toolbox_id]
        self._delay.pop(toolbox_id, None)
        self.tunnels[toolbox_id] = tunnel
        self._set(state_of(toolbox_id, tunnel))

    def _failed(self, toolbox_id: str, attempt: int, status: str, error: str, retry: bool) -> None:
        if self.closed or self._opening.get(toolbox_id) != attempt:
            return
        del self._opening[toolbox_id]
        delay = self._delay.get(toolbox_id, RETRY_FIRST) if retry else None
        self._set(LinkState(toolbox_id, status, error, retry_in=delay))
        if delay is not None:
            self._delay[toolbox_id] = min(delay * 2, RETRY_MAX)
            self._retry[toolbox_id] = self.app.set_timer(max(RETRY_FIRST, delay), partial(self._retry_due, toolbox_id))

    def _retry_due(self, toolbox_id: str) -> None:
        self._retry.pop(toolbox_id, None)
        if toolbox_id in self._wanted and toolbox_id not in self.tunnels and toolbox_id not in self._opening:
            self._open(toolbox_id)

    # -- changes -----------------------------------------------------------------------------

    def reported(self, message: LinkChanged) -> None:
        """A ``LinkChanged`` reached the app: keep it if it is about a tunnel still in use."""
        if self.tunnels.get(message.state.toolbox_id) is message.tunnel:
            self._set(message.state)

    def _set(self, state: LinkState) -> None:
        self.states[state.toolbox_id] = state
        self.on_change(state)

    async def close_all(self) -> None:
        """On exit: stop retrying and close every tunnel (each close waits for its thread)."""
        self.closed = True
        for timer in self._retry.values():
            timer.stop()
        self._retry.clear()
        tunnels, self.tunnels = list(self.tunnels.values()), {}
        with contextlib.suppress(Exception):
            await asyncio.gather(*(asyncio.to_thread(tunnel.close) for tunnel in tunnels))
