"""Desktop MCP client configuration files, as they are found in the wild.

- Claude Desktop ``claude_desktop_config.json`` and Cursor ``~/.cursor/mcp.json``:
  ``{"mcpServers": {name: {"command", "args", "env"} | {"url"}}}``
- VS Code ``.vscode/mcp.json``: ``{"inputs": [...], "servers": {name: {"type", ...}}}``
- VS Code user ``settings.json``: the same under ``"mcp": {...}``
- Claude Code: a project's ``.mcp.json`` (``mcpServers``) and ``~/.claude.json``, whose
  user servers sit in ``mcpServers`` and each project's in ``projects.<path>.mcpServers``.
  Claude Code fills ``${VAR}`` and ``${VAR:-default}`` from the environment
  (code.claude.com/docs/en/mcp, "Environment variable expansion in .mcp.json"); so do we
  in every ``mcpServers`` file: no other client gives those forms another meaning.

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
SHELL_VARIABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
WHOLE_INPUT = re.compile(r"^\$\{input:([^}]+)\}$")


class ImportFileError(TbxError):
    """The file to import cannot be read or holds no MCP server configuration."""


class Unresolvable(Exception):
    """A ``${...}`` variable only the client could fill in; ``str()`` says which."""


@dataclass(frozen=True)
class ServerSpec:
    key: str
    """The server's name in the file."""
    spec: Any
    scope: str | None = None
    """Where in the file it sits when that is not the top: ``project /path`` in ~/.claude.json."""


@dataclass
class ClientFile:
    path: Path
    format: str
    """Human name of the file's shape, for the plan."""
    servers: list[ServerSpec]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """VS Code ``inputs`` by id: ``{"type": "promptString", "description", "password"}``."""
    shell_variables: bool = False
    """``${VAR}`` and ``${VAR:-default}`` are filled from the environment (Claude Code)."""

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
            shell = SHELL_VARIABLE.match(name) if self.shell_variables else None
            if shell is not None:
                if shell[1] in env:
                    return env[shell[1]]
                if shell[2] is not None:
                    return shell[2]
                raise Unresolvable(f"${{{shell[1]}}} is not set in this environment and has no default "
                                   f"(${{{shell[1]}:-...}}); set it and import again")
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
    if isinstance(data.get("projects"), dict):
        return ClientFile(path, "Claude Code ~/.claude.json (user and project servers)", _claude_json(path, data),
                          shell_variables=True)
    if "mcpServers" in data:
        return ClientFile(path, "Claude Desktop / Cursor / Claude Code (mcpServers)",
                          _servers(path, data, "mcpServers"), shell_variables=True)
    if "servers" in data:
        return ClientFile(path, "VS Code mcp.json", _servers(path, data, "servers"), _inputs(path, data))
    mcp = data.get("mcp")
    if isinstance(mcp, dict) and "servers" in mcp:
        return ClientFile(path, "VS Code settings.json (mcp.servers)", _servers(path, mcp, "mcp.servers"),
                          _inputs(path, mcp))
    raise ImportFileError(f"{path} has no MCP servers; {_EXPECTED}")


_EXPECTED = ('expected "mcpServers" (Claude Desktop, Cursor, Claude Code), "servers" (VS Code mcp.json) '
             'or "mcp": {"servers": ...} (VS Code settings.json)')


def _servers(path: Path, holder: dict[str, Any], label: str, scope: str | None = None) -> list[ServerSpec]:
    servers = holder[label.rsplit(".", 1)[-1]]
    if not isinstance(servers, dict):
        raise ImportFileError(f'{path}: "{label}" must be an object of servers by name; fix it and import again')
    return [ServerSpec(str(key), spec, scope) for key, spec in servers.items()]


def _claude_json(path: Path, data: dict[str, Any]) -> list[ServerSpec]:
    """The user's servers, then each project's; a server that several projects hold alike
    is planned once (Claude Code users copy the same one into many projects)."""
    found = _servers(path, data, "mcpServers") if "mcpServers" in data else []
    seen = {(s.key, json.dumps(s.spec, sort_keys=True)) for s in found}
    for project, settings in data["projects"].items():
        if not isinstance(settings, dict) or not settings.get("mcpServers"):
            continue
        for server in _servers(path, settings, f"projects.{project}.mcpServers", scope=f"project {project}"):
            # The label above is for errors; the servers are read from this project's object.
            fingerprint = (server.key, json.dumps(server.spec, sort_keys=True))
            if fingerprint not in seen:
                seen.add(fingerprint)
                found.append(server)
    return found


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
