"""Ready-to-paste MCP client configuration for an agent, one format per client.

Each format follows the client's own documentation (cited at each builder). The token
goes in literally only when the user asked for a new one (``--rotate``) and only into a
file private to the user; otherwise the config refers to ``TBX_AGENT_TOKEN`` in the
client's environment, or to a password prompt (VS Code), where the client supports it.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TOKEN_ENV = "TBX_AGENT_TOKEN"
CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode", "windsurf", "codex", "gemini-cli", "generic")
ALIASES = {"claude": "claude-desktop"}
"""Names an earlier release printed in its help and README; they keep working."""
TITLES = {"claude-desktop": "Claude Desktop", "claude-code": "Claude Code", "cursor": "Cursor", "vscode": "VS Code",
          "windsurf": "Windsurf", "codex": "Codex", "gemini-cli": "Gemini CLI", "generic": "A generic client"}


def client_name(name: str) -> str:
    return ALIASES.get(name, name)


def placeholder(agent: str) -> str:
    """What stands for a token tbx cannot show (it keeps only its hash)."""
    return f"PASTE-THE-TOKEN-OF-{agent}"


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """``scheme://host:port``, an IPv6 literal in brackets (``http://::1:8765`` is no URL)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def tbx_command() -> str:
    """The absolute ``tbx`` to launch (desktop apps do not share the shell's PATH), as a
    shell reads it: a path with a space in it stays one word."""
    tbx = shutil.which("tbx")
    return shlex.quote(tbx) if tbx else f"{shlex.quote(sys.executable)} -m console"


@dataclass(frozen=True)
class ClientConfig:
    client: str
    key: str
    """The server's name in the client's config: ``toolbox-AGENT``."""
    entry: dict[str, Any]
    """The server's entry, as it sits under ``section`` in the client's file."""
    section: str
    """The top-level key holding the servers: ``mcpServers``, ``servers``, ``mcp_servers``."""
    fmt: Literal["json", "toml", "text"]
    token_note: str
    """One line: where the client takes the token from."""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    """VS Code's ``inputs``: the prompts its ``${input:...}`` references ask."""
    command: str | None = None
    """A command line that adds the server instead (``claude mcp add``)."""
    text: str = ""

    def document(self) -> dict[str, Any]:
        """The smallest complete config file holding the entry."""
        doc: dict[str, Any] = {"inputs": self.inputs} if self.inputs else {}
        doc[self.section] = {self.key: self.entry}
        return doc


def default_file(client: str, home: Path | None = None, platform: str = sys.platform) -> Path | None:
    """Where the client reads its servers from (user-wide, or the project's for the
    project-scoped ones: Claude Code's ``.mcp.json``, VS Code's ``.vscode/mcp.json``)."""
    home = home or Path.home()
    if client == "claude-desktop":
        # modelcontextprotocol.io/docs/develop/connect-local-servers: the config's places per OS
        if platform == "darwin":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if platform == "win32":
            return home / "AppData" / "Roaming" / "Claude" / "claude_desktop_config.json"
        return home / ".config" / "Claude" / "claude_desktop_config.json"
    return {"claude-code": Path(".mcp.json"), "cursor": home / ".cursor" / "mcp.json",
            "vscode": Path(".vscode") / "mcp.json", "windsurf": home / ".codeium" / "windsurf" / "mcp_config.json",
            "codex": home / ".codex" / "config.toml", "gemini-cli": home / ".gemini" / "settings.json"}.get(client)


def _bearer(token: str | None, reference: str) -> str:
    return f"Bearer {token if token is not None else reference}"


def _claude_desktop(agent: str, url: str, token: str | None) -> ClientConfig:
    # Claude Desktop launches stdio servers only (claude_desktop_config.json, "mcpServers":
    # command/args/env; modelcontextprotocol.io/docs/develop/connect-local-servers), so it
    # runs the bridge. The URL is written in: the bridge then needs nothing but the token,
    # neither the vault nor a passphrase. The app expands no variables: the token itself.
    command, *prefix = shlex.split(tbx_command())
    entry = {"command": command, "args": [*prefix, "connect", agent, "--url", url],
             "env": {TOKEN_ENV: token if token is not None else placeholder(agent)}}
    return ClientConfig("claude-desktop", f"toolbox-{agent}", entry, "mcpServers", "json",
                        _paste_note(agent, token, "config"))


def _claude_code(agent: str, url: str, token: str | None) -> ClientConfig:
    # code.claude.com/docs/en/mcp: a project's .mcp.json has "mcpServers" entries with
    # "type": "http", "url", "headers"; ${VAR} and ${VAR:-default} expand in url and
    # headers. The file is shared with the project, so it names the variable, never the
    # token. `claude mcp add --transport http NAME URL --header "K: V"` adds it for the
    # user instead (the shell expands $TBX_AGENT_TOKEN when no new token was asked for).
    key = f"toolbox-{agent}"
    entry = {"type": "http", "url": f"{url}/mcp", "headers": {"Authorization": f"Bearer ${{{TOKEN_ENV}}}"}}
    header = f"Authorization: {_bearer(token, '$' + TOKEN_ENV)}"
    command = (f"claude mcp add --transport http --scope user {key} {url}/mcp --header "
               + (shlex.quote(header) if token is not None else f'"{header}"'))
    note = (f"Claude Code reads {agent}'s token from {TOKEN_ENV} in its environment; "
            f"or add it for you alone: {command}")
    return ClientConfig("claude-code", key, entry, "mcpServers", "json", note, command=command)


def _cursor(agent: str, url: str, token: str | None) -> ClientConfig:
    # cursor.com/docs/context/mcp: ~/.cursor/mcp.json, "mcpServers" with "url" and
    # "headers" for a remote server; ${env:NAME} is interpolated in both.
    entry = {"url": f"{url}/mcp", "headers": {"Authorization": _bearer(token, f"${{env:{TOKEN_ENV}}}")}}
    return ClientConfig("cursor", f"toolbox-{agent}", entry, "mcpServers", "json", _env_note("Cursor", agent, token))


def _vscode(agent: str, url: str, token: str | None) -> ClientConfig:
    # code.visualstudio.com/docs/copilot/reference/mcp-configuration: "servers" entries
    # with "type": "http"; "inputs" of type promptString with "password": true are asked
    # once and kept in VS Code's secret storage, so .vscode/mcp.json (often committed)
    # never holds the token.
    input_id = f"tbx-token-{agent}"
    entry = {"type": "http", "url": f"{url}/mcp", "headers": {"Authorization": f"Bearer ${{input:{input_id}}}"}}
    inputs = [{"type": "promptString", "id": input_id, "description": f"Toolbox Console token of agent {agent}",
               "password": True}]
    note = ("VS Code asks for the token once and keeps it in its secret storage; "
            + (f"paste this new one (shown once): {token}" if token is not None
               else f"paste {agent}'s token, or run with --rotate to issue a new one"))
    return ClientConfig("vscode", f"toolbox-{agent}", entry, "servers", "json", note, inputs=inputs)


def _windsurf(agent: str, url: str, token: str | None) -> ClientConfig:
    # docs.windsurf.com/windsurf/cascade/mcp: ~/.codeium/windsurf/mcp_config.json,
    # "mcpServers" with "serverUrl" and "headers" for a remote server; ${env:NAME} is
    # interpolated in them.
    entry = {"serverUrl": f"{url}/mcp", "headers": {"Authorization": _bearer(token, f"${{env:{TOKEN_ENV}}}")}}
    return ClientConfig("windsurf", f"toolbox-{agent}", entry, "mcpServers", "json",
                        _env_note("Windsurf", agent, token))


def _codex(agent: str, url: str, token: str | None) -> ClientConfig:
    # developers.openai.com/codex/mcp and codex's docs/config.md: ~/.codex/config.toml,
    # [mcp_servers.NAME] with url (Streamable HTTP) and bearer_token_env_var, the name of
    # the variable holding the token; Codex takes no token written in the file.
    entry = {"url": f"{url}/mcp", "bearer_token_env_var": TOKEN_ENV}
    note = (f"Codex reads the token from {TOKEN_ENV} in its environment; "
            + (f"the new one (shown once): export {TOKEN_ENV}={token}" if token is not None
               else f"set it to {agent}'s token, or run with --rotate to issue a new one"))
    return ClientConfig("codex", f"toolbox-{agent}", entry, "mcp_servers", "toml", note)


def _gemini(agent: str, url: str, token: str | None) -> ClientConfig:
    # geminicli.com/docs/tools/mcp-server: ~/.gemini/settings.json, "mcpServers" with
    # "httpUrl" (Streamable HTTP; "url" would mean SSE) and "headers";
    # geminicli.com/docs/get-started/configuration: $VAR and ${VAR} in settings strings
    # are read from the environment.
    entry = {"httpUrl": f"{url}/mcp", "headers": {"Authorization": _bearer(token, f"${{{TOKEN_ENV}}}")}}
    return ClientConfig("gemini-cli", f"toolbox-{agent}", entry, "mcpServers", "json",
                        _env_note("Gemini CLI", agent, token))


def _generic(agent: str, url: str, token: str | None) -> ClientConfig:
    entry = {"url": f"{url}/mcp", "transport": "streamable-http",
             "headers": {"Authorization": _bearer(token, placeholder(agent))}}
    return ClientConfig("generic", f"toolbox-{agent}", entry, "servers", "text", _paste_note(agent, token, "header"))


def _paste_note(agent: str, token: str | None, where: str) -> str:
    if token is not None:
        return f"the new token is in the {where}, shown once"
    return f"tokens are shown once; paste {agent}'s token, or run with --rotate to issue a new one here"


def _env_note(title: str, agent: str, token: str | None) -> str:
    if token is not None:
        return _paste_note(agent, token, "config")
    return f"{title} reads {agent}'s token from {TOKEN_ENV} in its environment; --rotate writes a new one in instead"


BUILDERS: dict[str, Callable[[str, str, str | None], ClientConfig]] = {
    "claude-desktop": _claude_desktop, "claude-code": _claude_code, "cursor": _cursor, "vscode": _vscode,
    "windsurf": _windsurf, "codex": _codex, "gemini-cli": _gemini, "generic": _generic}


def build(client: str, agent: str, url: str, token: str | None = None) -> ClientConfig:
    """``client``'s config for ``agent`` at the gateway ``url`` (no ``/mcp``); ``token``
    only when the user asked for a new one, else a reference or a placeholder."""
    client = client_name(client)
    if client not in BUILDERS:
        raise ValueError(client)
    config = BUILDERS[client](agent, url.rstrip("/").removesuffix("/mcp"), token)
    return ClientConfig(**{**config.__dict__, "text": _text(config)})


def _text(config: ClientConfig) -> str:
    if config.fmt == "toml":
        return toml_table(config.section, config.key, config.entry)
    if config.fmt == "text":
        header = config.entry["headers"]["Authorization"]
        return f"URL: {config.entry['url']}\nTransport: Streamable HTTP\nHeader: Authorization: {header}"
    return json.dumps(config.document(), indent=2)


def toml_table(section: str, key: str, entry: dict[str, str]) -> str:
    """``[section.key]`` with string values: all a Codex entry of ours holds."""
    lines = [f"[{section}.{key}]"] + [f"{name} = {json.dumps(value)}" for name, value in entry.items()]
    return "\n".join(lines)


def render(client: str, agent: str, url: str, token: str | None = None) -> str:
    return build(client, agent, url, token).text
