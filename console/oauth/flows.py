"""The two ways a user signs in: in a browser (RFC 8252) or on another device (RFC 8628).

Browser: authorization code with PKCE S256, a one-shot listener on 127.0.0.1 at a port
the kernel picks, ``state`` checked, the system browser opened without a shell and only
for http(s) URLs. Device: the user types a short code on the provider's page while we
poll at the pace the provider asks for.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from console.errors import UsageError
from console.oauth.client import (
    ConsentDenied,
    DeviceGrant,
    DevicePending,
    FlowTimeout,
    IssuerMismatch,
    OAuthClient,
    OAuthFlowError,
    StateMismatch,
)
from console.oauth.tokens import TokenSet

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

Opener = Callable[[str], bool]

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Toolbox Console</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;color:#222}}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>"""


def open_system_browser(url: str) -> bool:
    """Open ``url`` in the user's browser. ``webbrowser`` starts browsers with an
    argument list, never through a shell; only http(s) URLs get that far."""
    import webbrowser

    if urlsplit(url).scheme not in ("http", "https"):
        raise UsageError(f"refusing to open {url!r} in a browser: only http and https addresses are opened")
    try:
        return bool(webbrowser.open(url, new=1, autoraise=True))
    except webbrowser.Error:
        return False


@dataclass
class _Callback:
    code: str | None = None
    error: str | None = None
    wrong_state: bool = False
    iss: str | None = None
    """RFC 9207: the issuer the redirect names, if it names one."""


class LoopbackListener:
    """Listens on 127.0.0.1 (random port) for exactly one redirect back from the provider."""

    def __init__(self, state: str, path: str = "/callback") -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.state, self.path = state, path
        self.result: _Callback | None = None
        self._done = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                listener._handle(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # the query carries the code; keep it out of stderr

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oauth-loopback", daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __enter__(self) -> LoopbackListener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discard(self) -> None:
        """Let the port go without ever having listened (a sign-in that ended before its browser step)."""
        self._server.server_close()

    def wait(self, timeout: float) -> _Callback | None:
        """The callback once it came, else None after ``timeout`` seconds."""
        return self.result if self._done.wait(timeout) else None

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        if parts.path != self.path or self._done.is_set():
            self._reply(request, 404, "Nothing here", "This address only takes one sign-in.")
            return
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if not secrets.compare_digest(query.get("state", ""), self.state):
            self.result = _Callback(wrong_state=True)
            self._reply(request, 400, "Sign-in not accepted",
                        "This page did not come from the sign-in Toolbox Console started. Start it again.")
        elif "error" in query:
            self.result = _Callback(error=query["error"], iss=query.get("iss"))
            self._reply(request, 200, "Sign-in cancelled",
                        "Nothing was saved. You can close this tab and return to Toolbox Console.")
        elif query.get("code"):
            self.result = _Callback(code=query["code"], iss=query.get("iss"))
            self._reply(request, 200, "Signed in",
                        "Toolbox Console has your sign-in. You can close this tab.")
        else:
            self._reply(request, 400, "Sign-in not accepted", "The provider sent no code. Start the sign-in again.")
            return
        self._done.set()

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.send_header("Referrer-Policy", "no-referrer")
        request.end_headers()
        request.wfile.write(body)


def browser_flow(
    client: OAuthClient,
    scopes: list[str],
    *,
    opener: Opener = open_system_browser,
    on_url: Callable[[str], None] | None = None,
    timeout: float = 300.0,
    cancelled: Callable[[], bool] = lambda: False,
    listener: LoopbackListener | None = None,
) -> TokenSet:
    """Sign in through the browser; returns the token set or raises with what to do.
    ``cancelled`` is asked a few times a second: the user may give up waiting. ``listener``:
    one made (not yet started) by a caller that had to know the redirect URI beforehand,
    to register it."""
    from authlib.common.security import generate_token

    state = generate_token(32)
    verifier = generate_token(64) if client.spec.pkce else None
    nonce = generate_token(32) if client.spec.checks_id_tokens else None
    listener = listener or LoopbackListener(state)
    listener.state = state
    with listener:
        url = client.authorization_url(listener.redirect_uri, scopes, state, verifier, nonce)
        if on_url is not None:
            on_url(url)
        opener(url)
        deadline = time.monotonic() + timeout
        result = None
        while result is None and time.monotonic() < deadline:
            if cancelled():
                raise OAuthFlowError(f"{client.spec.title} sign-in cancelled; nothing was saved")
            result = listener.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        redirect_uri = listener.redirect_uri
    if result is None:
        raise FlowTimeout(f"no answer from the {client.spec.title} sign-in within {timeout:.0f} s; start it again")
    if result.wrong_state:
        raise StateMismatch(
            f"the browser came back from a different {client.spec.title} sign-in (state did not match); "
            "nothing was saved, start it again"
        )
    check_issuer(client, result.iss)
    if result.error is not None:
        if result.error == "access_denied":
            raise ConsentDenied(f"{client.spec.title} sign-in was declined; nothing was saved")
        raise OAuthFlowError(f"{client.spec.title} sign-in failed: {result.error}; nothing was saved")
    assert result.code is not None
    return client.exchange_code(result.code, redirect_uri, verifier, nonce)


def check_issuer(client: OAuthClient, iss: str | None) -> None:
    """RFC 9207 §2.4, before the code goes anywhere: a redirect naming another issuer is a
    mix-up (another authorization server's code sent to this one's token endpoint), compared
    as exact strings; a missing ``iss`` is refused only where the provider says it sends one."""
    expected = client.spec.redirect_issuer
    if expected is None:
        return
    if iss is None and not client.spec.redirect_iss_required:
        return
    if iss != expected:
        said = "named no issuer" if iss is None else "named another issuer"
        raise IssuerMismatch(
            f"the sign-in redirect {said} than {expected} (RFC 9207), so its code was not used; nothing was "
            "saved. Another authorization server may be answering for this one: start the sign-in again")


def device_flow(
    client: OAuthClient,
    scopes: list[str],
    *,
    show: Callable[[DeviceGrant], None],
    sleep: Callable[[float], None] = time.sleep,
    cancelled: Callable[[], bool] = lambda: False,
) -> TokenSet:
    """Sign in on another device: show the code, then poll at the provider's pace,
    five seconds slower each time it says ``slow_down`` (RFC 8628 §3.5)."""
    grant = client.start_device(scopes)
    show(grant)
    interval = grant.interval
    deadline = time.monotonic() + grant.expires_in
    while True:
        sleep(interval)
        if cancelled():
            raise OAuthFlowError(f"{client.spec.title} device sign-in cancelled; nothing was saved")
        if time.monotonic() > deadline:
            raise FlowTimeout(f"the device code for {client.spec.title} expired before sign-in finished; start again")
        try:
            return client.poll_device(grant)
        except DevicePending as pending:
            if pending.slow_down:
                interval += 5
