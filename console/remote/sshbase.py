"""What the SSH layer talks about: targets, its errors, link states, key parsing."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import asyncssh

from console.errors import TbxError, UsageError
from console.remote.sshkeys import fingerprint

# -- targets -----------------------------------------------------------------------------

_TARGET = re.compile(r"^(?P<user>[A-Za-z_][A-Za-z0-9_.-]{0,31})@(?P<host>[^@:\s/]+)(?::(?P<port>[0-9]{1,5}))?$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> SshTarget:
        """``user@host[:port]`` with an IPv4 address or a DNS name."""
        match = _TARGET.match(text.strip())
        if not match:
            raise UsageError(f"bad SSH target {text!r}: use USER@HOST[:PORT], e.g. root@203.0.113.7")
        host = match["host"]
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise UsageError(f"bad SSH target {text!r}: {host} is not an IPv4 address") from None
        elif len(host) > 253 or not all(_LABEL.match(label) for label in host.rstrip(".").split(".")):
            raise UsageError(f"bad SSH target {text!r}: {host} is not a valid host name")
        port = int(match["port"]) if match["port"] else 22
        if not 1 <= port <= 65535:
            raise UsageError(f"bad SSH target {text!r}: port must be 1-65535")
        return cls(match["user"], host, port)

    def __str__(self) -> str:
        return f"{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")


# -- errors ------------------------------------------------------------------------------


class SshError(TbxError):
    """The SSH link failed; the message names the host and what to do."""


class SshUnreachable(SshError):
    """No SSH server answered, or the handshake failed."""


class SshAuthFailed(SshError):
    """The server refused the toolbox's key."""


class SshLinkDown(SshError):
    """The link is not up (and did not come back in time) for an operation."""


class HostKeyChanged(SshError):
    """The server presented a host key other than the pinned one. Never retried."""

    def __init__(self, target: SshTarget, pinned_key: str, presented_key: str) -> None:
        self.target = target
        self.pinned_key = pinned_key
        self.presented_key = presented_key
        self.pinned_fingerprint = fingerprint(pinned_key)
        self.presented_fingerprint = fingerprint(presented_key)
        super().__init__(
            f"the SSH host key of {target} changed: pinned {self.pinned_fingerprint}, server presented "
            f"{self.presented_fingerprint}; refusing to connect. If the host was rebuilt, check the new "
            f"fingerprint on its console and re-pin it; otherwise someone may be intercepting the connection"
        )


class LinkStatus(StrEnum):
    CONNECTING = "connecting"
    UP = "up"
    RECONNECTING = "reconnecting"
    DOWN = "down"
    """Closed, or gave up: the first connection failed or the server stopped accepting the key."""
    REFUSED = "refused"
    """The host key changed: never retried."""


class CommandResult(NamedTuple):
    exit_status: int
    """The command's exit code; negative for a signal, as in ``subprocess``."""
    stdout: str
    stderr: str


def public_key_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode("ascii").strip()


def import_client_key(private_key: str) -> asyncssh.SSHKey:
    """The vault's private key text as a key object. Errors never quote the text."""
    try:
        return asyncssh.import_private_key(private_key)
    except Exception:  # noqa: BLE001 - any parse failure reads the same, and must not echo the key
        raise UsageError(
            "the toolbox's SSH private key is not a valid unencrypted OpenSSH key; generate a new key pair"
        ) from None


def import_pin(public_key: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_public_key(public_key)
    except (asyncssh.KeyImportError, ValueError):
        raise UsageError(f"the pinned host key is not an OpenSSH public key line: {public_key[:40]!r}") from None
