"""The held calls of a remote toolbox's gateway, reached over SSH, and the owner's decisions.

The gateway hears the owner on a Unix socket in the toolbox's folder
(``gateway.control_socket``), never on its internet-facing port; a tunnel forwards that
socket here, and the control token is minted with the owner key the mirror carries to
the gateway (``Mirror.owner_key``). The gateway only lets a call through or refuses it:
"allow for a while" and "always deny" are grants, written in the owner's vault here and
pushed to the toolbox as every grant is (after the command, or by the console's sync),
since the gateway's own vault is a mirror the next push replaces. ``reached`` gives
``tbx approvals`` every gateway that may hold the owner's calls: local ones and these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2

from console.errors import NotFound, TbxError
from console.gateway.approvals import decision_problem
from console.gateway.approvals_client import ApprovalFailed, GatewayApprovals, decider_name, gateways
from console.gateway.approvals_http import mint_control_token
from console.model import Toolbox
from console.remote.deploy import control_socket, mirror_for
from console.remote.links import open_tunnel
from console.remote.tunnel import Tunnel
from console.workspace import Workspace

CONNECT_TIMEOUT = 10.0
TOKEN_SECONDS = 3600.0
URL = "http://owner.tbx"
"""The requests' base URL: the socket is the address, the name is never looked up."""


@dataclass
class RemoteApprovals(GatewayApprovals):
    ws: Workspace | None = None
    box: Toolbox | None = None
    tunnel: Tunnel | None = None

    def pending(self, since: int = -1, wait: float = 0.0) -> tuple[int, list[dict[str, Any]]]:
        try:
            return super().pending(since, wait)
        except httpx2.HTTPError as exc:
            raise ApprovalFailed(f"the gateway of {self.toolbox} does not answer on its owner's socket "
                                 f"({type(exc).__name__}): it is not running, or was deployed by a tbx that "
                                 "made none (remove and re-add the toolbox)") from None

    def decide(self, approval_id: str, sha256: str, *, allow: bool, minutes: float | None = None,
               always: bool = False) -> str:
        if (problem := decision_problem(allow, minutes, always)) is not None:
            raise ApprovalFailed(problem)
        if minutes is None and not always:
            return super().decide(approval_id, sha256, allow=allow)
        held = next((p for p in self.pending()[1] if p["id"] == approval_id), None)
        if held is None:
            raise NotFound(f"no call {approval_id!r} is waiting on {self.toolbox} ('tbx approvals list' shows those "
                           "that are)")
        agent_id, server_id, ref = self._grantable(held)
        super().decide(approval_id, sha256, allow=allow)  # the grant only once the call itself was decided
        from console.services.grants import allow_for, always_deny

        assert self.ws is not None
        if minutes is not None:
            allow_for(self.ws, agent_id, server_id, ref, timedelta(minutes=minutes))
            return "allowed-for"
        always_deny(self.ws, agent_id, server_id, ref)
        return "denied-always"

    def _grantable(self, held: dict[str, Any]) -> tuple[str, str, str]:
        """The held call's (agent id, server id, ref) in the owner's vault. What the toolbox
        says names an agent and a server of this toolbox, or no grant is written."""
        assert self.ws is not None and self.box is not None
        agent = self.ws.repos.agents.by_name(str(held.get("agent")))
        server = self.ws.repos.servers.by_name(self.box.id, str(held.get("server")))
        ref = held.get("ref")
        if agent is None or server is None or not isinstance(ref, str) or not ref:
            raise NotFound(f"the call held on {self.toolbox} names no agent and server of this toolbox here; "
                           "no grant was written")
        return agent.id, server.id, ref

    def close(self) -> None:
        if self.tunnel is not None:
            self.tunnel.close()


def remote_gateway(ws: Workspace, box: Toolbox, who: str, ttl: float = TOKEN_SECONDS) -> RemoteApprovals:
    """The approvals of ``box``'s gateway over a tunnel of its own (closed by ``close``)."""
    token = mint_control_token(mirror_for(ws, box).owner_key(), who, ttl)
    tunnel = open_tunnel(ws, box, CONNECT_TIMEOUT, remote_socket=control_socket(box))
    return RemoteApprovals(box.name, URL, token, str(tunnel.forward.local_path), ws=ws, box=box, tunnel=tunnel)


def over_link(ws: Workspace, box: Toolbox, tunnel: Tunnel, who: str, ttl: float = TOKEN_SECONDS) -> RemoteApprovals:
    """The approvals of ``box``'s gateway over a tunnel already open (the console's link
    to the toolbox, which forwards its engine): its owner's door is forwarded alongside."""
    token = mint_control_token(mirror_for(ws, box).owner_key(), who, ttl)
    return RemoteApprovals(box.name, URL, token, str(tunnel.forward_also(control_socket(box))), ws=ws, box=box)


@contextmanager
def reached(ws: Workspace, toolbox: str | None = None, who: str | None = None,
            unreachable: Callable[[str], None] | None = None) -> Iterator[list[GatewayApprovals]]:
    """The gateways holding the owner's calls: those running here and, over SSH, those of
    remote toolboxes (of ``toolbox`` only, if given). A remote toolbox that cannot be
    reached is told to ``unreachable`` (or raised, when it is the one asked for)."""
    box = ws.repos.toolboxes.require(toolbox) if toolbox else None
    remotes = [b for b in ws.repos.toolboxes if b.is_remote and (box is None or b.id == box.id)]
    found = gateways(ws, toolbox, who) if box is None or not box.is_remote else []
    try:
        for remote in remotes:
            try:
                found.append(remote_gateway(ws, remote, who or decider_name()))
            except TbxError as exc:
                if unreachable is None or box is not None:
                    raise
                unreachable(f"toolbox {remote.name}: {exc}")
        yield found
    finally:
        for gateway in found:
            gateway.close()
