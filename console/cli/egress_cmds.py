"""``tbx server egress``: the hosts a server may reach through its gateway's proxy."""

from __future__ import annotations

import click

from console.cli.base import CliState, emit_json, json_option, pass_state


def add_to(server: click.Group) -> None:
    """Registers under ``tbx server`` (not a top-level command: console.cli.COMMANDS)."""
    @server.command()
    @click.argument("target", metavar="TOOLBOX/SERVER")
    @click.option("--allow-host", "allow", multiple=True, metavar="HOST[:PORT]",
                  help="Let the server reach HOST (a port, or 443 and 80; '*.DOMAIN' for its subdomains). Repeatable.")
    @click.option("--remove-host", "remove", multiple=True, metavar="HOST[:PORT]",
                  help="Take an entry off the list. Repeatable.")
    @click.option("--clear", is_flag=True, help="Empty the list: every attempt is refused (and recorded).")
    @click.option("--off", is_flag=True, help="No egress at all: no proxy in the container (made again).")
    @json_option
    @pass_state
    def egress(state: CliState, target: str, allow: tuple[str, ...], remove: tuple[str, ...], clear: bool,
               off: bool, as_json: bool) -> None:
        """Show or change the hosts a server may reach. The container stays on network none:
        the toolbox's gateway proxies what the list allows and refuses, and records, the rest.
        A change to the list applies to the server's next connection, without a restart."""
        from console.errors import UsageError
        from console.services import server_edit, servers
        from console.services.egress import allow_list

        if off and (allow or remove or clear):
            raise UsageError("--off takes no other option: it turns the proxy off, the list is kept")
        ws = state.workspace()
        ref = servers.resolve(ws, target)
        current = ref.server
        if current.kind == "remote":
            raise UsageError(f"{ref.label} is a remote server: the gateway calls {current.url} itself; an egress "
                             "allow-list is for servers in containers")
        outcome = None
        if off or allow or remove or clear:
            hosts = allow_list([] if clear else current.egress, add=allow, remove=() if clear else remove)
            network = "none" if off else "egress"
            outcome = server_edit.edit_server(ws, target, network=network, egress=hosts,
                                          progress=lambda line: click.echo(f"  {line}"))
            current = servers.resolve(ws, target).server
        if as_json:
            emit_json({"server": ref.label, "egress": current.network == "egress", "hosts": current.egress,
                       "changed": outcome.changed if outcome else []})
            return
        if outcome is not None and not outcome.changed:
            click.echo(f"{ref.label}: nothing changed")
        if current.network != "egress":
            click.echo(f"{ref.label}: no egress (network none, no proxy); "
                       f"'tbx server egress {ref.label} --allow-host HOST' gives it some")
            return
        click.echo(f"{ref.label} may reach: {', '.join(current.egress) or 'nothing (every attempt is refused)'}")
        if outcome is not None and "network" in outcome.changed:
            click.echo("its container was made again with the proxy")
        if current.egress:
            click.echo("through the toolbox's gateway's proxy: the gateway must be running for the server to reach them")
