"""What a server is handed at start: its secrets from the vault and its connection's token.

None of it goes into the container's configuration: the container names what it waits
for (``secret_names``), and the values (``server_secrets``) reach the launcher over the
attach stream on every start (``console/runtime/handover.py``). A token for a server
that reads it from a file is written by the launcher into the container's tmpfs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from console.catalog.model import CatalogEntry, OAuthNeed
from console.errors import NotFound, TbxError, UsageError
from console.model import ServerInstance
from console.oauth.tokens import TokenSet
from console.runtime.enginehttp import Endpoint
from console.runtime.handover import Secrets, hand_over
from console.runtime.session import ServerUnavailable
from console.services.connection_tokens import TokenBroker
from console.workspace import Workspace


def _oauth_need(server: ServerInstance) -> OAuthNeed | None:
    if server.connection is None or server.spec is None:
        return None
    need = CatalogEntry.model_validate(server.spec).oauth
    if need is None:
        raise UsageError(f"server {server.name} is bound to a connection but its spec has no OAuth need; re-add it")
    return need


def secret_names(server: ServerInstance) -> list[str]:
    """What the server's container waits for: variable names and token file paths."""
    env = set(server.secret_refs)
    need = _oauth_need(server)
    files = []
    if need is not None:
        if need.token_env is not None:
            env.add(need.token_env)
        else:
            files.append(need.token_file)
    return sorted(env) + files


def secret_values(ws: Workspace, server: ServerInstance) -> dict[str, str]:
    """Env variable -> secret value, read from the vault for this server only."""
    values = {}
    for env_name, secret_id in server.secret_refs.items():
        secret = ws.repos.secrets.get(secret_id)
        if secret is None:
            raise NotFound(f"secret {env_name} of server {server.name} is missing from the vault; remove and re-add the server")
        values[env_name] = secret.value
    return values


def server_secrets(ws: Workspace, server: ServerInstance, given: dict[str, str] | None = None,
                   tokens: TokenSet | None = None) -> Secrets:
    """The values the server is handed now: ``given`` (an add, before they are stored) or
    the vault's, and the bound connection's token, fetched fresh (refreshed first if it
    is about to expire)."""
    env = dict(given) if given is not None else secret_values(ws, server)
    need = _oauth_need(server)
    if need is None:
        return Secrets(env)
    assert server.connection is not None
    tokens = tokens or TokenBroker(ws).tokens(server.connection)
    if need.token_env is not None:
        return Secrets({**env, need.token_env: tokens.access_token})
    assert need.token_file is not None
    return Secrets(env, {need.token_file: google_credentials(tokens)})


def google_credentials(tokens: TokenSet) -> str:
    """The token set as google-auth-library's authorized-user credentials file."""
    body: dict[str, object] = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "scope": " ".join(tokens.scopes),
    }
    if tokens.expires_at is not None:
        body["expiry_date"] = int(tokens.expires_at * 1000)
    else:
        body["expiry_date"] = int((time.time() + 3600) * 1000)
    return json.dumps(body)


def handover_step(ws: Workspace, server: ServerInstance, endpoint: Endpoint, container: str, *,
                  start: Callable[[], Awaitable[None]] | None = None,
                  given: dict[str, str] | None = None) -> Callable[[], Awaitable[None]] | None:
    """What runs once attached, before MCP initialize (``mcp_session``'s
    ``before_initialize``): ``start`` the container, and hand the server its secrets if
    it has any and its launcher waits for them. Every path that attaches to a server
    goes through it, so a launcher is fed whoever attaches first after a start."""
    if not secret_names(server):
        return start

    async def secrets() -> Secrets:
        return await asyncio.to_thread(server_secrets, ws, server, given)

    async def step() -> None:
        try:
            await hand_over(endpoint, container, secrets, lock_dir=ws.paths.state_dir / "handover",
                            timeout=ws.settings.runtime.start_timeout, start=start)
        except ServerUnavailable:
            raise
        except TbxError as exc:  # what every caller of a session already handles
            raise ServerUnavailable(f"server {server.name} was not handed its secrets: {exc}") from None

    return step
