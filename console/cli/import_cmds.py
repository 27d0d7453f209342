"""``tbx import FILE``: bring a desktop MCP client's servers into a toolbox."""

from __future__ import annotations

from pathlib import Path

import click

from console.catalog import load_catalog
from console.catalog.importer import ImportItem, Naming, PendingInput, plan_import, render_plan
from console.catalog.remote_import import RemoteItem
from console.cli.base import CliState, emit_json, interactive, json_option, note, pass_state
from console.errors import TbxError, UsageError
from console.model import check_name


def _ask(item: ImportItem | RemoteItem, pending: PendingInput) -> str | None:
    if not interactive():
        return None
    value = click.prompt(f"{item.name}: {pending.env} ({pending.label})", default="", show_default=False,
                         hide_input=pending.secret, err=True)
    return value or None


def _naming(state: CliState, toolbox: str, names: tuple[str, ...], prefix: str) -> Naming:
    """The toolbox's server names (when there is a vault to read them from: a dry run on a
    machine without one still plans), and the renames asked for."""
    rename: dict[str, str] = {}
    for pair in names:
        key, sep, name = pair.partition("=")
        if not sep or not key or not name:
            raise UsageError(f"--name takes KEY=NAME (the server's name in the file, then the name to give it), "
                             f"not {pair!r}")
        try:
            rename[key] = check_name("server", name)
        except TbxError as exc:
            raise UsageError(f"--name {pair}: {exc}") from None
    if prefix:
        try:
            check_name("server", prefix + "x")
        except TbxError:
            raise UsageError(f"--prefix {prefix!r} cannot start a server name (a-z, 0-9 and '-')") from None
    existing: frozenset[str] = frozenset()
    if state.paths.vault.exists():
        ws = state.workspace()
        box = ws.repos.toolboxes.by_name(toolbox)
        if box is not None:
            existing = frozenset(server.name for server in ws.repos.servers.in_toolbox(box.id))
    return Naming(existing, toolbox, rename, prefix)


def register(cli: click.Group) -> None:
    @cli.command("import")
    @click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
    @click.option("--toolbox", default="local", show_default=True, help="Toolbox to add the servers to.")
    @click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
    @click.option("--name", "names", multiple=True, metavar="KEY=NAME",
                  help="Import the file's server KEY as NAME (for a name the toolbox already has); repeatable.")
    @click.option("--prefix", default="", help="Put this before every imported server's name, e.g. 'desktop-'.")
    @json_option
    @pass_state
    def import_(state: CliState, file: Path, toolbox: str, dry_run: bool, names: tuple[str, ...], prefix: str,
                as_json: bool) -> None:
        """Import servers from a Claude Desktop, Claude Code, Cursor or VS Code MCP config file.

        Pins every package to an exact version, moves secret-looking env values into
        the vault and turns host paths into mounts. Servers that are not npx/uvx
        packages (docker, local scripts) are skipped with the reason; a remote server
        (a url entry, or mcp-remote URL) is added as one, its headers kept in the vault,
        and so is a name the toolbox already has (--name or --prefix give another).
        """
        naming = _naming(state, toolbox, names, prefix)
        plan = plan_import(file, catalog=load_catalog(state.paths), naming=naming)
        known = {s.key for s in [*plan.items, *plan.remotes]} | {s.name for s in [*plan.items, *plan.remotes]} | {
            s.name.split(" (", 1)[0] for s in plan.skipped}
        if unknown := sorted(set(naming.rename) - known):
            raise UsageError(f"--name {unknown[0]}=...: {file} has no server by that name")
        if dry_run:
            if as_json:
                emit_json(plan.to_json())
            else:
                click.echo(render_plan(plan))
            return
        if not plan.items and not plan.remotes:
            if as_json:
                emit_json({"toolbox": toolbox, "added": [], "failed": [],
                           "skipped": plan.to_json()["skipped"]})
            else:
                click.echo(render_plan(plan))
                note("nothing to add")
            return

        def on_item(name: str, error: str | None) -> None:
            if as_json:
                return
            if error is None:
                click.echo(f"added {name}")
            else:
                click.echo(f"failed {name}: {error}", err=True)

        # Here, not at the top: a dry run never loads the runtime (Docker SDK, MCP client).
        from console.services.imports import apply_plan

        outcome = apply_plan(
            state.workspace(), plan, toolbox, ask=_ask,
            progress=None if as_json else (lambda message: click.echo(f"  {message}", err=True)),
            on_item=on_item,
        )
        if as_json:
            emit_json(outcome.to_json())
        else:
            for skipped in outcome.skipped:
                click.echo(f"skipped {skipped.name}: {skipped.reason}")
            click.echo(outcome.summary())
        if outcome.failed:
            raise click.exceptions.Exit(1)
