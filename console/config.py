"""User settings, read from ``config.toml`` in the config directory.

Missing file means defaults. A malformed file is an error that names the file and the
bad setting, never a silent fallback: a user who wrote a setting expects it to hold.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.errors import TbxError


class VaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyring_timeout: float = Field(default=5.0, gt=0, le=120)
    """Seconds to wait for the OS keyring before treating it as unavailable."""

    lock_timeout: float = Field(default=15.0, gt=0, le=600)
    """Seconds to wait for another process to release the vault lock."""

    def timeouts(self) -> dict[str, float]:
        return {"keyring_timeout": self.keyring_timeout, "lock_timeout": self.lock_timeout}


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_image_python: str = "python:3.12-slim"
    """Base for servers built from PyPI packages; needs python3 with venv."""
    base_image_node: str = "node:22-slim"
    """Base for servers built from npm packages; needs node."""
    image_source: Literal["auto", "pull", "build"] = "auto"
    """Where server images come from: ``pull`` the catalog's digest-pinned image, ``build``
    it locally from the package, or ``auto`` (pull when the entry names an image)."""
    container_user: str = "auto"
    """uid:gid servers run as; ``auto`` is the invoking user, or 10001:10001 for root."""
    egress_network: str | None = None
    """No longer used (kept so older config files still load): every server is on network
    none, and one with egress goes through its gateway's allow-list proxy."""
    tmpfs_size_mb: int = Field(default=64, ge=1, le=4096)
    call_timeout: float = Field(default=60.0, gt=0, le=3600)
    """Seconds a tool call may take before it is abandoned."""
    start_timeout: float = Field(default=60.0, gt=0, le=600)
    """Seconds a starting server has to answer MCP initialize."""


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    allowed_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed besides the gateway's own (DNS-rebinding protection)."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra Host header values to accept, e.g. a name a reverse proxy uses."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_result_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    session_idle_minutes: float = Field(default=60.0, gt=0)
    audit_flush_seconds: float = Field(default=0.2, gt=0, le=10)
    checkpoint_seconds: float = Field(default=2.0, gt=0, le=300)
    """How often the audit checkpoint in the vault follows the log's head."""
    audit_pending_max: int = Field(default=10_000, ge=100, le=1_000_000)
    """Audit events kept while the log cannot be written (tool calls are refused then);
    past it they are counted in an ``audit.gap`` record instead."""
    policy_poll_seconds: float = Field(default=5.0, gt=0, le=5)
    """The gateway reloads its policy as soon as the vault file is replaced (file events,
    on Linux); this is how often it also looks, in case an event was missed. Where there
    are no file events (not Linux, inotify limits reached) it is the poll interval: a
    change then reaches connected agents' listings within this (each request still
    checks the vault first, so a revoke is enforced at once either way)."""
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """A connection must deliver a request's headers within this, or it is closed."""
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    """A request's body must arrive whole within this after its headers."""
    idle_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    """A kept-alive connection with no request for this long is closed."""
    max_connections: int = Field(default=2048, ge=16, le=1_000_000)
    """Open connections at most (also held under the process's file limit); when full, the
    connection idle the longest is closed to make room."""
    max_sessions_per_agent: int = Field(default=64, ge=1, le=100_000)
    """An agent opening more sessions loses its least recently used one."""
    max_inflight_per_agent: int = Field(default=32, ge=1, le=10_000)
    """Requests one agent may have in progress at once; more get HTTP 429."""
    max_streams_per_agent: int = Field(default=16, ge=1, le=10_000)
    """Open event streams (GET) per agent."""
    approval_timeout_seconds: float = Field(default=120.0, gt=0, le=86_400)
    """A call under an ask grant not decided by the owner within this is refused."""
    approval_progress_seconds: float = Field(default=10.0, gt=0, le=300)
    """How often a held call whose agent asked for progress is told it still waits."""
    max_pending_approvals: int = Field(default=256, ge=1, le=100_000)
    """Calls held for the owner at once, all agents together; more are refused."""
    egress_private_addresses: bool = False
    """Whether an allow-listed host NAME may resolve to a loopback, private or link-local
    address (off: such a name is refused, so a server's DNS cannot turn an allowed name
    into a door to this machine or its network; an address written in the list as such is
    always allowed)."""


class TuiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: dict[str, str] = Field(default_factory=dict)
    """Binding id -> key(s), e.g. ``"server.toggle" = "ctrl+s"``; ``?`` in the console lists the ids."""
    refresh_seconds: float = Field(default=2.0, ge=0.5, le=60)
    """How often live tables (servers, stats) refresh."""


class OAuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    http_timeout: float = Field(default=15.0, gt=0, le=120)
    """Seconds any one request to a provider may take."""
    browser_timeout: float = Field(default=300.0, gt=0, le=3600)
    """How long the browser sign-in waits for the user."""
    refresh_ahead_seconds: float = Field(default=300.0, ge=30, le=3600)
    """Tokens of running servers are refreshed this long before they expire."""
    client_metadata_url: str | None = None
    """Where you publish tbx's client ID metadata document (an https URL with a path,
    serving what ``tbx server client-metadata URL`` prints). Remote servers whose
    authorization server reads such documents then know tbx by that URL, with no
    registration; without it tbx registers itself (RFC 7591) or takes ``--client-id``."""


class DropletSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(default="debian-12-x64", pattern=r"^[a-z0-9][a-z0-9.-]*$")
    """The DigitalOcean image slug new droplet toolboxes start from (checked with the API
    before anything is created; ``--image`` overrides it)."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vault: VaultSettings = VaultSettings()
    tui: TuiSettings = TuiSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    gateway: GatewaySettings = GatewaySettings()
    oauth: OAuthSettings = OAuthSettings()
    droplet: DropletSettings = DropletSettings()


BASE_IMAGE_ENV = "TBX_BASE_IMAGE"


def load_settings(path: Path) -> Settings:
    raw: dict = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise TbxError(f"cannot read settings {path}: {exc}; fix or delete the file") from exc
    if os.environ.get(BASE_IMAGE_ENV):
        # One local base image for both kinds (the test environment's debootstrap image).
        runtime = raw.setdefault("runtime", {})
        runtime["base_image_python"] = runtime["base_image_node"] = os.environ[BASE_IMAGE_ENV]
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TbxError(f"bad setting {where} in {path}: {first['msg']}") from exc
