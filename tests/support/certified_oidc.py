"""panva's ``oidc-provider`` (OpenID Certified, from npm) running on loopback, and the
person who signs in at it through headless Chromium.

Nobody here wrote this provider: it is the check that the product follows the
specifications rather than the habits of our own test provider. Its login and consent
pages are its own; ``person`` drives them in a real Chromium.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from tests.support import npm_tools
from tests.support.devtools import ChromiumUser, DevTools, Step

GRANTS = ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]
SIGNED_IN = ("You can close this tab", "Sign-in cancelled", "Sign-in not accepted", "Sign-in Success")


def client(client_id: str, method: str, secret: str | None = None, jwks: dict[str, Any] | None = None) -> dict[str, Any]:
    """A native app's registration (RFC 8252: loopback redirect on any port)."""
    meta: dict[str, Any] = {
        "client_id": client_id, "token_endpoint_auth_method": method, "application_type": "native",
        "redirect_uris": ["http://127.0.0.1/callback"], "grant_types": GRANTS, "response_types": ["code"],
    }
    if secret is not None:
        meta["client_secret"] = secret
    if jwks is not None:
        meta["jwks"] = jwks
    return meta


class CertifiedProvider:
    def __init__(self, clients: list[dict[str, Any]], short_lived: dict[str, int] | None = None,
                 auth_methods: list[str] | None = None) -> None:
        """``short_lived``: access token lifetime in seconds for some client ids (default an
        hour); ``auth_methods``: the client authentication the provider takes at all."""
        toolset = npm_tools.require("oidc-provider")
        options: dict[str, Any] = {"clients": clients, "shortLived": short_lived or {}}
        if auth_methods is not None:
            options["clientAuthMethods"] = auth_methods
        self._proc = subprocess.Popen(
            [str(npm_tools.node(toolset)), str(toolset / "server.mjs"), json.dumps(options)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if not line:
            raise RuntimeError(f"oidc-provider did not start: {self._proc.stderr.read() if self._proc.stderr else ''}")
        self.issuer: str = json.loads(line)["issuer"]
        self.errors: list[str] = []
        """What the provider wrote on stderr apart from its start-up warnings."""
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            if "WARNING" not in line:
                self.errors.append(line.rstrip())

    @property
    def discovery(self) -> dict[str, Any]:
        return requests.get(self.issuer + "/.well-known/openid-configuration", timeout=10).json()

    def introspect(self, token: str, client_id: str, secret: str) -> dict[str, Any]:
        """RFC 7662: what the provider says of a token now (``active`` false once revoked)."""
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        answer = requests.post(self.issuer + "/token/introspection", data={"token": token},
                               headers={"Authorization": f"Basic {basic}"}, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)


def login(account: str) -> Step:
    """The provider's login form: any login signs in as that account."""
    return Step("input[name=login]", (
        f"document.querySelector('input[name=login]').value = {json.dumps(account)};"
        "document.querySelector('input[name=password]').value = 'any password';"
        "document.querySelector('button[type=submit]').click();"
    ))


def consent(approve: bool = True) -> Step:
    """The consent page: Continue, or the [ Cancel ] link (access_denied)."""
    action = "document.querySelector('button[type=submit]').click();" if approve else \
        "document.querySelector('a[href*=\"/abort\"]').click();"
    return Step("input[name=prompt][value=consent]", action)


def confirm_device(approve: bool = True) -> Step:
    """The device confirmation page (the code came in the link): Continue or [ Abort ]."""
    button = "button[autofocus]" if approve else "button[name=abort]"
    return Step("button[name=abort]", f"document.querySelector({json.dumps(button)}).click();")


def type_code(user_code: str) -> Step:
    """The device flow's first page when only its address was given: type the code."""
    return Step("input[name=user_code]", (
        f"document.querySelector('input[name=user_code]').value = {json.dumps(user_code)};"
        "document.querySelector('form').submit();"
    ))


def person(devtools: DevTools, account: str = "alice", approve: bool = True,
           user_code: str | None = None) -> ChromiumUser:
    """Someone at the browser who logs in as ``account`` and approves (or cancels) consent;
    with ``user_code``, types it where the device flow asks for it."""
    steps = [login(account), consent(approve), confirm_device(approve)]
    if user_code is not None:
        steps.insert(0, type_code(user_code))
    return ChromiumUser(devtools, steps, SIGNED_IN)


@contextmanager
def chromium() -> Iterator[DevTools]:
    from tests.support.browser import require_chromium

    devtools = DevTools(require_chromium())
    try:
        yield devtools
    finally:
        devtools.close()


def rsa_key() -> str:
    """An app's private key for private_key_jwt, PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()

