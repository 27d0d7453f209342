"""How a server container reaches its allow-listed hosts: the container side.

The container stays on network none. Its command runs under the egress wrapper
(``egress.sh``), which starts a forwarder on the container's loopback
(``egress_forward.py``, or ``egress_forward.js`` in an image without python3); the
server is told that address as its HTTP(S) proxy. The forwarder carries each connection
over a Unix socket in a host folder mounted into the container to the allow-list proxy
the toolbox's gateway runs (console/egress), so a direct connection from inside has no
route at all and a proxied one goes only where the list allows. Changing the list
changes the proxy, not the container.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from console.runtime.handover import LAUNCHER_DIR

WRAPPER = f"{LAUNCHER_DIR}/egress"
FORWARDER = f"{LAUNCHER_DIR}/egress-forward"
SOCKET_DIR = "/run/tbx-egress"
"""Where the host folder with the proxy's socket appears inside the container."""
SOCKET_NAME = "proxy.sock"
PROXY_PORT = 3128
"""The forwarder's port on the container's own loopback (nothing else listens there)."""

SCRIPTS = {
    "egress": files("console.runtime").joinpath("egress.sh").read_bytes(),
    "egress-forward": files("console.runtime").joinpath("egress_forward.py").read_bytes(),
    "egress-forward.js": files("console.runtime").joinpath("egress_forward.js").read_bytes(),
}
"""Baked into every server image beside the secrets launcher (``imagedocker``)."""


def egress_command(command: list[str]) -> list[str]:
    return ["/bin/sh", WRAPPER, str(PROXY_PORT), "--", *command]


def proxy_env() -> dict[str, str]:
    """What tells the server (and the libraries it uses) to go through the forwarder.
    Names resolve at the proxy: the container has no resolver."""
    proxy = f"http://127.0.0.1:{PROXY_PORT}"
    local = "localhost,127.0.0.1,::1"
    return {
        "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
        "NO_PROXY": local, "no_proxy": local,
        "NODE_USE_ENV_PROXY": "1",  # Node's own fetch and http honour the variables (Node 22.21+, 24.5+)
    }


def uses_egress(attrs: dict[str, Any]) -> bool:
    """Whether an inspected container runs its server under the egress wrapper."""
    return attrs.get("Path") == "/bin/sh" and (attrs.get("Args") or [""])[0] == WRAPPER
