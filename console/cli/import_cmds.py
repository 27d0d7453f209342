"""``tbx import FILE``: bring a desktop MCP client's servers into a toolbox."""

from __future__ import annotations

from pathlib import Path

import click

from console.catalog import load_catalog
from console.catalog.importer import ImportItem, PendingInput, plan_import, render_plan
from console.cli.base import CliState, emit_json, interactive, json_option, note, pass_state


def _ask(item: ImportItem, pending: PendingInput) -> str | None:
    if not interactive():
        return None
    value = click.prompt(f"{item.name}: {pending.env} ({pending.label})", default="", show_default=False,
                         hide_input=pending.secret, err=True)
    return value or None


def register(cli: click.Group) -> None:
    @cli.command("import")
    @click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
    @click.option("--toolbox", default="local", show_default=True, help="Toolbox to add the servers to.")
    @click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
    @json_option
    @pass_state
    def import_(state: CliState, file: Path, toolbox: str, dry_run: bool, as_json: bool) -> None:
        """Import servers from a Claude Desktop, Cursor or VS Code MCP config file.

        Pins every package to an exact version, moves secret-looking env values into
        the vault and turns host paths into mounts. Servers that are not npx/uvx
        packages (docker, local scripts, remote URLs) are skipped with the reason.
        """
        plan = plan_import(file, catalog=load_catalog(state.paths))
        if dry_run:
            if as_json:
                emit_json(plan.to_json())
            else:
                click.echo(render_plan(plan))
            return
        if not plan.items:
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
