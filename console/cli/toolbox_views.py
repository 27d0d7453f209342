"""How ``tbx toolbox`` commands print toolboxes added and droplets no toolbox owns, and
read the SSH keys they are given."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from console.cli.base import print_table
from console.errors import UsageError

if TYPE_CHECKING:
    from console.model import Orphan
    from console.services.remote_toolboxes import Added

ORPHAN_HINT = "'tbx toolbox destroy-orphan ID' destroys one, 'tbx toolbox adopt ID NAME' makes it a toolbox"


def read_key(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the SSH key {path}: {exc.strerror}; pass --identity FILE") from None


def print_added(added: Added) -> None:
    click.echo(f"toolbox {added.toolbox.name} added ({added.toolbox.kind.value} {added.toolbox.ssh_target})")
    click.echo(f"  SSH host key   {added.host_fingerprint} (pinned)")
    click.echo(f"  gateway        {added.gateway_url}/mcp")
    click.echo(f"  TLS cert       {added.gateway_fingerprint}")
    if added.price_monthly is not None:
        click.echo(f"  price          ${added.price_monthly:.2f}/month")


def orphan_json(orphan: Orphan) -> dict[str, Any]:
    """An orphan as ``tbx toolbox list --json`` and ``orphans --json`` give it."""
    return {"kind": "orphan", **orphan.model_dump(mode="json", exclude={"ssh_key"})}


def print_orphans(orphans: list[Orphan], *, errors: bool = False) -> None:
    """The table of droplets billed that no toolbox owns (nothing when there are none)."""
    if not orphans:
        return
    total = sum(o.price_monthly or 0.0 for o in orphans)
    click.echo(f"DROPLETS NO TOOLBOX OWNS (billed, ${total:.2f}/month): {ORPHAN_HINT}")
    headers = ["ID", "NAME", "REGION", "SIZE", "$/MONTH", "WHY"] + (["LAST ERROR"] if errors else [])
    print_table(headers, [
        [o.droplet_id, o.name, o.region or "?", o.size or "?",
         f"{o.price_monthly:.2f}" if o.price_monthly is not None else "?", o.cause.value,
         *([o.error or "-"] if errors else [])]
        for o in orphans])
