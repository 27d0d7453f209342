"""Remote servers in a client's file: a ``url`` entry, or a stdio command that only relays
one (``npx mcp-remote URL``). Either becomes a remote server of the toolbox (nothing runs
in a container); its headers become vault secrets, asked for when the file names a value
only the client knows. Pure: ``console.services.imports`` adds what is planned here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlparse

from console.catalog.clientfiles import ClientFile, Unresolvable
from console.catalog.launchers import Unsupported
from console.catalog.sensitive import looks_like_secret, secret_flag

REMOTE_TYPES = {"http", "sse", "streamable-http", "streamablehttp", "ws", "websocket"}
BRIDGE = re.compile(r"^mcp-remote(@\S*)?$")
"""The npm package that only relays a remote server to stdio, pinned or not."""
INPUT = re.compile(r"\$\{input:([^}]+)\}")
Transport = Literal["streamable-http", "sse"]


class RemoteServer(Unsupported):
    """A remote server tbx cannot add as it is written (listed with the reason)."""


@dataclass
class HeaderInput:
    """A header whose value the file does not hold; asked for when the plan is applied.
    The header is ``before + answer + after`` (``Bearer ${input:token}``: before ``Bearer ``)."""

    header: str
    label: str
    before: str = ""
    after: str = ""

    def value(self, answer: str) -> str:
        return f"{self.before}{answer}{self.after}"


@dataclass
class RemoteItem:
    name: str
    key: str
    url: str
    transport: Transport
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    """Header name -> value. Never printed: every printable form masks it."""
    inputs: list[HeaderInput] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        """The URL without its query (which a file may use for a key)."""
        parsed = urlparse(self.url)
        return f"{parsed.scheme}://{parsed.netloc}{parsed.path}"

    def to_json(self, mask: str) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "kind": "remote", "url": self.where,
                "transport": self.transport, "headers": dict.fromkeys(self.headers, mask),
                "ask": [i.header for i in self.inputs], "notes": list(self.notes)}


def remote_of(client: ClientFile, spec: dict[str, Any],
              environ: Mapping[str, str] | None) -> tuple[str, Transport, dict[str, str], list[HeaderInput]] | None:
    """(url, transport, headers, inputs) when the entry is a remote server, else None."""
    kind = str(spec.get("type", "")).lower()
    url = spec.get("url") or spec.get("serverUrl")
    if kind in REMOTE_TYPES or (url and not spec.get("command")):
        if kind in ("ws", "websocket"):
            raise RemoteServer(f"a WebSocket server{_at(url)}: tbx reaches remote servers over HTTP only")
        raw = spec.get("headers") or {}
        if not isinstance(raw, dict):
            raise RemoteServer('"headers" is not an object')
        headers, inputs = _headers(client, {str(k): str(v) for k, v in raw.items()}, environ)
        return _checked(client.expand(str(url or ""), environ)), "sse" if kind == "sse" else "streamable-http", \
            headers, inputs
    args = [str(a) for a in spec.get("args", [])] if isinstance(spec.get("args"), list) else []
    words = [str(spec.get("command", "")), *args]
    bridge = next((i for i, word in enumerate(words) if BRIDGE.match(Path(word).name)), None)
    if bridge is None:
        return None
    return _bridged(client, words[bridge + 1:], spec, environ)


def _bridged(client: ClientFile, words: list[str], spec: dict[str, Any],
             environ: Mapping[str, str] | None) -> tuple[str, Transport, dict[str, str], list[HeaderInput]]:
    """``mcp-remote URL [--header 'Name: value']... [--transport sse-only]``; its ``${VAR}``
    come from the entry's env (mcp-remote's own rule), else the environment."""
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()} if isinstance(spec.get("env"), dict) else {}
    url, transport, raw = None, "streamable-http", {}
    rest = iter(words)
    for word in rest:
        if word == "--header":
            name, sep, value = next(rest, "").partition(":")
            if not sep or not name.strip():
                raise RemoteServer("an mcp-remote --header is not 'Name: value'")
            raw[name.strip()] = value.strip()
        elif word == "--transport":
            transport = "sse" if next(rest, "") == "sse-only" else "streamable-http"
        elif url is None and word.startswith(("http://", "https://")):
            url = word
    if url is None:
        raise RemoteServer("runs mcp-remote without a server URL")
    filled = {name: _from_env(value, env) for name, value in raw.items()}
    headers, inputs = _headers(client, filled, {**(environ or {}), **env} if environ is not None else None)
    return _checked(url), transport, headers, inputs  # type: ignore[return-value]


def _from_env(value: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m[1], m[0]), value)


def _headers(client: ClientFile, raw: dict[str, str],
             environ: Mapping[str, str] | None) -> tuple[dict[str, str], list[HeaderInput]]:
    headers: dict[str, str] = {}
    inputs: list[HeaderInput] = []
    for name, value in raw.items():
        if not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$", name):
            raise RemoteServer(f"header {name!r} is not a valid header name")
        try:
            value = client.expand(value, environ)
        except Unresolvable as exc:
            inputs.append(HeaderInput(name, f"{exc}; the whole value of header {name}"))
            continue
        found = list(INPUT.finditer(value))
        if len(found) > 1:
            raise RemoteServer(f"header {name} embeds several VS Code inputs; tbx asks for one a header")
        if found:
            declared = client.inputs.get(found[0][1]) or {}
            described = f" ({declared['description']})" if declared.get("description") else ""
            inputs.append(HeaderInput(name, f"VS Code input '{found[0][1]}'{described}",
                                      value[:found[0].start()], value[found[0].end():]))
            continue
        headers[name] = value
    return headers, inputs


def _checked(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RemoteServer(f"a remote server whose URL is not http(s){_at(url)}")
    if parsed.username or parsed.password:
        raise RemoteServer(f"a remote server with credentials in its URL{_at(url)}: put them in a header")
    for key, value in parse_qsl(parsed.query):
        if secret_flag(key) or looks_like_secret(value) or key.lower() in ("token", "key", "api_key", "apikey"):
            raise RemoteServer(f"a remote server{_at(url)} whose URL carries a key ({key}=...): tbx keeps "
                               "credentials in the vault, so give it as a header and import again")
    return url


def _at(url: object) -> str:
    host = urlparse(str(url)).hostname if url else None
    return f" at {host}" if host else ""
