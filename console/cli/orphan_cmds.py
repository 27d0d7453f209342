"""``tbx toolbox orphans | adopt | destroy-orphan``: droplets tbx made that no toolbox owns."""

from __future__ import annotations

import os
from pathlib import Path

import click

from console.cli.base import CliState, confirm_or_yes, emit_json, json_option, pass_state
from console.cli.server_cmds import progress_line
from console.cli.toolbox_views import orphan_json, print_added, print_orphans, read_key

SCAN_TIMEOUT = 15.0
"""Seconds one request of a scan may take: it asks, it does not create."""
TOKEN_ENV = "DIGITALOCEAN_TOKEN"


def token_from_env(ws) -> bool:  # noqa: ANN001 - Workspace
    """Keep $DIGITALOCEAN_TOKEN in the vault when it is set (and new); whether it is set."""
    from console.services import remote_toolboxes as remote

    token = os.environ.get(TOKEN_ENV)
    if token and remote.api_token(ws) != token:
        remote.set_api_token(ws, token)
    return bool(token)


def add_to(toolbox: click.Group) -> None:
    @toolbox.command("orphans")
    @json_option
    @pass_state
    def orphans_(state: CliState, as_json: bool) -> None:
        """Droplets tbx made that no toolbox owns (asks DigitalOcean for droplets tagged tbx)."""
        from console.services import droplet_orphans as orphans
        from console.services.remote_toolboxes import api_token, droplet_api

        ws = state.workspace()
        token_from_env(ws)
        if api_token(ws) is None:  # tbx never made a droplet: nothing to ask about
            found, elsewhere = orphans.orphans(ws), []
        else:
            scanned = orphans.scan(ws, droplet_api(ws, request_timeout=SCAN_TIMEOUT))
            found, elsewhere = scanned.orphans, scanned.elsewhere
        if as_json:
            emit_json({"orphans": [orphan_json(o) for o in found],
                       "other_installations": [{"id": d.id, "name": d.name, "region": d.region, "size": d.size,
                                                "price_monthly": d.price_monthly} for d in elsewhere]})
            return
        print_orphans(found, errors=True)
        if not found:
            click.echo("no droplet tbx made is left without a toolbox")
        if elsewhere:
            click.echo(f"\n{len(elsewhere)} droplet(s) tagged tbx by another installation (left alone): "
                       + ", ".join(f"{d.name} ({d.id}, {d.region})" for d in elsewhere))

    @toolbox.command("adopt")
    @click.argument("droplet_id", type=int)
    @click.argument("name")
    @click.option("--identity", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                  help="A private key that logs in as root (when tbx has none for the droplet).")
    @pass_state
    def adopt(state: CliState, droplet_id: int, name: str, identity: str | None) -> None:
        """Make a droplet no toolbox owns the toolbox NAME (its gateway is deployed again)."""
        from console.services.remote_toolboxes import adopt_droplet

        key_text = read_key(Path(identity)) if identity else None
        print_added(adopt_droplet(state.workspace(), droplet_id, name, key_text, progress=progress_line))

    @toolbox.command("destroy-orphan")
    @click.argument("droplet_id", type=int)
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--wait", type=click.FloatRange(min=0), default=180.0, show_default=True, metavar="SECONDS",
                  help="How long to keep asking while DigitalOcean refuses (the droplet is busy).")
    @pass_state
    def destroy_orphan(state: CliState, droplet_id: int, yes: bool, wait: float) -> None:
        """Destroy a droplet no toolbox owns (retried while it is busy) and forget it."""
        from console.services import droplet_orphans as orphans

        ws = state.workspace()
        orphan = orphans.require(ws, droplet_id)
        confirm_or_yes(yes, f"DESTROY droplet {orphans.describe(orphan)} and everything on it?")
        orphans.destroy_orphan(ws, droplet_id, progress_line, budget=wait)
        click.echo(f"droplet {orphan.name} ({droplet_id}) destroyed")
