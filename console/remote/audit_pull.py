"""Bringing a remote gateway's decisions into the local audit chain.

The gateway on a toolbox chains its records with the key of its policy vault, which
the console made and keeps. Pulling reads the remote log from where the last pull
stopped, checks every new record against that chain (so an edit on the droplet is
caught, not imported), and appends them to the local log — re-chained with the local
key, the actor marked with the toolbox — together with the new position, in one vault
transaction: a pull that dies half-way imports nothing and is simply done again.
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass
from typing import Any

from console.audit import GENESIS, AuditEvent, record_mac
from console.errors import TbxError
from console.model import Toolbox
from console.remote.deploy import mirror_for, remote_home
from console.remote.tunnel import Tunnel
from console.workspace import AUDIT_META, Workspace

PULL_META = "remote-audit|"


class RemoteAuditBroken(TbxError):
    pass


@dataclass(frozen=True)
class PullPosition:
    offset: int = 0
    seq: int = 0
    mac: str = GENESIS

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PullPosition:
        return cls(**data) if data else cls()


def check_records(lines: list[bytes], key: bytes, position: PullPosition) -> tuple[list[dict[str, Any]], str]:
    """Verify new lines continue the chain at ``position`` (pure). Returns the records and
    the last MAC; raises ``RemoteAuditBroken`` naming the first bad record."""
    records, prev, expected = [], position.mac, position.seq + 1
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            raise RemoteAuditBroken(f"remote audit record {expected} is unreadable") from None
        if record.get("seq") != expected or record.get("prev") != prev:
            raise RemoteAuditBroken(
                f"remote audit record {expected} does not follow record {expected - 1} (deleted, reordered or replaced)"
            )
        if not hmac.compare_digest(str(record.get("mac")), record_mac(key, record)):
            raise RemoteAuditBroken(f"remote audit record {expected} was altered: its MAC does not match")
        records.append(record)
        prev, expected = record["mac"], expected + 1
    return records, prev


def pull_audit(ws: Workspace, toolbox: Toolbox, tunnel: Tunnel) -> int:
    """Import the gateway's new records; returns how many."""
    meta_key = PULL_META + toolbox.id
    position = PullPosition.from_json(ws.repos.meta.get(meta_key))
    raw = tunnel.read_file(f"{remote_home(toolbox)}/audit.jsonl", position.offset)
    complete = raw[: raw.rfind(b"\n") + 1]  # a record being written is taken next time
    if not complete:
        return 0
    mirror = mirror_for(ws, toolbox).open()
    key = base64.b64decode((mirror.repos.meta.get(AUDIT_META) or {})["key"])
    try:
        records, last_mac = check_records(complete.splitlines(), key, position)
    except RemoteAuditBroken as exc:
        with ws.change(actor="system") as change:
            change.record("remote.audit-broken", f"toolbox:{toolbox.name}", decision="error", detail={"why": str(exc)})
        raise RemoteAuditBroken(
            f"{exc} on toolbox {toolbox.name}; nothing was imported — inspect {remote_home(toolbox)}/audit.jsonl there"
        ) from None
    with ws.change() as change:
        for record in records:
            change.events.append(AuditEvent(
                actor=f"{record['actor']}@{toolbox.name}", action=record["action"], target=record["target"],
                decision=record["decision"], agent=record.get("agent"),
                detail={**(record.get("detail") or {}), "remote": {"seq": record["seq"], "ts": record["ts"],
                                                                    "mac": record["mac"][:16]}},
            ))
        change.repos.meta.set(meta_key, {"offset": position.offset + len(complete), "seq": records[-1]["seq"],
                                         "mac": last_mac})
    return len(records)
