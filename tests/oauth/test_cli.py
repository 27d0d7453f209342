"""``tbx connection ...`` as a script sees it."""

from __future__ import annotations

import json

from console.services import connections as svc
from console.workspace import Workspace
from tests.oauth.conftest import CLIENT_SECRET, shapes
from tests.support.browser import HeadlessChromium
from tests.support.oauth_provider import LocalOAuthProvider


def test_connection_commands(tbx, tbx_home, memory_keyring, provider: LocalOAuthProvider,  # noqa: ANN001
                             browser: HeadlessChromium) -> None:
    assert tbx("init").exit_code == 0
    hosts = shapes(provider.base)["github"].hosts
    missing = tbx("connection", "app", "github", "--client-id", "github-app", env={"TBX_OAUTH_CLIENT_SECRET": ""})
    assert missing.exit_code == 0  # an empty secret is a public client...
    refused = tbx("connection", "add", "github")
    assert refused.exit_code == 2 and "needs the app's client secret" in refused.stderr  # ...which GitHub refuses
    saved = tbx("connection", "app", "github", "--client-id", "github-app",
                *[f"--host={k}={v}" for k, v in hosts.items()], env={"TBX_OAUTH_CLIENT_SECRET": CLIENT_SECRET})
    assert saved.exit_code == 0 and CLIENT_SECRET not in saved.stdout + saved.stderr

    ws = Workspace.open(tbx_home)
    connection, _ = svc.add_connection(ws, "github", None, svc.SignIn(opener=browser, timeout=30))
    listed = tbx("connection", "list", "--json")
    [row] = json.loads(listed.stdout)
    assert row["account"] == "alice" and row["health"] == "ok" and row["servers"] == []
    assert "alice" in tbx("connection", "list").stdout

    refreshed = tbx("connection", "refresh", "github/alice")
    assert refreshed.exit_code == 0 and "refreshed github/alice" in refreshed.stdout
    assert tbx("connection", "refresh", "nobody").exit_code == 1

    removed = tbx("connection", "remove", connection.id, "--yes")
    assert removed.exit_code == 0 and "revoked and removed github/alice" in removed.stdout
    assert json.loads(tbx("connection", "list", "--json").stdout) == []
    bad = tbx("connection", "add", "myspace")
    assert bad.exit_code == 2 and "unknown provider" in bad.stderr
