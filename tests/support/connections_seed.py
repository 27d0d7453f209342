"""Connections for the Connections screen's tests, on top of ``tests.support.tui.seed``:
every health there is, fixed times, and app registrations whose hosts point at a closed
loopback port (nothing here may reach a real provider)."""

from __future__ import annotations

from datetime import timedelta

from console.model import Connection, ConnectionStatus, DesiredState, OAuthApp, Secret, ServerInstance
from console.oauth.tokens import TokenSet
from console.workspace import Workspace
from tests.support.tui import WHEN

NOWHERE = "http://127.0.0.1:9"
"""The discard port: closed here, so a provider call fails at once and stays local."""


def _tokens(change, connection: Connection, refresh: bool = True) -> None:  # noqa: ANN001
    expires = connection.expires.timestamp() if connection.expires else None
    value = TokenSet(access_token=f"at-{connection.account}", refresh_token=f"rt-{connection.account}" if refresh
                     else None, expires_at=expires, scopes=connection.scopes).to_secret_value()
    secret = change.repos.secrets.put(Secret(name=f"oauth/{connection.id}", value=value, created=WHEN))
    connection.token_secret = secret.id


def seed_connections(ws: Workspace) -> dict[str, str]:
    """Five connections (ok, expired, needs-consent, refresh-failed, never expiring), three
    app registrations, and two servers bound to GitHub/alice. Returns label -> id."""
    ids: dict[str, str] = {}
    with ws.change() as change:
        r = change.repos
        secret = r.secrets.put(Secret(name="oauth-app/github/client-secret", value="gh-secret", created=WHEN))
        github = r.oauth_apps.put(OAuthApp(provider="github", client_id="Iv1.8a61f9b3a7aba766", client_secret=secret.id,
                                           hosts={"web": NOWHERE, "api": NOWHERE}, created=WHEN))
        google = r.oauth_apps.put(OAuthApp(provider="google", client_id="4711-desktop.apps.googleusercontent.com",
                                           hosts={"accounts": NOWHERE, "oauth2": NOWHERE, "oidc": NOWHERE},
                                           created=WHEN))
        slack_secret = r.secrets.put(Secret(name="oauth-app/slack/client-secret", value="sl-secret", created=WHEN))
        slack = r.oauth_apps.put(OAuthApp(provider="slack", client_id="2141.5531", client_secret=slack_secret.id,
                                          hosts={"web": NOWHERE}, created=WHEN))
        made = [
            Connection(id="cn_00000000a11c", provider="github", account="alice", scopes=["repo", "read:user"],
                       app=github.id,
                       expires=WHEN + timedelta(minutes=42), refreshed=WHEN - timedelta(minutes=18),
                       created=WHEN - timedelta(days=3)),
            Connection(id="cn_00000000a11d", provider="github", account="alice-work", scopes=["repo"], app=github.id,
                       expires=None, refreshed=WHEN - timedelta(days=1), created=WHEN - timedelta(days=1)),
            Connection(id="cn_00000000b0b0", provider="google", account="bob@example.com", app=google.id,
                       scopes=["https://www.googleapis.com/auth/drive.readonly", "openid", "email"],
                       expires=WHEN - timedelta(minutes=5), refreshed=WHEN - timedelta(hours=1, minutes=5),
                       created=WHEN - timedelta(days=10)),
            Connection(id="cn_00000000ca01", provider="slack", account="carol@acme",
                       scopes=["channels:read", "chat:write"], app=slack.id,
                       expires=WHEN + timedelta(hours=3, minutes=5), status=ConnectionStatus.NEEDS_CONSENT,
                       last_error="Slack: the provider refused the refresh token (expired or revoked): reconnect "
                                  "to sign in again",
                       refreshed=WHEN - timedelta(hours=9), created=WHEN - timedelta(days=40)),
            Connection(id="cn_00000000da7e", provider="microsoft", account="dave@contoso.example", scopes=["User.Read"],
                       expires=WHEN + timedelta(days=2, hours=4), status=ConnectionStatus.REFRESH_FAILED,
                       last_error="Microsoft Entra could not be reached while refreshing the token (ConnectionError); "
                                  "try again later",
                       refreshed=WHEN - timedelta(days=1), created=WHEN - timedelta(days=5)),
        ]
        for connection in made:
            _tokens(change, connection, refresh=connection.provider != "microsoft")
            r.connections.put(connection)
            ids[f"{connection.provider}/{connection.account}"] = connection.id
        local = r.toolboxes.by_name("local")
        lab = r.toolboxes.by_name("lab")
        assert local is not None and lab is not None
        spec = {"oauth": {"provider": "github", "scopes": ["repo"], "token_env": "GITHUB_PERSONAL_ACCESS_TOKEN"}}
        r.servers.put(ServerInstance(toolbox=local.id, name="github", catalog_id="github", spec=spec,
                                     image="tbx/github:0123456789abcdef", connection=ids["github/alice"],
                                     desired_state=DesiredState.STOPPED, created=WHEN))
        r.servers.put(ServerInstance(toolbox=lab.id, name="gh-issues", catalog_id="github", spec=spec,
                                     image="tbx/github:0123456789abcdef", connection=ids["github/alice"],
                                     desired_state=DesiredState.STOPPED, created=WHEN))
    return ids
