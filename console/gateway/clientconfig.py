"""Ready-to-paste MCP client configuration for an agent."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

CLIENTS = ("claude", "cursor", "vscode")


def tbx_command() -> str:
    """The absolute ``tbx`` to launch: desktop apps do not share the shell's PATH."""
    return shutil.which("tbx") or f"{sys.executable} -m console"


def snippet(client: str, agent: str, url: str, token: str) -> dict[str, Any]:
    key = f"toolbox-{agent}"
    if client == "claude":
        # Claude Desktop launches stdio servers only: go through the bridge.
        command, *prefix = tbx_command().split(" ")
        return {"mcpServers": {key: {"command": command, "args": [*prefix, "connect", agent],
                                     "env": {"TBX_AGENT_TOKEN": token}}}}
    if client == "cursor":
        return {"mcpServers": {key: {"url": f"{url}/mcp", "headers": {"Authorization": f"Bearer {token}"}}}}
    if client == "vscode":
        return {"servers": {key: {"type": "http", "url": f"{url}/mcp",
                                  "headers": {"Authorization": f"Bearer {token}"}}}}
    raise ValueError(client)


def render(client: str, agent: str, url: str, token: str) -> str:
    return json.dumps(snippet(client, agent, url, token), indent=2)
