"""What a toolbox's own gateway gets to know: the policy for that toolbox, nothing more.

The remote gateway is the ordinary gateway (``tbx gateway serve``) running next to the
servers, reading an ordinary vault — a *mirror* vault the console keeps per remote
toolbox, holding only that toolbox, its servers and every item they offer (tools,
resources, resource templates, prompts: the "tools" table, with their pins and trust),
the agents granted into it (token hashes only), their grants, and the secrets it needs
to redact its servers' output. No other toolbox, connection, app registration or audit key of the user's
vault ever leaves the machine, nor any refresh token: a server bound to a connection gets
its access token alone, as a derived secret the console refreshes and pushes again. The
mirror is re-written and shipped whenever what it would hold changes; the gateway follows
the file as it follows any vault.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.model import ConnectionStatus
from console.oauth.tokens import TOKEN_SET_PREFIX
from console.paths import Paths
from console.vault import MachineSecret, Repos
from console.workspace import OWNER_META, Workspace

Tables = dict[str, dict[str, Any]]
MIRRORED = ("toolboxes", "servers", "tools", "agents", "toolbox_grants", "tool_grants", "secrets")
GATEWAY_PORT = 8443
REMOTE_ROOT = "/var/lib/tbx"
SIGN_IN_HEADER = "Authorization"
"""The header a remote server's sign-in travels in to the droplet's gateway (RFC 6750)."""


def policy_tables(tables: Tables, toolbox_id: str) -> Tables:
    """The slice of the user's vault one toolbox's gateway needs (pure)."""
    box = dict(tables.get("toolboxes", {}).get(toolbox_id) or {})
    if not box:
        raise KeyError(toolbox_id)
    # On the droplet the engine is the local one the container is given.
    box.update(kind="local", engine_endpoint=None, ssh_target=None, ssh_host_key=None)
    servers = {k: v for k, v in tables.get("servers", {}).items() if v["toolbox"] == toolbox_id}
    box_grants = {k: v for k, v in tables.get("toolbox_grants", {}).items() if v["toolbox"] == toolbox_id}
    granted = {g["agent"] for g in box_grants.values()}
    secret_ids = {sid for s in servers.values() for sid in s.get("secret_refs", {}).values()}
    connections = tables.get("connections", {})
    secrets = {k: v for k, v in tables.get("secrets", {}).items() if k in secret_ids}
    handed = {k: ref for k, v in servers.items()
              if (ref := _access_token_ref(v, connections, tables.get("secrets", {})))}
    return {
        "toolboxes": {toolbox_id: box},
        # A remote server keeps the id of its connection (not the connection): its gateway
        # then knows the Authorization it is handed comes from a sign-in the console keeps,
        # and a refusal asks for a new one (``upstream_auth``).
        "servers": {k: {**v, "connection": v.get("connection") if v.get("kind") == "remote" else None,
                        "secret_refs": {**v.get("secret_refs", {}), **({handed[k][0]: handed[k][1]} if k in handed else {})}}
                    for k, v in servers.items()},
        "tools": {k: v for k, v in tables.get("tools", {}).items() if v["server"] in servers},
        "agents": {k: v for k, v in tables.get("agents", {}).items() if k in granted},
        "toolbox_grants": box_grants,
        "tool_grants": {k: v for k, v in tables.get("tool_grants", {}).items()
                        if v["server"] in servers and v["agent"] in granted},
        "secrets": {**{k: {**v, "name": v["name"] if v["name"].startswith(TOKEN_SET_PREFIX) else f"server/{k}"}
                       for k, v in secrets.items()},
                    **{ref[1]: ref[2] for ref in handed.values()}},
    }


def _access_token_ref(server: dict[str, Any], connections: Tables,
                      secrets: Tables) -> tuple[str, str, dict[str, Any]] | None:
    """For a server bound to a connection: (slot, secret id, secret) holding the access
    token alone, never the token set with its refresh token. A container server takes it
    from an env variable (the droplet's gateway hands it over when the droplet's engine
    restarts the server); a remote server's requests carry it as ``Authorization: Bearer``.
    The droplet's gateway knows no connections: the console refreshes the token and pushes
    it again. A remote server whose sign-in the provider refused gets none: its gateway
    then says to sign in again instead of sending a dead token."""
    connection = connections.get(server.get("connection") or "") or {}
    token = secrets.get(connection.get("token_secret") or "")
    remote = server.get("kind") == "remote"
    slot = SIGN_IN_HEADER if remote else ((server.get("spec") or {}).get("oauth") or {}).get("token_env")
    if token is None or not slot or (remote and connection.get("status") == ConnectionStatus.NEEDS_CONSENT.value):
        return None
    try:
        access = json.loads(token["value"])["access_token"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(access, str) or not access:
        return None
    derived = f"{connection['token_secret']}-{'bearer' if remote else 'access'}"
    return slot, derived, {**token, **({"id": derived} if "id" in token else {}),
                           "name": f"server/{derived}", "value": f"Bearer {access}" if remote else access}


def digest(tables: Tables) -> str:
    return hashlib.sha256(json.dumps(tables, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


_OPENED: dict[Path, Workspace] = {}
_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class Mirror:
    """The console-side copy of one remote toolbox's gateway home (``TBX_HOME`` layout)."""

    root: Path
    passphrase: str

    @property
    def paths(self) -> Paths:
        return Paths(data_dir=self.root, config_dir=self.root / "config", state_dir=self.root / "state",
                     cache_dir=self.root / "cache")

    def open(self) -> Workspace:
        """The mirror vault, opened once per process. Its key is the gateway secret, used as
        given (never ``TBX_PASSPHRASE``, which is the user's), through HKDF: a mirror made
        with Argon2id costs that run once more, then gets its fast key (``Vault.open``)."""
        with _OPEN_LOCK:
            opened = _OPENED.get(self.root)
            if opened is not None and opened.paths.vault.exists():
                opened.refresh()
                return opened
            paths = self.paths
            if not paths.vault.exists():
                paths.ensure()
                opened = Workspace.create(paths, MachineSecret(self.passphrase))
            else:
                opened = Workspace.open(paths, MachineSecret(self.passphrase))
            _OPENED[self.root] = opened
            return opened

    def owner_key(self) -> bytes:
        """The toolbox gateway's owner key, made here and shipped inside the mirror: the
        console mints the control tokens of the gateway's owner's door with it
        (``approvals_http``), and the gateway checks them with its copy."""
        mirror = self.open()
        meta = mirror.repos.meta.get(OWNER_META)
        if meta is None:
            meta = {"key": base64.b64encode(os.urandom(32)).decode()}
            with mirror.vault.transaction() as db:  # bare, like ``write``: no record in the mirror's log
                Repos(db).meta.set(OWNER_META, meta)
            mirror.refresh()
        return base64.b64decode(meta["key"])

    def write(self, tables: Tables) -> bool:
        """Bring the mirror vault to ``tables``; returns whether anything changed."""
        self.owner_key()  # in every mirror shipped, so the gateway starts with the console's key
        mirror = self.open()
        current = {name: mirror.tables().get(name, {}) for name in MIRRORED}
        if digest(current) == digest(tables):
            return False
        # A bare transaction: the mirror's own audit log stays empty, the gateway's
        # records on the toolbox are the only ones chained with the mirror's key.
        with mirror.vault.transaction() as db:
            data = db.storage.read() or {}
            db.storage.write({**data, **tables})
        return True

    def write_config(self, host: str, port: int) -> Path:
        text = (
            "[gateway]\n"
            f"host = {json.dumps(host)}\n"
            f"port = {port}\n"
            f"allowed_hosts = {json.dumps([host])}\n"
            "policy_poll_seconds = 5\n"  # a safety poll: pushes arrive as file events
        )
        path = self.paths.config_file
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(text, encoding="utf-8")
        return path
