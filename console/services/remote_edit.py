"""Changing a remote server in place: its URL and its static headers.

The new settings are tried first (a session against the new URL with the new headers,
discovering what it offers); only a server that answers changes the vault, so a URL
that does not answer leaves everything as it was. The server keeps its id, so its
items, approvals and grants stay; what it offers now is recorded as any rediscovery
(a changed definition waits for a new approval).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from console.errors import NotFound, TbxError, UsageError
from console.model import Secret, ServerInstance
from console.runtime.remote_session import RemoteTarget
from console.runtime.session import Discovery
from console.services.remote_servers import (SignInNeeded, _discover, asks_for_sign_in, check_header, check_url,
                                             headers_of, signed_in_to, target_of)
from console.services.servers import Progress, ServerRef, resolve
from console.services.tools import DiscoveryOutcome, record_discovery
from console.trust.redact import Redactor
from console.workspace import Workspace


@dataclass
class RemoteEditOutcome:
    changed: list[str]
    """Of ``url`` and ``headers`` (empty: nothing was done)."""
    discovery: DiscoveryOutcome | None = None
    unbound: str | None = None
    """The MCP sign-in (connection id) the server no longer carries: the new URL is on
    another origin, which its token must never reach."""
    connection: str | None = None
    """The sign-in it carries now (one made for the new URL, if any)."""
    headers: dict[str, list[str]] = field(default_factory=dict)
    """Header names ``added``, ``replaced`` and ``removed``."""


def edit_remote_server(
    ws: Workspace,
    target: str,
    *,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    remove_headers: tuple[str, ...] | list[str] = (),
    rename_headers: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> RemoteEditOutcome:
    """Point a remote server at ``url`` and/or set ``headers`` (name -> value, replacing a
    header of that name), drop ``remove_headers`` and rename headers (old -> new name, the
    value kept: the console's form, which never holds a value). Connects with the new
    settings first: a server that does not answer raises and leaves the vault as it was."""
    progress = progress or (lambda _line: None)
    ref = resolve(ws, target)
    old = ref.server
    if old.kind != "remote" or old.url is None:
        raise UsageError(f"{ref.label} runs in a container: it has no URL or headers to edit ('tbx server edit "
                         "--env/--mount' changes its settings)")
    new_url = check_url(url) if url is not None else old.url
    current = headers_of(ws, old)
    names = {name.lower(): name for name in old.secret_refs}
    renamed = {old_name: new for old_name, new in (rename_headers or {}).items() if new != old_name}
    missing = [name for name in [*remove_headers, *renamed] if name.lower() not in names]
    if missing:
        raise UsageError(f"{ref.label} has no header {', '.join(missing)}; its headers: "
                         f"{', '.join(sorted(old.secret_refs)) or 'none'}")
    setting = {new: current.get(names[old_name.lower()], "") for old_name, new in renamed.items()} | dict(headers or {})
    for name, value in setting.items():
        check_header(name, value)
    remove_headers = [*remove_headers, *renamed]
    # Old names whose secrets go: removed, or replaced by a header of that name.
    dropped = {names[name.lower()] for name in [*remove_headers, *setting] if name.lower() in names}
    wanted = {name: value for name, value in current.items() if name not in dropped} | setting
    changes = {"added": sorted(n for n in setting if n.lower() not in names),
               "replaced": sorted(n for n in setting if n.lower() in names),
               "removed": sorted(names[n.lower()] for n in remove_headers if n.lower() not in
                                 {s.lower() for s in setting})}
    changed = (["url"] if new_url != old.url else []) + (["headers"] if setting or dropped else [])
    if not changed:
        return RemoteEditOutcome([])
    moved = RemoteTarget(new_url).origin != RemoteTarget(old.url).origin
    connection = old.connection
    if moved and connection is not None:
        # Its token is for the old origin only: another origin signs in on its own.
        connection = signed_in_to(ws, new_url)
    trial = old.model_copy(update={"url": new_url, "connection": connection})
    progress(f"connecting to {RemoteTarget(new_url).origin} over MCP")
    try:
        found = asyncio.run(_discover(target_of(ws, trial, headers=wanted), ref.label,
                                      Redactor(list({**current, **wanted}.items())), list(old.may_ask)))
    except TbxError:
        if connection is None and not wanted and asks_for_sign_in(new_url):
            raise SignInNeeded(new_url, then="edit it again") from None
        raise
    return _record(ws, ref, new_url, connection, (setting, dropped), changed, changes, found)


def _record(ws: Workspace, ref: ServerRef, url: str, connection: str | None,
            headers: tuple[dict[str, str], set[str]], changed: list[str], changes: dict[str, list[str]],
            found: Discovery) -> RemoteEditOutcome:
    """The vault's half: new header secrets in, the replaced and removed ones deleted."""
    old = ref.server
    setting, dropped = headers
    fresh = {name: Secret(name=f"{ref.toolbox.name}/{old.name}/header/{name}", value=value)
             for name, value in setting.items()}
    with ws.change() as change:
        server: ServerInstance | None = change.repos.servers.get(old.id)
        if server is None:
            raise NotFound(f"server {ref.label} was removed meanwhile")
        for secret in fresh.values():
            change.repos.secrets.put(secret)
        change.repos.secrets.delete([sid for name, sid in server.secret_refs.items() if name in dropped])
        server.secret_refs = {name: sid for name, sid in server.secret_refs.items() if name not in dropped} | {
            name: secret.id for name, secret in fresh.items()}
        server.url = url
        unbound = old.connection if connection != old.connection else None
        server.connection = connection
        change.repos.servers.put(server)
        change.record("server.edit", f"server:{ref.label}", detail={
            "kind": "remote", "changed": changed, "origin": RemoteTarget(url).origin,
            "headers": sorted(server.secret_refs), **{k: v for k, v in changes.items() if v},
            "connection": connection, **({"unbound": unbound} if unbound else {})})
        discovery = record_discovery(change, server, found, ref.toolbox.name)
    return RemoteEditOutcome(changed, discovery, unbound, connection, changes)


def said(outcome: RemoteEditOutcome, label: str) -> str:
    """One line for the CLI and the console: what changed, what is now blocked, and what
    became of its sign-in."""
    if not outcome.changed:
        return "nothing changed"
    names = [f"{key} {', '.join(found)}" for key, found in outcome.headers.items() if found]
    line = f"{', '.join(outcome.changed)} changed" + (f" (headers {'; '.join(names)})" if names else "")
    found = outcome.discovery
    if found is not None and found.changed:
        line += f"; changed, blocked until approved again: {', '.join(found.changed)}"
    if found is not None and found.new:
        line += f"; new, pending approval: {', '.join(found.new)}"
    if outcome.unbound:
        line += f"; its sign-in ({outcome.unbound}) is for the old origin and is no longer sent" + (
            f"; it carries the sign-in to the new URL ({outcome.connection})" if outcome.connection else
            f"; sign in again with 'tbx server login {label}' if it asks")
    return line
