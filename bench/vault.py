"""Vault benchmark: open, commit one grant change, and check the compiled policy.

A vault with 200 agents, 20 toolboxes (100 servers), 2,000 tools and N tool grants, for
N = 2,000 and N = 20,000, measured side by side in one run. The key sits in an
in-process keyring so "open" is decrypt + parse; the Argon2id cost a passphrase vault
adds on top is measured separately.

The rollback anchor (issue 11): commits are timed with and without it, interleaved in one
run, and the keyring write it hands to its background thread is timed on its own (the
wait for it after the commit). With BENCH_KEYRING=secret-service the keyring is the real
Secret Service (run under a D-Bus session with an unlocked gnome-keyring).

Aims (issue 2): open < 300 ms, commit < 100 ms, a policy check < 5 µs.
Run: .venv/bin/python bench/vault.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keyring  # noqa: E402

from console.model import (  # noqa: E402
    Agent,
    DesiredState,
    ServerInstance,
    Toolbox,
    ToolboxGrant,
    ToolDef,
    ToolGrant,
    Trust,
    tool_pin,
)
from console.paths import Paths  # noqa: E402
from console.policy import CompiledPolicy  # noqa: E402
from console.services.grants import Target, grant, revoke  # noqa: E402
from console.vault import KeySource, Vault  # noqa: E402
from console.vault.anchor import Mark, flush_keyring_writes  # noqa: E402
from console.vault.keys import derive_from_passphrase, passphrase_params  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402

AGENTS, TOOLBOXES, SERVERS_PER_TOOLBOX, TOOLS_PER_SERVER = 200, 20, 5, 20


def build(root: Path, grants: int, rng: random.Random) -> Workspace:
    paths = Paths(root, root / "config", root / "state", root / "cache")
    ws = Workspace.create(paths, KeySource(passphrase=None))
    toolboxes = [Toolbox(name=f"box-{i}") for i in range(TOOLBOXES)]
    servers = [
        ServerInstance(toolbox=tb.id, name=f"srv-{j}", desired_state=DesiredState.RUNNING)
        for tb in toolboxes
        for j in range(SERVERS_PER_TOOLBOX)
    ]
    tools = []
    for server in servers:
        for k in range(TOOLS_PER_SERVER):
            schema = {"type": "object", "properties": {"q": {"type": "string"}}}
            pin = tool_pin(f"tool-{k}", "does a thing " * 8, schema, None, None)
            trust = Trust.APPROVED if rng.random() < 0.9 else Trust.PENDING
            tools.append(ToolDef(server=server.id, name=f"tool-{k}", description="does a thing " * 8,
                                 input_schema=schema, pin=pin, approved_pin=pin, trust=trust))
    agents = [Agent(name=f"agent-{i}", token_hash=os.urandom(32).hex()) for i in range(AGENTS)]
    toolbox_grants = [ToolboxGrant(agent=a.id, toolbox=tb.id) for a in agents for tb in rng.sample(toolboxes, 5)]
    keys: set[tuple[str, str, str]] = set()
    while len(keys) < grants:
        a, s = rng.choice(agents), rng.choice(servers)
        keys.add((a.id, s.id, rng.choice([f"tool-{rng.randrange(TOOLS_PER_SERVER)}", "*"])))
    with ws.change() as change:
        r = change.repos
        r.toolboxes.put_many(toolboxes)
        r.servers.put_many(servers)
        r.tools.put_many(tools)
        r.agents.put_many(agents)
        r.toolbox_grants.put_many(toolbox_grants)
        r.tool_grants.put_many(ToolGrant(agent=a, server=s, tool=t) for a, s, t in keys)
    return ws


class NoAnchor:
    """The anchor switched off, for the "before" column."""

    def save(self, vault_id: str, mark: Mark) -> None:
        mark.stored = True

    def load(self, vault_id: str) -> Mark:
        return Mark.fresh()


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms (min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f})"


def measure(ws: Workspace, rng: random.Random, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"open": [], "compile": [], "commit": [], "commit_plain": [],
                                       "keyring_record": [], "check": []}
    for _ in range(rounds):
        started = time.perf_counter()
        vault = Vault.open(ws.paths.vault)
        results["open"].append(time.perf_counter() - started)
        del vault
    agent_names = [a.name for a in ws.repos.agents]
    target = Target("box-0", "srv-0", "tool-1")
    anchor = ws.vault.anchor
    for i in range(rounds):
        name = agent_names[i % len(agent_names)]
        for anchored in (True, False):
            ws.vault.anchor = anchor if anchored else NoAnchor()  # type: ignore[assignment]
            started = time.perf_counter()
            grant(ws, name, target)
            results["commit" if anchored else "commit_plain"].append(time.perf_counter() - started)
            started = time.perf_counter()
            flush_keyring_writes()
            if anchored:
                results["keyring_record"].append(time.perf_counter() - started)
            revoke(ws, name, target)
            flush_keyring_writes()
    ws.vault.anchor = anchor
    tables = ws.tables()
    for _ in range(rounds):
        started = time.perf_counter()
        policy = CompiledPolicy.compile(tables)
        results["compile"].append(time.perf_counter() - started)
    agents = list(policy.agents)
    servers = list(policy.server_toolbox)
    queries = [(rng.choice(agents), rng.choice(servers), f"tool-{rng.randrange(TOOLS_PER_SERVER)}") for _ in range(10_000)]
    now = time.time()
    allowed = sum(policy.check(a, s, t, now).allowed for a, s, t in queries)
    check = policy.check
    for _ in range(rounds):
        started = time.perf_counter()
        for a, s, t in queries:
            check(a, s, t, now)
        results["check"].append((time.perf_counter() - started) / len(queries))
    results["allowed_share"] = [allowed / len(queries)]
    return results


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    if os.environ.get("BENCH_KEYRING") == "secret-service":
        from keyring.backends import SecretService

        keyring.set_keyring(SecretService.Keyring())
    else:
        keyring.set_keyring(MemoryKeyring())
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        small = build(Path(tmp) / "small", 2_000, rng)
        large = build(Path(tmp) / "large", 20_000, rng)
        size_small = small.paths.vault.stat().st_size
        size_large = large.paths.vault.stat().st_size
        # Interleave the two sizes round by round so drift affects both alike.
        res_small: dict[str, list[float]] = {}
        res_large: dict[str, list[float]] = {}
        for _ in range(3):
            for ws, res in ((small, res_small), (large, res_large)):
                for key, values in measure(ws, rng, rounds // 3 or 1).items():
                    res.setdefault(key, []).extend(values)
        kdf = []
        params = passphrase_params()
        for _ in range(5):
            started = time.perf_counter()
            derive_from_passphrase("correct horse battery staple", params)
            kdf.append(time.perf_counter() - started)

    print(f"vault benchmark: {AGENTS} agents, {TOOLBOXES} toolboxes, {TOOLBOXES * SERVERS_PER_TOOLBOX} servers, "
          f"{TOOLBOXES * SERVERS_PER_TOOLBOX * TOOLS_PER_SERVER} tools; {rounds} rounds")
    print(f"{'':<28}{'2,000 grants':<44}{'20,000 grants':<44}growth")
    print(f"{'file size':<28}{size_small / 1024:8.0f} KiB{'':<32}{size_large / 1024:8.0f} KiB{'':<32}"
          f"{size_large / size_small:.2f}x")
    print(f"keyring: {type(keyring.get_keyring()).__module__}.{type(keyring.get_keyring()).__name__}")
    for key, label, aim in (("open", "open (decrypt+parse)", "< 300 ms"),
                            ("commit_plain", "commit, no rollback anchor", ""),
                            ("commit", "commit one grant (+audit)", "< 100 ms"),
                            ("keyring_record", "  keyring record, after it", ""),
                            ("compile", "compile policy", "")):
        s, lg = res_small[key], res_large[key]
        print(f"{label:<28}{median_ms(s):<44}{median_ms(lg):<44}"
              f"{statistics.median(lg) / statistics.median(s):.2f}x  {('aim ' + aim) if aim else ''}")
    cs, cl = statistics.median(res_small["check"]), statistics.median(res_large["check"])
    print(f"{'policy check':<28}{cs * 1e6:7.2f} µs{'':<34}{cl * 1e6:7.2f} µs{'':<34}{cl / cs:.2f}x  aim < 5 µs")
    print(f"{'  (share allowed)':<28}{res_small['allowed_share'][0]:7.1%}{'':<37}{res_large['allowed_share'][0]:7.1%}")
    print(f"{'Argon2id unlock (64 MiB)':<28}{median_ms(kdf)}  (passphrase vaults only, once per process)")


if __name__ == "__main__":
    main()
