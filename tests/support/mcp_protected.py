"""A remote MCP server behind the test provider's MCP authorization server.

Built with the mcp SDK's resource-server support: it answers 401 with
``WWW-Authenticate: Bearer resource_metadata=...``, publishes RFC 9728 metadata naming
``/mcp-as`` as its authorization server, and takes only live tokens issued for its own
URL (the SDK's ``validate_token_resource`` compares the resource the provider bound into
the token). Served by uvicorn in a thread on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import warnings
from types import TracebackType

import uvicorn

from tests.support.oauth_provider import LocalOAuthProvider
from tests.support.oauth_provider.routes_mcp import PREFIX, live_audience


class ProtectedMcpServer:
    def __init__(self, provider: LocalOAuthProvider, scopes: list[str] | None = None) -> None:
        self.provider = provider
        self.scopes = scopes or ["mcp:tools"]
        self.refuse_all = False
        """True: every token is refused (a server that stopped trusting this sign-in)."""
        self.authorizations: list[str | None] = []
        """The Authorization header of every request to /mcp, in order."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def _app(self):  # noqa: ANN202 - a Starlette app
        from mcp.server.auth.provider import AccessToken
        from mcp.server.auth.settings import AuthSettings
        from mcp.server.mcpserver import MCPServer

        outer = self

        class Verifier:
            async def verify_token(self, token: str) -> AccessToken | None:
                client, found, resource = live_audience(outer.provider, token)
                if client is None or found is None or outer.refuse_all:
                    return None
                return AccessToken(token=token, client_id=client.client_id, scopes=found.scope.split(),
                                   expires_at=int(found.access_expires_at) if found.access_expires_at else None,
                                   resource=resource)

        auth = AuthSettings(issuer_url=self.provider.base + PREFIX, resource_server_url=self.url,
                            required_scopes=self.scopes, validate_token_resource=True)
        server = MCPServer("protected", token_verifier=Verifier(), auth=auth)

        @server.tool(description="Echo the text back.")
        def echo(text: str) -> str:
            return f"echo: {text}"

        app = server.streamable_http_app(host="127.0.0.1")

        async def recording(scope, receive, send):  # noqa: ANN001, ANN202
            if scope["type"] == "http" and scope["path"] == "/mcp":
                headers = dict(scope["headers"])
                value = headers.get(b"authorization")
                self.authorizations.append(value.decode("latin-1") if value is not None else None)
            await app(scope, receive, send)

        return recording

    def __enter__(self) -> ProtectedMcpServer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            app = self._app()
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=asyncio.run, args=(self._server.serve(sockets=[self._sock]),),
                                        name="protected-mcp", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the protected MCP server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._sock.close()
