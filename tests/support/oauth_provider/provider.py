"""``LocalOAuthProvider``: the Flask app of every shape, served by werkzeug in a thread."""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType
from typing import Literal

from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .core import CoreServer
from .id_tokens import Fault
from .models import Client, Store, User
from .routes_github import github_blueprint
from .routes_mcp import McpSettings, mcp_blueprint
from .routes_microsoft import microsoft_blueprint
from .routes_oidc import google_blueprint, oidc_blueprint
from .routes_slack import slack_blueprint


class _QuietHandler(WSGIRequestHandler):
    """No access log: request lines carry codes and tokens."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def refuse_malformed() -> Response | None:
    """RFC 6749 §3.1/§3.2: no parameter more than once (in the body, or in both the body and
    the query); §2.3: one client authentication mechanism per request, and a client_id
    beside HTTP Basic must name the same client."""
    from .web import json_response

    def invalid(description: str) -> Response:
        return json_response({"error": "invalid_request", "error_description": description}, 400)

    names = [key for key, _ in request.form.items(multi=True)] + [key for key, _ in request.args.items(multi=True)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return invalid(f"{', '.join(repr(n) for n in repeated)} parameter must not be provided twice")
    basic = request.authorization if request.authorization and request.authorization.type == "basic" else None
    if basic is not None and ("client_secret" in request.form or "client_assertion" in request.form):
        return invalid("client authentication must only be provided using one mechanism")
    if basic is not None and "client_id" in request.form and request.form["client_id"] != basic.username:
        return invalid("client_id in the body does not match the authenticated client")
    return None


class LocalOAuthProvider:
    """A real authlib authorization server speaking the dialects of generic OIDC (/oidc),
    Google (/google), GitHub (/github), Microsoft Entra (/microsoft/{tenant}) and Slack
    (/slack) on one loopback port. Every attribute below may be changed at any time."""

    def __init__(self) -> None:
        self.user = "alice@example.test"
        """The account that is logged in at the provider and acts on consent pages."""
        self.consent: Literal["approve", "deny"] = "approve"
        self.access_token_ttl: float = 3600
        self.refresh_token_ttl: float = 86400
        self.rotate_refresh_tokens = True
        """Rotation where the provider lets the app choose (OIDC); for GitHub and Slack the
        app's "expiring tokens" setting. Google never rotates, Entra always does."""
        self.down = False
        """True: every route answers 503."""
        self.refresh_delay = 0.0
        """Seconds the token endpoint waits before handling a refresh_token grant."""
        self.refresh_barrier: threading.Barrier | None = None
        """Refresh grants wait here until that many are in flight: a race that surely happens."""
        self.device_interval: float = 1
        self.device_code_ttl: float = 600
        self.slow_down_increment: float = 5
        """Seconds added to a device code's interval on each slow_down (RFC 8628 §3.5)."""
        self.id_token_fault: Fault | None = None
        """What is wrong with the ID tokens the OIDC shape signs from now on (None: nothing)."""
        self.oidc_auth_methods = ["client_secret_basic", "client_secret_post", "none"]
        """token_endpoint_auth_methods_supported of the OIDC shape's discovery document."""
        self.oidc_scopes = ["openid", "email", "profile", "offline_access"]
        """scopes_supported of the OIDC shape's discovery document."""
        self.requests: Counter[str] = Counter()
        """Requests seen, by kind: authorize, code, refresh, device_code, device_poll,
        device_verify, revoke, userinfo (and token for an unknown grant_type). Requests
        answered 503 while ``down`` are counted too."""
        self.mcp = McpSettings()
        """The MCP authorization server (/mcp-as): its knobs and what it recorded."""
        self.store = Store()
        self.core = CoreServer(self.store, self)
        self.app = self._make_app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base(self) -> str:
        if self._server is None:
            raise RuntimeError("the provider is not started; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> LocalOAuthProvider:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="oauth-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalOAuthProvider:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what tests arrange --------------------------------------------------------------------
    def register_client(self, client_id: str, client_secret: str | None, scopes: list[str],
                        auth_method: str | None = None) -> None:
        """A client valid on every shape; public (PKCE, no secret) when ``client_secret`` is None.
        Any loopback ``http://127.0.0.1:<port>/<path>`` redirect URI is accepted (RFC 8252 §7.3).
        ``auth_method``: the only client authentication it may use (default: either secret method)."""
        with self.store.lock:
            self.store.clients[client_id] = Client(client_id, client_secret, tuple(scopes), auth_method)

    def approve_device(self, user_code: str) -> None:
        """``user`` approves the device authorization with this code on the verification page."""
        self.decide_device(user_code, True)

    def deny_device(self, user_code: str) -> None:
        self.decide_device(user_code, False)

    def decide_device(self, user_code: str, approve: bool, shape: str | None = None) -> None:
        with self.store.lock:
            device = self.store.by_user_code(user_code)
            if device is None or device.is_expired() or (shape is not None and device.shape != shape):
                raise KeyError(f"no pending device authorization with user code {user_code!r}")
            device.decision = (User(self.user), approve)

    def expire_refresh_tokens(self) -> None:
        """Every refresh token issued so far is now expired (invalid_grant on use)."""
        with self.store.lock:
            for token in self.store.tokens:
                if token.refresh_token is not None:
                    token.refresh_expires_at = 0.0

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (401 at the user endpoints)."""
        with self.store.lock:
            for token in self.store.tokens:
                token.access_expires_at = 0.0

    @property
    def revoked_tokens(self) -> set[str]:
        """Access and refresh tokens killed through a revocation endpoint (a revoked refresh
        token brings the access tokens of its grant with it)."""
        with self.store.lock:
            return set(self.store.revoked)

    @property
    def live_access_tokens(self) -> set[str]:
        with self.store.lock:
            return {t.access_token for t in self.store.tokens if t.access_live()}

    @property
    def live_refresh_tokens(self) -> set[str]:
        with self.store.lock:
            return {t.refresh_token for t in self.store.tokens if t.refresh_token and t.refresh_live()}

    # -- the app ---------------------------------------------------------------------------------
    def _make_app(self) -> Flask:
        app = Flask("local_oauth_provider")
        for blueprint in (oidc_blueprint, google_blueprint, github_blueprint, microsoft_blueprint, slack_blueprint,
                          mcp_blueprint):
            app.register_blueprint(blueprint(self))

        @app.before_request
        def count_and_maybe_fail() -> Response | None:
            view = app.view_functions.get(request.endpoint or "")
            kind = getattr(view, "oauth_kind", None)
            if kind is not None:
                name = kind() if callable(kind) else kind
                with self.store.lock:
                    self.requests[name] += 1
            if self.down:
                return Response("provider unavailable (simulated outage)\n", status=503, content_type="text/plain")
            if kind is not None and request.method == "POST":
                return refuse_malformed()
            return None

        return app
