"""The owner's side of ``/approvals``: the held calls of the gateways running here, and
decisions on them, for ``tbx approvals`` and the console.

A control token is minted from the vault's owner key for each gateway asked
(``approvals_http``); a decision names the hash of the arguments it was made on.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import Any

import httpx2

from console.errors import NotFound, TbxError
from console.gateway import process
from console.gateway.approvals_http import mint_control_token
from console.gateway.auth import owner_key
from console.workspace import Workspace


class ApprovalFailed(TbxError):
    """The gateway refused the decision (another hash, already decided...)."""


def decider_name() -> str:
    """Who decides, as the audit log names it: the user at the terminal and the host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class GatewayApprovals:
    """One running gateway's approvals."""

    toolbox: str
    url: str
    token: str
    uds: str | None = None
    """A Unix socket to send the requests to (a remote gateway's, forwarded over SSH)."""

    def _client(self, timeout: float) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, timeout=timeout, headers={"Authorization": f"Bearer {self.token}"},
                             transport=httpx2.HTTPTransport(uds=self.uds) if self.uds else None)

    def close(self) -> None:
        """Nothing to let go of here (a remote gateway's closes its tunnel)."""

    def pending(self, since: int = -1, wait: float = 0.0) -> tuple[int, list[dict[str, Any]]]:
        """(version, held calls); with ``wait``, once the version passes ``since`` or after ``wait`` s."""
        with self._client(wait + 10.0) as http:
            response = http.get("/approvals", params={"since": since, "wait": wait})
        body = _json(response)
        if response.status_code != 200:
            raise ApprovalFailed(f"gateway of {self.toolbox}: {body.get('error', response.status_code)}")
        return int(body["version"]), list(body["pending"])

    def decide(self, approval_id: str, sha256: str, *, allow: bool, minutes: float | None = None,
               always: bool = False) -> str:
        request: dict[str, Any] = {"decision": "allow" if allow else "deny", "sha256": sha256}
        if minutes is not None:
            request["minutes"] = minutes
        if always:
            request["always"] = True
        with self._client(30.0) as http:
            response = http.post(f"/approvals/{approval_id}", json=request)
        body = _json(response)
        if response.status_code != 200:
            raise ApprovalFailed(str(body.get("error") or f"the gateway answered {response.status_code}"))
        return str(body["outcome"])


def _json(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def gateways(ws: Workspace, toolbox: str | None = None, who: str | None = None) -> list[GatewayApprovals]:
    """The gateways running here (of ``toolbox``, or of every local toolbox)."""
    names = [toolbox] if toolbox else sorted(box.name for box in ws.repos.toolboxes if not box.is_remote)
    key = owner_key(ws)
    found = []
    for name in names:
        info = process.running(ws.paths, name, timeout=2.0)
        if info is not None:
            found.append(GatewayApprovals(name, info.url, mint_control_token(key, who or decider_name())))
    if toolbox and not found:
        raise NotFound(f"no gateway is serving toolbox {toolbox} here ('tbx gateway serve' starts one)")
    return found


def find(found: list[GatewayApprovals], approval_id: str) -> tuple[GatewayApprovals, dict[str, Any]]:
    """The gateway holding ``approval_id`` and the call as it shows it now."""
    for gateway in found:
        for pending in gateway.pending()[1]:
            if pending["id"] == approval_id:
                return gateway, pending
    raise NotFound(f"no call {approval_id!r} is waiting ('tbx approvals list' shows those that are)")
