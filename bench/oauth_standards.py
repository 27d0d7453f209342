"""Connections with a standards-following provider: what a sign-in and a token cost.

Against panva's OpenID-certified oidc-provider (npm) on loopback, a person in headless
Chromium signing in on its own pages, side by side with the local authlib provider the
tests use (which consents without pages):

- browser sign-in and device sign-in, wall time per connection (p50, max);
- the ID token check alone: with the issuer's keys cached, and with them fetched;
- refresh requests while a 20 s access token is used 5 times a second for 20 s: the
  refresh margin clamped to a quarter of the lifetime, beside the fixed 120 s margin of
  before (a token set without ``issued_at`` gets the fixed margin, as before).

    python bench/oauth_standards.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keyring  # noqa: E402

from console.oauth.tokens import TokenSet  # noqa: E402
from console.paths import resolve_paths  # noqa: E402
from console.services import connections as svc  # noqa: E402
from console.services.connection_tokens import TokenBroker, client_for  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.support.certified_oidc import CertifiedProvider, chromium, client, person  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402
from tests.support.oauth_provider import LocalOAuthProvider  # noqa: E402

SECRET = "bench-client-secret"
TTL = 20


def workspace() -> Workspace:
    keyring.set_keyring(MemoryKeyring())
    home = tempfile.mkdtemp(prefix="tbx-bench-oauth-")
    return Workspace.create(resolve_paths({"TBX_HOME": home}), KeySource(passphrase=None))


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def line(label: str, ms: list[float]) -> None:
    print(f"  {label:<44} p50 {statistics.median(ms):8.1f} ms   max {max(ms):8.1f} ms   (n={len(ms)})")


def sign_ins(rounds: int) -> None:
    op = CertifiedProvider([client("app", "client_secret_basic", SECRET), client("short", "client_secret_basic", SECRET)],
                           short_lived={"short": TTL})
    local = LocalOAuthProvider().start()
    local.register_client("app", SECRET, ["read"], auth_method="client_secret_basic")
    local.device_interval = 0.2
    try:
        with chromium() as devtools:
            ws = workspace()
            svc.set_app(ws, "oidc:op", "app", SECRET, issuer=op.issuer)
            svc.set_app(ws, "oidc:local", "app", SECRET, issuer=f"{local.base}/oidc")

            def browser_op() -> None:
                user = person(devtools)
                svc.add_connection(ws, "oidc:op", None, svc.SignIn(opener=user, timeout=40))
                user.wait()

            def browser_local() -> None:
                user = person(devtools)  # the local provider consents at once: no page to act on
                svc.add_connection(ws, "oidc:local", None, svc.SignIn(opener=user, timeout=40))
                user.wait()

            def device_op() -> None:
                user = person(devtools)
                svc.add_connection(ws, "oidc:op", None, svc.SignIn(
                    device=True, show_code=lambda grant: user(grant.verification_uri_complete or "")))
                user.wait()

            def device_local() -> None:
                svc.add_connection(ws, "oidc:local", None, svc.SignIn(
                    device=True, show_code=lambda grant: local.approve_device(grant.user_code)))

            print("sign-in, wall time per connection, one Chromium for all (the certified provider shows a login and a "
                  "consent page; the device flow waits for its 5 s polling interval):")
            line("browser, certified oidc-provider + Chromium", timed(browser_op, rounds))
            line("browser, local provider (no pages)", timed(browser_local, rounds))
            line("device, certified oidc-provider + Chromium", timed(device_op, rounds))
            line("device, local provider", timed(device_local, rounds))

            id_token_cost(ws, op, devtools)
            refresh_counts(ws, op, devtools)
    finally:
        op.close()
        local.stop()


def id_token_cost(ws: Workspace, op: CertifiedProvider, devtools: object) -> None:
    from console.oauth import id_token

    app = ws.repos.oauth_apps.for_provider("oidc:op")
    oauth = client_for(ws, app)
    user = person(devtools)  # type: ignore[arg-type]
    captured: dict[str, str] = {}
    original = oauth._issued

    def keep(token: dict, **kwargs: object) -> TokenSet:
        captured["id_token"] = token["id_token"]
        return original(token, **kwargs)  # type: ignore[arg-type]

    oauth._issued = keep  # type: ignore[method-assign]
    from console.oauth.flows import device_flow

    device_flow(oauth, oauth.spec.scopes_for(None), show=lambda grant: user(grant.verification_uri_complete or ""))
    user.wait()
    raw = captured["id_token"]
    cached = timed(lambda: id_token.check(oauth.spec, raw, "app", nonce=None), 200)
    fetched = timed(lambda: (id_token._KEY_SETS._documents.clear(), id_token.check(oauth.spec, raw, "app", nonce=None)), 50)
    print("ID token check (signature, issuer, audience, expiry):")
    line("issuer's keys cached", cached)
    line("issuer's keys fetched first", fetched)


def forget_issued_at(ws: Workspace, secret_id: str) -> None:
    """Make the token set look as kept before ``issued_at`` was recorded: the fixed margin."""
    tokens = TokenSet.from_secret(ws.repos.secrets.get(secret_id))
    if tokens.issued_at is None:
        return
    with ws.change() as change:
        secret = change.repos.secrets.get(secret_id)
        secret.value = tokens.model_copy(update={"issued_at": None}).to_secret_value()
        change.repos.secrets.put(secret)


def refresh_counts(ws: Workspace, op: CertifiedProvider, devtools: object) -> None:
    svc.set_app(ws, "oidc:op", "short", SECRET, issuer=op.issuer)
    connections = []
    for account in ("alice", "bob"):
        user = person(devtools, account)  # type: ignore[arg-type]
        connection, _ = svc.add_connection(ws, "oidc:op", None, svc.SignIn(opener=user, timeout=40))
        user.wait()
        connections.append(connection)
    clamped, fixed = connections
    brokers = {clamped.id: TokenBroker(ws), fixed.id: TokenBroker(ws)}
    deadline = time.monotonic() + TTL
    uses = 0
    while time.monotonic() < deadline:
        for connection_id, broker in brokers.items():
            if connection_id == fixed.id:
                forget_issued_at(ws, fixed.token_secret)
            broker.access_token(connection_id)
        uses += 1
        time.sleep(0.2)
    print(f"refresh requests while a {TTL} s access token is used {uses} times over {TTL} s:")
    print(f"  margin clamped to 1/4 of the lifetime (now)   {brokers[clamped.id].refreshes:4d}")
    print(f"  fixed 120 s margin (before)                   {brokers[fixed.id].refreshes:4d}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    sign_ins(parser.parse_args().rounds)


if __name__ == "__main__":
    main()
