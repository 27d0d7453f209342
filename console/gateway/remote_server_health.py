"""What a remote toolbox's gateway says of its servers, asked over SSH (``server_health_http``).

A droplet's remote servers are called from the droplet: whether they answer there, and
how fast, is the droplet gateway's to say. A ping from the console's machine would tell
of another network (a vendor's firewall, a DNS name or a token that works here only),
so when the gateway cannot be asked the status is unknown, and says why.
"""

from __future__ import annotations

import math
from typing import Any

import httpx2

from console.errors import TbxError
from console.gateway.approvals_client import decider_name
from console.gateway.approvals_http import mint_control_token
from console.model import Toolbox
from console.remote.deploy import control_socket, mirror_for
from console.remote.links import open_tunnel
from console.remote.tunnel import Tunnel
from console.services.server_status import SeenThere, StatusUnknown
from console.workspace import Workspace

CONNECT_TIMEOUT = 10.0
URL = "http://owner.tbx"
"""The requests' base URL: the socket is the address, the name is never looked up."""
WORDS = {"healthy", "starting", "unresponsive", "down", "stopped", "unknown"}
MAX_ERROR = 500


def seen_by_gateway(ws: Workspace, box: Toolbox, tunnel: Tunnel | None = None) -> dict[str, SeenThere]:
    """Server id -> what ``box``'s gateway sees, over ``tunnel`` (the console's link to
    the toolbox) or a tunnel of its own, closed before this returns."""
    token = mint_control_token(mirror_for(ws, box).owner_key(), decider_name(), 60.0)
    own = tunnel is None
    try:
        link = tunnel or open_tunnel(ws, box, CONNECT_TIMEOUT, remote_socket=control_socket(box))
    except TbxError as exc:
        raise StatusUnknown(f"toolbox {box.name} cannot be reached over SSH ({exc})") from None
    try:
        uds = str(link.forward.local_path if own else link.forward_also(control_socket(box)))
        with httpx2.Client(base_url=URL, timeout=CONNECT_TIMEOUT, headers={"Authorization": f"Bearer {token}"},
                           transport=httpx2.HTTPTransport(uds=uds)) as http:
            response = http.get("/servers")
    except (httpx2.HTTPError, TbxError) as exc:
        raise StatusUnknown(f"the gateway of {box.name} does not answer on its owner's socket "
                            f"({type(exc).__name__})") from None
    finally:
        if own:
            link.close()
    if response.status_code != 200:
        raise StatusUnknown(f"the gateway of {box.name} answered {response.status_code} "
                            "(deployed by a tbx that served no server status: remove and re-add the toolbox)")
    return _parsed(response)


def _parsed(response: httpx2.Response) -> dict[str, SeenThere]:
    """The answer, taken for no more than it may say: a toolbox is a machine elsewhere."""
    try:
        body = response.json()
    except ValueError:
        raise StatusUnknown("the gateway's answer is not JSON") from None
    listed = body.get("servers") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        raise StatusUnknown("the gateway's answer lists no servers")
    found = {}
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        found[item["id"]] = SeenThere(
            health=item["health"] if item.get("health") in WORDS else "unknown",
            ping_ms=_milliseconds(item.get("ping_ms")),
            error=_one_line(item["error"]) if isinstance(item.get("error"), str) else None)
    return found


def _one_line(text: str) -> str:
    """Printable, on one line: it goes to the owner's terminal (no escape sequences)."""
    return "".join(ch if ch.isprintable() else " " for ch in text[:MAX_ERROR])


def _milliseconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)
