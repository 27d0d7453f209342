"""``a`` on Connections: register (or replace) the user's OAuth app at a provider.

The modal validates everything it can without the network — the client id, a secret
where the provider insists on one, the tenant, an https issuer, host overrides — and
dismisses with an ``AppRequest``; the screen saves it in a worker (an OpenID Connect
issuer's discovery document is fetched then). The secret is typed masked; replacing an
app keeps its secret when the field is left empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from console.errors import UsageError
from console.model import OAuthApp
from console.oauth.providers import BUILTIN, require_secure

NEW_OIDC = "oidc:"
"""The Select value for an OpenID Connect provider not registered yet (a name is typed)."""

WHERE = {
    "github": "GitHub → Settings → Developer settings → OAuth Apps. Callback URL http://127.0.0.1; tick "
              "'Enable Device Flow' to sign in with a code.",
    "google": "Google Cloud console → APIs & Services → Credentials → OAuth client ID, type 'Desktop app'.",
    "microsoft": "Entra admin center → App registrations. Platform 'Mobile and desktop', redirect "
                 "http://localhost; 'Allow public client flows' for code sign-in.",
    "slack": "api.slack.com/apps → OAuth & Permissions. Redirect URL http://127.0.0.1; user token scopes.",
    NEW_OIDC: "Any OpenID Connect provider (Keycloak, Authentik, Okta...): a public or confidential client "
              "with redirect http://127.0.0.1.",
}


@dataclass
class AppRequest:
    """A validated registration: what ``console.services.connections.set_app`` takes."""

    provider: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    keep_secret: bool = False
    """No secret typed while replacing an app that has one: keep that one."""
    hosts: dict[str, str] = field(default_factory=dict)
    tenant: str | None = None
    issuer: str | None = None
    auth_method: str | None = None
    """None: the first client authentication the provider lists that the app can do."""
    private_key_file: str | None = None
    """PEM file for private_key_jwt; None with that method keeps the key saved now."""


AUTO = "auto"
AUTH_CHOICES = [
    ("automatic (the first the provider lists)", AUTO),
    ("client_secret_basic (secret in the Authorization header)", "client_secret_basic"),
    ("client_secret_post (secret in the request body)", "client_secret_post"),
    ("private_key_jwt (a key file, no secret)", "private_key_jwt"),
    ("none (public app, PKCE only)", "none"),
]


class AppProblem(Exception):
    def __init__(self, message: str, field_id: str) -> None:
        super().__init__(message)
        self.field_id = field_id


def parse_hosts(raw: str) -> dict[str, str]:
    """``web=https://ghe.example, api=https://ghe.example/api/v3`` -> a dict."""
    hosts = {}
    for pair in re.split(r"[,\s]+", raw.strip()):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise UsageError(f"bad host {pair!r}: write NAME=URL, e.g. web=https://github.example.com")
        hosts[key] = value
    return hosts


class OAuthAppModal(ModalScreen[AppRequest | None]):
    CSS = """
    OAuthAppModal .app-dialog { width: 88; }
    OAuthAppModal .app-fields { height: auto; max-height: 24; }
    OAuthAppModal Label { margin-top: 1; width: 1fr; }
    OAuthAppModal Select { width: 1fr; }
    OAuthAppModal Select.-textual-compact > SelectCurrent { background: $panel-lighten-1; padding: 0 1; }
    OAuthAppModal Select.-textual-compact:focus > SelectCurrent { background: $primary 20%; }
    OAuthAppModal .first { margin-top: 0; }
    OAuthAppModal Input { height: 1; border: none; padding: 0 1; background: $panel-lighten-1; }
    OAuthAppModal Input:focus { background: $primary 20%; }
    OAuthAppModal #where { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="oauth_app.cancel", tooltip="Close without saving"),
        Binding("ctrl+s", "save", "Save", id="oauth_app.save", tooltip="Validate and save the app registration"),
    ]

    def __init__(self, apps: Mapping[str, OAuthApp], provider: str | None = None) -> None:
        """``apps``: the registrations there are, by provider (prefilled when chosen)."""
        super().__init__()
        self.apps = dict(apps)
        self.choices = [*BUILTIN, *sorted(p for p in self.apps if p not in BUILTIN), NEW_OIDC]
        self.provider = provider if provider in self.choices else "github"

    def compose(self) -> ComposeResult:
        options = [(BUILTIN[p].title if p in BUILTIN else p, p) for p in self.choices[:-1]]
        options.append(("another OpenID Connect provider…", NEW_OIDC))
        with Vertical(classes="dialog app-dialog"):
            yield Label("OAuth app registration", classes="dialog-title")
            with VerticalScroll(classes="app-fields"):
                yield Label("provider", classes="first")
                yield Select(options, value=self.provider, allow_blank=False, id="provider", compact=True)
                yield Static("", id="where")
                yield Label("name (the provider is then oidc:NAME)", id="oidc-name-label")
                yield Input(placeholder="corp", id="oidc-name")
                yield Label("issuer URL (its discovery document names the endpoints)", id="issuer-label")
                yield Input(placeholder="https://login.example.com/realms/main", id="issuer")
                yield Label("client id")
                yield Input(id="client-id")
                yield Label("client authentication (as registered at the provider)", id="auth-method-label")
                yield Select(AUTH_CHOICES, value=AUTO, allow_blank=False, id="auth-method", compact=True)
                yield Label("client secret (typed masked, kept in the encrypted vault)", id="client-secret-label")
                yield Input(password=True, id="client-secret")
                yield Label("private key file (PEM; kept in the vault, the file is not needed after)",
                            id="private-key-label")
                yield Input(placeholder="~/keys/tbx-app.pem", id="private-key")
                yield Label("tenant (directory id, 'organizations', or empty for any account)", id="tenant-label")
                yield Input(placeholder="common", id="tenant")
                yield Label("hosts (optional, for another deployment: NAME=URL, …)", id="hosts-label")
                yield Input(id="hosts")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self._fill()
        self.query_one("#client-id", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "provider" and isinstance(event.value, str) and event.value != self.provider:
            self.provider = event.value
            self._fill()
        elif event.select.id == "auth-method":
            self._show_credentials()

    def _show_credentials(self) -> None:
        """The secret field, or the key file field: what the chosen method uses."""
        oidc = self.provider.startswith("oidc:")
        method = self.query_one("#auth-method", Select).value if oidc else AUTO
        for field_id, shown in (("auth-method", oidc), ("client-secret", method not in ("private_key_jwt", "none")),
                                ("private-key", method == "private_key_jwt")):
            self.query_one(f"#{field_id}").display = shown
            self.query_one(f"#{field_id}-label", Label).display = shown

    def _fill(self) -> None:
        """Show the fields this provider has, prefilled from its registration if any."""
        provider = self.provider
        oidc = provider.startswith("oidc:")
        spec = BUILTIN.get(provider)
        existing = self.apps.get(provider)
        self.query_one("#where", Static).update(Text(WHERE.get(provider if not oidc else NEW_OIDC, "")))
        for field_id, shown in (("oidc-name", provider == NEW_OIDC), ("issuer", oidc),
                                ("tenant", provider == "microsoft"), ("hosts", spec is not None)):
            self.query_one(f"#{field_id}", Input).display = shown
            self.query_one(f"#{field_id}-label", Label).display = shown
        self.query_one("#client-id", Input).value = existing.client_id if existing else ""
        self.query_one("#auth-method", Select).value = (existing.auth_method or AUTO) if existing else AUTO
        key = self.query_one("#private-key", Input)
        key.value = ""
        key.placeholder = "leave empty to keep the key saved now" if existing is not None and existing.private_key \
            else "~/keys/tbx-app.pem"
        self._show_credentials()
        self.query_one("#issuer", Input).value = (existing.issuer or "") if existing else ""
        self.query_one("#tenant", Input).value = (existing.tenant or "") if existing else ""
        self.query_one("#hosts", Input).value = ", ".join(
            f"{k}={v}" for k, v in sorted(existing.hosts.items())) if existing else ""
        if spec is not None:
            self.query_one("#hosts", Input).placeholder = ", ".join(f"{k}={v}" for k, v in spec.hosts.items())
        secret = self.query_one("#client-secret", Input)
        secret.value = ""
        if existing is not None and existing.client_secret:
            secret.placeholder = "leave empty to keep the secret saved now"
        elif spec is not None and spec.confidential:
            secret.placeholder = f"required: {spec.title} asks for it even with PKCE"
        else:
            secret.placeholder = "leave empty for a public app (PKCE only)"
        self.query_one("#problem", Static).update("")

    def _value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

    def collect(self) -> AppRequest:
        provider = self.provider
        if provider == NEW_OIDC:
            name = self._value("oidc-name")
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
                raise AppProblem("give the provider a short name: a-z, 0-9 and '-', e.g. corp", "oidc-name")
            provider = f"oidc:{name}"
            if provider in self.apps:
                raise AppProblem(f"{provider} is registered already: pick it in the list to replace it", "oidc-name")
        spec = BUILTIN.get(provider)
        client_id = self._value("client-id")
        if not client_id:
            raise AppProblem("the client id is empty: copy it from the provider's app registration page", "client-id")
        secret = self.query_one("#client-secret", Input).value or None
        existing = self.apps.get(provider)
        keep = secret is None and existing is not None and existing.client_secret is not None
        if spec is not None and spec.confidential and secret is None and not keep:
            raise AppProblem(f"{spec.title} needs the app's client secret too", "client-secret")
        issuer = self._value("issuer") if provider.startswith("oidc:") else None
        if provider.startswith("oidc:"):
            if not issuer:
                raise AppProblem("an OpenID Connect provider needs its issuer URL", "issuer")
            try:
                require_secure(issuer)
            except UsageError as exc:
                raise AppProblem(str(exc), "issuer") from None
        hosts: dict[str, str] = {}
        if spec is not None:
            try:
                hosts = parse_hosts(self._value("hosts"))
                spec.with_hosts(hosts)
            except UsageError as exc:
                raise AppProblem(str(exc), "hosts") from None
        tenant = (self._value("tenant") or None) if provider == "microsoft" else None
        method = self.query_one("#auth-method", Select).value if provider.startswith("oidc:") else AUTO
        auth_method = None if method == AUTO else str(method)
        key_file = None
        if auth_method == "private_key_jwt":
            key_file = self._value("private-key") or None
            if key_file is None and not (existing is not None and existing.private_key):
                raise AppProblem("private_key_jwt needs the app's private key file (PEM)", "private-key")
            secret, keep = None, False
        elif auth_method == "none":
            secret, keep = None, False
        return AppRequest(provider, client_id, secret, keep, hosts, tenant, issuer, auth_method, key_file)

    def action_save(self) -> None:
        try:
            request = self.collect()
        except AppProblem as problem:
            self.query_one("#problem", Static).update(Text(str(problem)))
            self.query_one(f"#{problem.field_id}").focus()
            return
        self.dismiss(request)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
