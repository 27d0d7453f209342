"""What must never leave a server's output, logs or audit records: its secrets and the
tokens of the connection it is bound to."""

from __future__ import annotations

from console.model import ServerInstance
from console.oauth.tokens import secret_pairs
from console.trust.redact import Redactor
from console.workspace import Workspace


def server_secret_pairs(ws: Workspace, server: ServerInstance) -> list[tuple[str, str]]:
    pairs = []
    for env_name, secret_id in server.secret_refs.items():
        secret = ws.repos.secrets.get(secret_id)
        if secret is not None:
            pairs.append((env_name, secret.value))
    connection = ws.repos.connections.get(server.connection or "")
    token_secret = ws.repos.secrets.get(connection.token_secret or "") if connection else None
    if token_secret is not None:
        pairs += secret_pairs(token_secret)
    return pairs


def server_redactor(ws: Workspace, server: ServerInstance) -> Redactor:
    return Redactor(server_secret_pairs(ws, server))


def vault_redactor(ws: Workspace) -> Redactor:
    """Every secret in the vault, tokens of token sets one by one."""
    return Redactor([pair for secret in ws.repos.secrets for pair in secret_pairs(secret)])
