"""Changing a server in place: its plain env, mounts, limits, network or egress allow-list.

A container made from the new settings replaces the old one (the server keeps its id,
so its items, approvals, secrets and grants stay); the allow-list alone is the gateway
proxy's business and leaves the container as it is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from console.errors import NotFound, UsageError
from console.model import DesiredState, Limits, Mount
from console.runtime.containers import Engine, container_user
from console.runtime.session import Discovery
from console.services.servers import (Progress, ServerRef, _boot, _check_needs, _image_present, _quiet,
                                      container_spec, engine_for, ensure_image, entry_of, redactor_for, resolve,
                                      unwritable_mounts)
from console.services.tools import DiscoveryOutcome, record_discovery
from console.workspace import Workspace


@dataclass
class EditOutcome:
    changed: list[str]
    """What changed, of ``env``, ``mounts``, ``limits``, ``network`` and ``egress`` (empty:
    nothing was done)."""
    discovery: DiscoveryOutcome | None = None
    """The rediscovery of a running server's items in its new container."""


def edit_server(
    ws: Workspace,
    target: str,
    *,
    env: dict[str, str] | None = None,
    mounts: list[Mount] | None = None,
    limits: Limits | None = None,
    network: Literal["none", "egress"] | None = None,
    egress: list[str] | None = None,
    progress: Progress | None = None,
) -> EditOutcome:
    """Change a server's plain env, mounts, limits, network or egress allow-list (each
    given replaces the old; None keeps it). A container made from the new settings
    replaces the old one; the server keeps its id, so its items, approvals, secrets and
    grants stay as they were. A running server runs again at once (its items
    rediscovered), a stopped one stays stopped. The allow-list alone is the gateway's
    proxy's business: changing only it leaves the container alone.

    Docker first, then the vault: a new container that cannot be made or does not start
    is removed and one with the old settings put back, and the vault is left as it was."""
    progress = progress or _quiet
    ref = resolve(ws, target)
    old = ref.server
    if old.kind == "remote":
        raise UsageError(f"{ref.label} is a remote server: it has no env, mounts, limits or egress to edit "
                         "(its URL and headers: 'tbx server edit --url/--header/--remove-header')")
    entry = entry_of(old)
    wanted: dict[str, Any] = {
        "env": old.env if env is None else env, "mounts": old.mounts if mounts is None else mounts,
        "limits": old.limits if limits is None else limits, "network": network or old.network,
        "egress": old.egress if egress is None else egress,
    }
    wanted["env"] = _check_needs(entry, wanted["env"], dict.fromkeys(old.secret_refs, ""), wanted["mounts"],
                                 old.connection is not None)
    changed = [key for key, value in wanted.items() if value != getattr(old, key)]
    if not changed:
        return EditOutcome([])
    edited = ServerRef(ref.toolbox, old.model_copy(update=wanted))
    running = old.desired_state is DesiredState.RUNNING
    found = None
    if set(changed) & {"env", "mounts", "limits", "network"}:
        found = _replace_container(ws, ref, edited, changed, running, progress)
    with ws.change() as change:
        server = change.repos.servers.get(old.id)
        if server is None:
            raise NotFound(f"server {ref.label} was removed meanwhile")
        for key, value in wanted.items():
            setattr(server, key, value)
        server.image = edited.server.image
        change.repos.servers.put(server)
        if set(changed) <= {"network", "egress"}:
            change.record("server.egress", f"server:{ref.label}", detail={
                "network": server.network, "hosts": server.egress,
                "added": sorted(set(server.egress) - set(old.egress)),
                "removed": sorted(set(old.egress) - set(server.egress)),
            })
        else:
            change.record("server.edit", f"server:{ref.label}", detail={
                "changed": changed, "env": sorted(server.env), "mounts": [m.target for m in server.mounts],
                "limits": server.limits.model_dump(mode="json"), "network": server.network, "hosts": server.egress,
            })
        outcome = EditOutcome(changed, record_discovery(change, server, found, ref.toolbox.name) if found else None)
    return outcome


def _replace_container(ws: Workspace, ref: ServerRef, edited: ServerRef, changed: list[str], running: bool,
                       progress: Progress) -> Discovery | None:
    """Docker's half of an edit: the new container made (and booted, if the server runs),
    or on failure the old one put back and the error raised."""
    old = ref.server
    found = None
    engine = engine_for(ws, ref.toolbox)
    try:
        for note in unwritable_mounts(engine, edited.server.mounts, container_user(ws.settings.runtime.container_user,
                                                                                  engine.is_local)):
            progress(note)
        if not _image_present(engine, old.image):
            edited.server.image = ensure_image(ws, engine, entry_of(old), progress)
        state = engine.find(old.id)
        if state is not None:
            progress("removing the old container")
            engine.remove(state.id)
        progress(f"creating a container with the new {', '.join(changed)}")
        try:
            container = engine.create(container_spec(ws, edited, engine))
            try:
                if running:
                    progress("starting and connecting over MCP")
                    found = asyncio.run(_boot(ws, edited, engine, container.id, True, redactor_for(ws, old)))
            except BaseException:
                engine.remove(container.id)
                raise
        except BaseException:
            progress("the new settings did not work: putting the old container back")
            _put_back(ws, ref, engine, running)
            raise
    finally:
        engine.close()
    return found


def _put_back(ws: Workspace, ref: ServerRef, engine: Engine, running: bool) -> None:
    """After a failed edit: a container from the vault's (unchanged) settings, started if
    the server is meant to run. Best effort: the edit's own error is the one reported."""
    try:
        container = engine.create(container_spec(ws, ref, engine))
        if running:
            asyncio.run(_boot(ws, ref, engine, container.id, True, redactor_for(ws, ref.server)))
    except Exception:  # noqa: BLE001 - 'tbx server start' re-creates it; the edit's error says what failed
        return
