"""Ready-to-paste MCP client configuration for an agent."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

CLIENTS = ("claude-desktop", "cursor", "vscode")
ALIASES = {"claude": "claude-desktop"}
"""Names an earlier release printed in its help and README; they keep working."""


def client_name(name: str) -> str:
    return ALIASES.get(name, name)


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """``scheme://host:port``, an IPv6 literal in brackets (``http://::1:8765`` is no URL)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def tbx_command() -> str:
    """The absolute ``tbx`` to launch: desktop apps do not share the shell's PATH."""
    return shutil.which("tbx") or f"{sys.executable} -m console"


def snippet(client: str, agent: str, url: str, token: str) -> dict[str, Any]:
    key = f"toolbox-{agent}"
    client = client_name(client)
    if client == "claude-desktop":
        # Claude Desktop launches stdio servers only: go through the bridge. The URL is
        # written in so the bridge needs nothing but the token: no vault, no passphrase.
        command, *prefix = tbx_command().split(" ")
        return {"mcpServers": {key: {"command": command, "args": [*prefix, "connect", agent, "--url", url],
                                     "env": {"TBX_AGENT_TOKEN": token}}}}
    if client == "cursor":
        return {"mcpServers": {key: {"url": f"{url}/mcp", "headers": {"Authorization": f"Bearer {token}"}}}}
    if client == "vscode":
        return {"servers": {key: {"type": "http", "url": f"{url}/mcp",
                                  "headers": {"Authorization": f"Bearer {token}"}}}}
    raise ValueError(client)


def render(client: str, agent: str, url: str, token: str) -> str:
    return json.dumps(snippet(client, agent, url, token), indent=2)
