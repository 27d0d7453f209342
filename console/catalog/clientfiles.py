"""Desktop MCP client configuration files, as they are found in the wild.

- Claude Desktop ``claude_desktop_config.json`` and Cursor ``~/.cursor/mcp.json``:
  ``{"mcpServers": {name: {"command", "args", "env"} | {"url"}}}``
- VS Code ``.vscode/mcp.json``: ``{"inputs": [...], "servers": {name: {"type", ...}}}``
- VS Code user ``settings.json``: the same under ``"mcp": {...}``

VS Code files are JSONC (comments, trailing commas), so every file is read as JSONC:
plain JSON is a subset.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.catalog.jsonc import loads_jsonc
from console.errors import TbxError

VARIABLE = re.compile(r"\$\{([^}]*)\}")
WHOLE_INPUT = re.compile(r"^\$\{input:([^}]+)\}$")


class ImportFileError(TbxError):
    """The file to import cannot be read or holds no MCP server configuration."""


class Unresolvable(Exception):
    """A ``${...}`` variable only the client could fill in; ``str()`` says which."""


@dataclass
class ClientFile:
    path: Path
    format: str
    """Human name of the file's shape, for the plan."""
    servers: dict[str, Any]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """VS Code ``inputs`` by id: ``{"type": "promptString", "description", "password"}``."""

    @property
    def workspace_folder(self) -> Path | None:
        """``${workspaceFolder}`` for a ``.vscode/mcp.json``: the folder holding ``.vscode``."""
        parent = self.path.absolute().parent
        return parent.parent if parent.name == ".vscode" else None

    def expand(self, value: str, environ: Mapping[str, str] | None = None) -> str:
        """Fill in VS Code's predefined variables; ``${input:...}`` is left to the caller."""
        env = os.environ if environ is None else environ

        def one(match: re.Match[str]) -> str:
            name = match[1]
            if name == "userHome":
                return str(Path.home())
            if name == "pathSeparator":
                return "/"
            if name in ("workspaceFolder", "workspaceRoot") and self.workspace_folder is not None:
                return str(self.workspace_folder)
            if name.startswith("workspaceFolderBasename") and self.workspace_folder is not None:
                return self.workspace_folder.name
            if name.startswith("env:"):
                if name[4:] in env:
                    return env[name[4:]]
                raise Unresolvable(f"${{{name}}} is not set in this environment")
            if name.startswith("input:"):
                return match[0]
            raise Unresolvable(f"uses ${{{name}}}, which only the client can fill in")

        return VARIABLE.sub(one, value)


def read_client_file(path: Path) -> ClientFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportFileError(f"no file {path}; give the path of a Claude Desktop, Cursor or VS Code MCP config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}; check the path") from None
    try:
        data = loads_jsonc(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix it and import again"
        ) from None
    if not isinstance(data, dict):
        raise ImportFileError(f"{path} holds a JSON {type(data).__name__}, not an object; {_EXPECTED}")
    if "mcpServers" in data:
        return ClientFile(path, "Claude Desktop / Cursor (mcpServers)", _servers(path, data, "mcpServers"))
    if "servers" in data:
        return ClientFile(path, "VS Code mcp.json", _servers(path, data, "servers"), _inputs(path, data))
    mcp = data.get("mcp")
    if isinstance(mcp, dict) and "servers" in mcp:
        return ClientFile(path, "VS Code settings.json (mcp.servers)", _servers(path, mcp, "mcp.servers"),
                          _inputs(path, mcp))
    raise ImportFileError(f"{path} has no MCP servers; {_EXPECTED}")


_EXPECTED = ('expected "mcpServers" (Claude Desktop, Cursor), "servers" (VS Code mcp.json) '
             'or "mcp": {"servers": ...} (VS Code settings.json)')


def _servers(path: Path, holder: dict[str, Any], label: str) -> dict[str, Any]:
    servers = holder[label.rsplit(".", 1)[-1]]
    if not isinstance(servers, dict):
        raise ImportFileError(f'{path}: "{label}" must be an object of servers by name; fix it and import again')
    return servers


def _inputs(path: Path, holder: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = holder.get("inputs", [])
    if not isinstance(raw, list):
        raise ImportFileError(f'{path}: "inputs" must be a list; fix it and import again')
    return {str(item["id"]): item for item in raw if isinstance(item, dict) and "id" in item}


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv file as VS Code's ``envFile`` reads it: KEY=VALUE lines, # comments."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
