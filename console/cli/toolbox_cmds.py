"""``tbx toolbox ...``: the Docker hosts that run servers."""

from __future__ import annotations

from pathlib import Path

import click

from console.cli.base import (
    CliState,
    confirm_or_yes,
    emit_json,
    interactive,
    json_option,
    note,
    pass_state,
    print_table,
)
from console.cli.orphan_cmds import SCAN_TIMEOUT, TOKEN_ENV, add_to, token_from_env
from console.cli.server_cmds import progress_line
from console.cli.toolbox_views import ORPHAN_HINT, orphan_json, print_added, print_orphans, read_key
from console.errors import UsageError
from console.services import remote_toolboxes as remote
from console.services import toolboxes as svc


def _ensure_token(ws) -> None:  # noqa: ANN001 - Workspace
    """The API token comes from the vault; the first time from $DIGITALOCEAN_TOKEN or a prompt."""
    if token_from_env(ws) or remote.api_token(ws) is not None:
        return
    if not interactive():
        raise UsageError(f"no DigitalOcean API token: set {TOKEN_ENV} (it is then kept in the vault)")
    import getpass

    remote.set_api_token(ws, getpass.getpass("DigitalOcean API token (hidden): "))


def _mention_orphans(ws) -> None:  # noqa: ANN001 - Workspace
    """Before creating another droplet: say which ones are billed with no toolbox (one API call)."""
    from console.errors import TbxError
    from console.services.droplet_orphans import describe, scan

    try:
        found = scan(ws, remote.droplet_api(ws, request_timeout=SCAN_TIMEOUT)).orphans
    except TbxError as exc:  # the create asks the API again and says what fails there
        note(f"could not look for droplets no toolbox owns: {exc}")
        return
    if found:
        note(f"{len(found)} droplet(s) billed that no toolbox owns: {', '.join(describe(o) for o in found)}; "
             f"{ORPHAN_HINT}")


def register(cli: click.Group) -> None:
    @cli.group()
    def toolbox() -> None:
        """Register, list and remove toolboxes; find droplets no toolbox owns."""

    add_to(toolbox)

    @toolbox.command("add")
    @click.argument("name")
    @click.option("--local", "local", is_flag=True, help="The Docker engine on this machine.")
    @click.option("--engine", metavar="URL", help="--local: engine socket (default: DOCKER_HOST or the local socket).")
    @click.option("--droplet", is_flag=True, help="A new DigitalOcean droplet, made for this toolbox.")
    @click.option("--region", default=None, help=f"--droplet: region slug (default {remote.DEFAULT_REGION}).")
    @click.option("--size", default=None, help=f"--droplet: size slug (default {remote.DEFAULT_SIZE}).")
    @click.option("--image", default=None, metavar="SLUG",
                  help="--droplet: image slug (default: [droplet] image in config.toml, else debian-12-x64).")
    @click.option("--yes", is_flag=True, help="--droplet: do not ask before creating a billed droplet.")
    @click.option("--ssh", "ssh_target", metavar="USER@HOST[:PORT]", help="A host that already runs Docker.")
    @click.option("--identity", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                  help="--ssh: the private key that logs in (default ~/.ssh/id_ed25519).")
    @pass_state
    def add(state: CliState, name: str, local: bool, engine: str | None, droplet: bool, region: str | None,
            size: str | None, image: str | None, yes: bool, ssh_target: str | None, identity: str | None) -> None:
        """Register a toolbox: --local | --droplet [--region R --size S --image SLUG] | --ssh USER@HOST[:PORT]."""
        if sum((local, droplet, ssh_target is not None)) != 1:
            raise UsageError("say where the toolbox runs: exactly one of --local, --droplet, --ssh USER@HOST")
        if (region or size or image) and not droplet:
            raise UsageError("--region, --size and --image are for --droplet")
        ws = state.workspace()
        if local:
            created = svc.add_local(ws, name, engine)
            click.echo(f"toolbox {created.name} added (local engine {engine or 'default'})")
            return
        if droplet:
            _ensure_token(ws)
            region, size = region or remote.DEFAULT_REGION, size or remote.DEFAULT_SIZE
            image = image or ws.settings.droplet.image
            api = remote.droplet_api(ws)
            price = api.price(size)
            api.check_image(image, region)  # before asking to pay for it
            _mention_orphans(ws)
            confirm_or_yes(yes, f"Create droplet tbx-{name} ({size} in {region}, {image}, ${price:.2f}/month)?")
            added = remote.add_droplet(ws, name, region=region, size=size, image=image, progress=progress_line)
        else:
            key_text = read_key(Path(identity or Path.home() / ".ssh" / "id_ed25519"))
            added = remote.add_ssh(ws, name, ssh_target or "", key_text, progress=progress_line)
        print_added(added)

    @toolbox.command("options")
    @json_option
    @pass_state
    def options(state: CliState, as_json: bool) -> None:
        """Droplet sizes (with monthly price) and regions, from the DigitalOcean API."""
        ws = state.workspace()
        _ensure_token(ws)
        api = remote.droplet_api(ws)
        sizes = [s for s in api.sizes() if s.available]
        regions = [r for r in api.regions() if r.available]
        if as_json:
            emit_json({"sizes": [s.__dict__ for s in sizes], "regions": [r.__dict__ for r in regions]})
            return
        print_table(["SIZE", "VCPUS", "MEMORY", "DISK", "$/MONTH", "REGIONS"],
                    [[s.slug, s.vcpus, f"{s.memory_mb} MiB", f"{s.disk_gb} GB", f"{s.price_monthly:.2f}",
                      " ".join(s.regions)] for s in sorted(sizes, key=lambda s: s.price_monthly)])
        click.echo("")
        print_table(["REGION", "NAME"], [[r.slug, r.name] for r in regions])

    @toolbox.command("sync")
    @click.argument("name")
    @pass_state
    def sync(state: CliState, name: str) -> None:
        """Push a remote toolbox's policy to its gateway and pull its audit records."""
        ws = state.workspace()
        done = remote.sync(ws, ws.repos.toolboxes.require(name))
        click.echo(f"{name}: policy {'pushed' if done.pushed else 'already current'}, "
                   f"{done.pulled} audit record(s) pulled")

    @toolbox.command("list")
    @json_option
    @pass_state
    def list_(state: CliState, as_json: bool) -> None:
        """List toolboxes, and droplets tbx made that no toolbox owns (kind "orphan" in --json)."""
        from console.remote.sshkeys import fingerprint

        from console.remote.push import record_late_landings
        from console.remote.push_state import policy_status

        ws = state.workspace()
        record_late_landings(ws)  # what a background retry brought since, into the audit log
        toolboxes = sorted(ws.repos.toolboxes, key=lambda t: t.name)
        counts = {t.id: len(ws.repos.servers.in_toolbox(t.id)) for t in toolboxes}
        policy = {t.id: policy_status(ws, t) for t in toolboxes}
        orphans = sorted(ws.repos.orphans, key=lambda o: (o.found, o.droplet_id))
        if as_json:
            emit_json([{**t.model_dump(mode="json"), "servers": counts[t.id], "policy": policy[t.id].to_json()}
                       for t in toolboxes] + [orphan_json(o) for o in orphans])
            return
        print_table(
            ["NAME", "KIND", "WHERE", "SERVERS", "GATEWAY", "HOST KEY", "POLICY"],
            [[t.name, t.kind.value, t.ssh_target or t.engine_endpoint or "default", counts[t.id],
              t.gateway_address or "-", fingerprint(t.ssh_host_key) if t.ssh_host_key else "-",
              policy[t.id].describe()]
             for t in toolboxes],
            empty="no toolboxes yet: 'tbx toolbox add local --local'",
        )
        if orphans:
            click.echo("")
            print_orphans(orphans)

    @toolbox.command()
    @click.argument("name")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @pass_state
    def remove(state: CliState, name: str, yes: bool) -> None:
        """Forget a toolbox, its servers and every grant into it."""
        ws = state.workspace()
        box = ws.repos.toolboxes.require(name)
        if box.is_remote:
            what = f"DESTROY droplet {box.droplet_id}" if box.droplet_id else f"remove tbx's containers from {box.ssh_target}"
            confirm_or_yes(yes, f"Remove toolbox {name}: {what}, and forget its servers and grants?")
            remote.remove_remote(ws, name, progress_line)
            click.echo(f"toolbox {name} removed")
            return
        confirm_or_yes(yes, f"Remove toolbox {name} with its servers and grants?")
        counts = svc.remove_toolbox(ws, name)
        click.echo(f"toolbox {name} removed ({', '.join(f'{v} {k}' for k, v in counts.items())})")

    @toolbox.command()
    @click.argument("name")
    @pass_state
    def reconcile(state: CliState, name: str) -> None:
        """Make Docker match the vault: start, stop, re-create, remove orphans."""
        from console.services.servers import reconcile as run_reconcile

        actions = run_reconcile(state.workspace(), name, progress_line)
        click.echo("\n".join(actions) if actions else f"toolbox {name} already matches the vault")
