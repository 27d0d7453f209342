"""The cloud-init user data a new droplet boots with.

The droplet only has to become a Docker host reachable over SSH: Docker Engine from the
distribution (``docker.io``), listening on its unix socket only (the SSH layer forwards
it), a private state directory, and a firewall that admits SSH and the public gateway
port and nothing else. The last command writes :data:`READY_MARKER`, so whoever connects
first can tell "booted" from "set up".
"""

from __future__ import annotations

STATE_DIR = "/var/lib/tbx"
READY_MARKER = f"{STATE_DIR}/ready"
"""Exists once every step below has run (``test -f`` it, or ``cloud-init status --wait``)."""

_TEMPLATE = """\
#cloud-config
# Toolbox Console droplet: Docker Engine for MCP servers, reached over SSH.
package_update: true
packages:
  - docker.io
  - ufw
ssh_pwauth: false
runcmd:
  - [install, -d, -m, "0700", -o, root, -g, root, {state_dir}]
  - [ufw, default, deny, incoming]
  - [ufw, default, allow, outgoing]
  - [ufw, allow, 22/tcp]
  - [ufw, allow, {port}/tcp]
  - [ufw, --force, enable]
  - [systemctl, enable, --now, docker]
  - [touch, {ready}]
"""


def cloud_init(public_gateway_port: int = 8443) -> str:
    """A ``#cloud-config`` document for a toolbox droplet whose gateway listens on ``public_gateway_port``."""
    # bool is an int; a port of True would render as "True/tcp".
    if isinstance(public_gateway_port, bool) or not isinstance(public_gateway_port, int):
        raise TypeError(f"public_gateway_port must be an int, not {type(public_gateway_port).__name__}")
    if not 1 <= public_gateway_port <= 65535 or public_gateway_port == 22:
        raise ValueError(f"public gateway port {public_gateway_port} is not a usable TCP port (1-65535, not 22)")
    return _TEMPLATE.format(state_dir=STATE_DIR, port=public_gateway_port, ready=READY_MARKER)
