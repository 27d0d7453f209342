"""The health of a remote toolbox's remote servers, as that toolbox's gateway sees them.

A droplet's gateway calls its remote servers over the droplet's network, so the console
does not watch them from here (``supervision.watched_servers``): it asks the gateway over
the console's open link instead, and says "unknown" with the reason when it cannot.
"""

from __future__ import annotations

from collections.abc import Callable

from console.errors import TbxError
from console.model import DesiredState
from console.remote.tunnel import Tunnel
from console.runtime.supervisor import Health
from console.workspace import Workspace


def seen_from_toolboxes(ws: Workspace, usable: Callable[[str], Tunnel | None],
                        known: dict[str, Health]) -> list[Health]:
    """Ask every remote toolbox with running remote servers; update ``known`` (server id
    -> health) and return what changed, for the app to publish."""
    from console.gateway.remote_server_health import seen_by_gateway

    changed = []
    for box in [b for b in ws.repos.toolboxes if b.is_remote]:
        servers = [s for s in ws.repos.servers.in_toolbox(box.id)
                   if s.kind == "remote" and s.desired_state is DesiredState.RUNNING]
        if not servers:
            continue
        link = usable(box.id)
        seen, why = {}, f"toolbox {box.name} is not connected"
        if link is not None:
            try:
                seen, why = seen_by_gateway(ws, box, link), f"the gateway of {box.name} does not watch it (yet)"
            except TbxError as exc:
                why = str(exc)
        for server in servers:
            there = seen.get(server.id)
            health = Health(server.id, f"{box.name}/{server.name}", state="remote",
                            health=there.health if there else "unknown",
                            ping_ms=there.ping_ms if there else None,
                            last_error=there.error if there else f"unknown: {why}")
            before = known.get(server.id)
            if before is None or _shown(before) != _shown(health):
                known[server.id] = health
                changed.append(health)
    return changed


def _shown(health: Health) -> tuple[str, float | None, str | None]:
    return health.health, health.ping_ms, health.last_error
