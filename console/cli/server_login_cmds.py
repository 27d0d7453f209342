"""``tbx server login``: sign in to a remote MCP server's authorization server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from console.cli.base import CliState, emit_json, json_option, pass_state

if TYPE_CHECKING:
    from console.model import Connection
    from console.services.servers import ServerRef
    from console.workspace import Workspace


def server_url(ws: Workspace, target: str) -> tuple[str, ServerRef | None]:
    """(URL, server) of TOOLBOX/SERVER, or (URL, None) when ``target`` is the URL itself."""
    from console.errors import UsageError
    from console.services import servers

    if target.startswith(("https://", "http://")):
        return target, None
    ref = servers.resolve(ws, target)
    url = getattr(ref.server, "url", None)
    if not url:
        raise UsageError(f"{target} runs in a container, not at a URL: it has nothing to sign in to "
                         "(its account, if any, is a connection: 'tbx connection list')")
    return url, ref


def sign_in_here(ws: Workspace, url: str, *, device: bool = False, no_browser: bool = False,
                 client_id: str | None = None, client_metadata_url: str | None = None) -> Connection:
    """Sign in as a person at this terminal does: the address printed (and opened in the
    browser), or a device code shown; the token goes to the vault, never to the screen."""
    from console.cli.connection_cmds import _show_code, _show_url
    from console.oauth.flows import open_system_browser
    from console.services.mcp_sign_in import sign_in

    def opener(address: str) -> bool:
        _show_url(address)
        return False if no_browser else open_system_browser(address)

    return asyncio.run(sign_in(ws, url, device=device, open_browser=opener, show_code=_show_code,
                               client_id=client_id, client_metadata_url=client_metadata_url))


def add_to(server: click.Group) -> None:
    """Registers under ``tbx server`` (not a top-level command: console.cli.COMMANDS)."""
    @server.command()
    @click.argument("target", metavar="TOOLBOX/SERVER|URL")
    @click.option("--device", is_flag=True, help="Sign in on another device with a code, where the server offers it.")
    @click.option("--no-browser", is_flag=True, help="Print the sign-in address instead of opening a browser.")
    @click.option("--client-id", help="A client id you registered at the server's authorization server by hand "
                                      "(when it takes neither client metadata documents nor registration).")
    @click.option("--client-metadata-url", metavar="URL",
                  help="Where tbx's client ID metadata document is published (https, with a path).")
    @json_option
    @pass_state
    def login(state: CliState, target: str, device: bool, no_browser: bool, client_id: str | None,
              client_metadata_url: str | None, as_json: bool) -> None:
        """Sign in to a remote server's MCP authorization: discovered from its 401, signed in
        with PKCE in the browser (or by device code), kept as a connection the gateway
        refreshes. Agents never see the token."""
        ws = state.workspace()
        url, ref = server_url(ws, target)
        connection = sign_in_here(ws, url, device=device, no_browser=no_browser, client_id=client_id,
                                  client_metadata_url=client_metadata_url)
        if ref is not None:
            from console.services.remote_sign_in import bind

            bind(ws, ref, connection)
        if as_json:
            emit_json({"connection": connection.id, "resource": connection.account, "scopes": connection.scopes})
            return
        click.echo(f"signed in to {connection.account} (connection {connection.id}, scopes "
                   f"{' '.join(connection.scopes) or '-'})")

    @server.command("client-metadata")
    @click.argument("url")
    def client_metadata(url: str) -> None:
        """Print the client ID metadata document to publish at URL (https, with a path).
        Serve it there as application/json and set oauth.client_metadata_url = URL in
        config.toml: authorization servers that read such documents then know tbx by URL,
        with no registration."""
        import json

        from console.errors import UsageError
        from console.oauth.mcp_discovery import DiscoveryError
        from console.oauth.mcp_registration import published_document

        try:
            document = published_document(url)
        except DiscoveryError as exc:
            raise UsageError(str(exc)) from None
        click.echo(json.dumps(document, indent=2))
