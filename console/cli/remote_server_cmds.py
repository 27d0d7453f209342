"""``tbx server add TOOLBOX --url URL --name NAME [--header NAME=VAR]...``: a remote server."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from console.cli.base import interactive
from console.errors import UsageError
from console.services.items import plural

if TYPE_CHECKING:
    from console.model import ServerInstance
    from console.workspace import Workspace


def remote_server_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed([
        click.option("--url", help="A remote server's MCP endpoint (https://...), instead of CATALOG_ID."),
        click.option("--header", "header", multiple=True, metavar="NAME=VAR",
                     help="A remote server's HTTP header, its value from env var VAR or a hidden prompt; "
                          "kept in the vault. Repeatable."),
        click.option("--transport", type=click.Choice(["streamable-http", "sse"]), default="streamable-http",
                     show_default=True, help="How a remote server is reached (Streamable HTTP falls back to SSE)."),
        click.option("--device", is_flag=True,
                     help="A remote server that asks for sign-in: sign in with a code on another device."),
        click.option("--no-browser", is_flag=True,
                     help="A remote server that asks for sign-in: print the address instead of opening a browser."),
    ]):
        command = option(command)
    return command


def remote_edit_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed([
        click.option("--url", help="A remote server: its new MCP endpoint (https://...)."),
        click.option("--header", "header", multiple=True, metavar="NAME=VAR",
                     help="A remote server: set its HTTP header NAME, the value from env var VAR or a hidden "
                          "prompt; kept in the vault. Repeatable."),
        click.option("--remove-header", "remove_header", multiple=True, metavar="NAME",
                     help="A remote server: drop its HTTP header NAME. Repeatable."),
    ]):
        command = option(command)
    return command


def read_header(spec: str) -> tuple[str, str]:
    """``NAME=VAR``: the header's value from the environment variable VAR, or asked for,
    hidden, when VAR is unset (a value typed on the command line would land in history)."""
    name, sep, var = spec.partition("=")
    if not sep or not name or not var:
        raise UsageError(f"bad --header {spec!r}: use NAME=VAR (the value is read from the environment variable VAR)")
    if var in os.environ:
        return name, os.environ[var]
    if not interactive():
        raise UsageError(f"no value for header {name}: set the environment variable {var}")
    return name, getpass.getpass(f"{name} ({var}): ")


def add_remote(ws: Workspace, toolbox: str, url: str, name: str | None, header: tuple[str, ...],
               transport: str, *, device: bool = False, no_browser: bool = False) -> None:
    """Add it; a server that asks for MCP authorization is signed in to first (or the
    sign-in made before with 'tbx server login URL' is used), and then carries its token."""
    from console.errors import TbxError
    from console.services.remote_servers import add_remote_server, asks_for_sign_in, signed_in_to

    if not name:
        raise UsageError("a remote server needs --name NAME")
    headers = dict(read_header(h) for h in header)

    def add(connection: str | None) -> ServerInstance:
        return add_remote_server(ws, toolbox, url, name=name, headers=headers, connection=connection,
                                 transport="sse" if transport == "sse" else "streamable-http",
                                 progress=lambda line: click.echo(f"  {line}"))

    connection = signed_in_to(ws, url)
    try:
        created = add(connection)
    except TbxError:
        if connection is not None or headers or not asks_for_sign_in(url):
            raise
        from console.cli.server_login_cmds import sign_in_here

        click.echo("  it asks for sign-in (MCP authorization): signing in")
        signed = sign_in_here(ws, url, device=device, no_browser=no_browser)
        click.echo(f"  signed in to {signed.account} (connection {signed.id})")
        created = add(signed.id)
    found = plural(item.ref for item in ws.repos.tools.of_server(created.id))
    click.echo(f"remote server {toolbox}/{created.name} answers with {found}, pending approval")
    click.echo(f"next: 'tbx tools list {toolbox}/{created.name}', then 'tbx tools approve {toolbox}/{created.name}'")


def edit_remote(ws: Workspace, target: str, url: str | None, header: tuple[str, ...],
                remove_header: tuple[str, ...]) -> None:
    """Point a remote server elsewhere or change its headers; it answers first, or nothing changes."""
    from console.services.remote_edit import edit_remote_server, said

    outcome = edit_remote_server(ws, target, url=url, headers=dict(read_header(h) for h in header),
                                 remove_headers=remove_header, progress=lambda line: click.echo(f"  {line}"))
    click.echo(f"{target}: {said(outcome, target)}")
