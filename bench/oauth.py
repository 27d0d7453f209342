"""Token refresh under contention: N callers need a token that expires now.

Prints, per round of N threads released together the moment the token expires: how many
refresh requests reached the provider (must be exactly 1) and the time from expiry until
every caller holds the new token; beside it, one caller alone, measured in the same run.
Runs against the local authlib provider the tests use, on loopback.

    python bench/oauth.py [--callers 50] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keyring  # noqa: E402

from console.oauth.tokens import TokenSet  # noqa: E402
from console.paths import resolve_paths  # noqa: E402
from console.services import connections as svc  # noqa: E402
from console.services.connection_tokens import TokenBroker  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.support.browser import HeadlessChromium  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402
from tests.support.oauth_provider import LocalOAuthProvider  # noqa: E402


def expire_now(ws: Workspace, connection_id: str) -> None:
    with ws.change() as change:
        connection = change.repos.connections.get(connection_id)
        secret = change.repos.secrets.get(connection.token_secret)
        tokens = TokenSet.from_secret(secret)
        secret.value = tokens.model_copy(update={"expires_at": time.time()}).to_secret_value()
        change.repos.secrets.put(secret)


def round_(ws: Workspace, provider: LocalOAuthProvider, connection_id: str, callers: int) -> tuple[int, float]:
    expire_now(ws, connection_id)
    before = provider.requests["refresh"]
    barrier = threading.Barrier(callers + 1)
    done: list[float] = []
    tokens: set[str] = set()

    def caller() -> None:
        barrier.wait()
        tokens.add(TokenBroker(ws).access_token(connection_id))
        done.append(time.perf_counter())

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    assert len(tokens) == 1, tokens
    return provider.requests["refresh"] - before, (max(done) - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    keyring.set_keyring(MemoryKeyring())
    with tempfile.TemporaryDirectory() as home, LocalOAuthProvider() as provider:
        os.environ["TBX_HOME"] = home
        paths = resolve_paths()
        ws = Workspace.create(paths, KeySource(None))
        provider.register_client("bench", "bench-secret", ["repo"])
        svc.set_app(ws, "github", "bench", "bench-secret",
                    hosts={"web": f"{provider.base}/github", "api": f"{provider.base}/github/api"})
        with HeadlessChromium() as browser:
            connection, _ = svc.add_connection(ws, "github", None, svc.SignIn(opener=browser, timeout=30))
        many, alone, refreshes = [], [], []
        for _ in range(args.rounds):  # interleaved, so both see the same machine
            count, ms = round_(ws, provider, connection.id, args.callers)
            refreshes.append(count)
            many.append(ms)
            alone.append(round_(ws, provider, connection.id, 1)[1])
        print(f"callers per round:           {args.callers} (threads), rounds: {args.rounds}")
        print(f"refresh requests per round:  min {min(refreshes)} max {max(refreshes)} (must be 1)")
        print(f"expiry -> all served (ms):   p50 {statistics.median(many):.1f}  max {max(many):.1f}")
        print(f"expiry -> one caller (ms):   p50 {statistics.median(alone):.1f}  max {max(alone):.1f}")
        print(f"ratio {args.callers} callers / 1:       {statistics.median(many) / statistics.median(alone):.2f}x")


if __name__ == "__main__":
    main()
