"""Policy mirror benchmark: open + write one and twenty remote toolboxes' policy mirrors in
a fresh process, this code against a baseline commit, side by side in one run (issue 12).

Each ``tbx`` command that touches remote toolboxes opens their mirror vaults (keyed by
each toolbox's gateway secret) and writes the new policy into them. Before, each open
derived its key with Argon2id (64 MiB, one at a time per process), and with
``TBX_PASSPHRASE`` set no mirror opened at all. After, a mirror's key comes through
HKDF; a mirror made with Argon2id pays that once more on its first open (it gets its fast
key then) and never again.

Every figure is the time inside a fresh process from the first mirror opened to the last
one written, after the process opened the user's own vault as a command does
(interpreter start-up, imports and that open apart), median of the rounds; rounds
alternate between the sides. "each further" is (20 mirrors - 1 mirror) / 19. The
rollback anchor is the file copy only (no keyring), the same for both sides.

Run: .venv/bin/python bench/mirror.py [--baseline REF] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = "7474e65"
"""The last landing before mirrors had their own key (issue 12)."""
USER_PASSPHRASE = "bench-user-passphrase-not-secret"
MIRRORS = 20

SETUP = """
import json, secrets, sys
from console.paths import resolve_paths
from console.remote.policy import Mirror
from console.vault import KeySource
from console.workspace import Workspace
count, how = int(sys.argv[1]), sys.argv[2]
paths = resolve_paths()
Workspace.create(paths, KeySource(passphrase=sys.argv[3]))  # the user's own vault
made = []
for i in range(count):
    mirror = Mirror(paths.state_dir / "remote" / f"tb_{i:02d}", secrets.token_urlsafe(32))
    if how == "argon2id":  # as every mirror was made before issue 12
        mirror.paths.ensure()
        Workspace.create(mirror.paths, KeySource(passphrase=mirror.passphrase))
    else:
        mirror.open()
    made.append(mirror.passphrase)
(paths.data_dir / "bench-secrets.json").write_text(json.dumps(made))
"""

MEASURE = """
import json, sys, time, uuid
from console.paths import resolve_paths
from console.remote.policy import MIRRORED, Mirror
from console.workspace import Workspace
paths = resolve_paths()
Workspace.open(paths, lambda _reason: sys.argv[2])  # what the command opens first: the user's vault
made = json.loads((paths.data_dir / "bench-secrets.json").read_text())[: int(sys.argv[1])]
tables = {name: {} for name in MIRRORED}
tables["agents"] = {uuid.uuid4().hex: {"name": "bench"}}  # new each time: a write
started = time.perf_counter()
for i, secret in enumerate(made):
    assert Mirror(paths.state_dir / "remote" / f"tb_{i:02d}", secret).write(tables)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


@dataclass
class Side:
    label: str
    code: Path
    runs: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    homes: list[Path] = field(default_factory=list)

    def env(self, home: Path, passphrase: bool) -> dict[str, str]:
        env = {**os.environ, "TBX_HOME": str(home), "PYTHONPATH": str(self.code),
               "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        env.pop("TBX_PASSPHRASE", None)
        if passphrase:
            env["TBX_PASSPHRASE"] = USER_PASSPHRASE
        return env

    def python(self, script: str, home: Path, passphrase: bool, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, *args], cwd=self.code, env=self.env(home, passphrase),
                              capture_output=True, text=True, timeout=600)

    def home(self, how: str) -> Path:
        home = Path(tempfile.mkdtemp(prefix=f"tbx-bench-mirror-{self.label}-"))
        self.homes.append(home)
        done = self.python(SETUP, home, False, str(MIRRORS), how, USER_PASSPHRASE)
        if done.returncode != 0:
            raise SystemExit(f"{self.label}: setup failed: {done.stderr[-2000:]}")
        return home

    def measure(self, key: str, home: Path, count: int, passphrase: bool) -> None:
        done = self.python(MEASURE, home, passphrase, str(count), USER_PASSPHRASE)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            self.failures[key] = lines[-1][:160] if lines else f"exit {done.returncode}"
            return
        self.runs.setdefault(key, []).append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


CASES = [
    # (key, side label, mirrors made how, TBX_PASSPHRASE set)
    ("Argon2id mirrors, TBX_PASSPHRASE unset", "before", "argon2id", False),
    ("Argon2id mirrors, TBX_PASSPHRASE set", "before", "argon2id", True),
    ("new mirrors, TBX_PASSPHRASE unset", "after", "new", False),
    ("new mirrors, TBX_PASSPHRASE set", "after", "new", True),
    ("Argon2id mirrors, first open (migrated)", "after", "argon2id", True),
    ("Argon2id mirrors once migrated", "after", "migrated", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    from baseline import worktree

    sides = {"before": Side("before", worktree(options.baseline)), "after": Side("after", REPO)}
    try:
        run(sides, options.rounds)
    finally:
        for side in sides.values():
            for home in side.homes:
                shutil.rmtree(home, ignore_errors=True)
    report(sides, options.baseline, options.rounds)


def run(sides: dict[str, Side], rounds: int) -> None:
    homes = {(label, how): sides[label].home("argon2id" if how == "migrated" else how)
             for label, how in {("before", "argon2id"), ("after", "new"), ("after", "migrated")}}
    if sides["after"].python(MEASURE, homes[("after", "migrated")], True, str(MIRRORS), USER_PASSPHRASE).returncode:
        raise SystemExit("after: the first open of Argon2id mirrors failed")
    for _round in range(rounds):
        for key, label, how, passphrase in CASES:
            side = sides[label]
            for count in (1, MIRRORS):
                # A first open is measured on mirrors never opened since they were made.
                home = side.home(how) if (label, how) == ("after", "argon2id") else homes[(label, how)]
                side.measure(f"{key}|{count}", home, count, passphrase)


def report(sides: dict[str, Side], baseline: str, rounds: int) -> None:
    print(f"policy mirrors: open + write in a fresh process, median of {rounds} rounds "
          f"(before = {baseline}, after = this checkout)")
    print(f"{'':8} {'':44} {'1 mirror':>12} {f'{MIRRORS} mirrors':>12} {'each further':>13}")
    for key, label, _how, _passphrase in CASES:
        side = sides[label]
        medians = []
        for count in (1, MIRRORS):
            runs = side.runs.get(f"{key}|{count}")
            failed = side.failures.get(f"{key}|{count}")
            medians.append(statistics.median(runs) * 1000 if runs and not failed else None)
        cells = [f"{m:9.1f} ms" if m is not None else "fails" for m in medians]
        each = f"{(medians[1] - medians[0]) / (MIRRORS - 1):9.1f} ms" if None not in medians else ""
        print(f"{label:8} {key:44} {cells[0]:>12} {cells[1]:>12} {each:>13}")
        for count in (1, MIRRORS):
            failed = side.failures.get(f"{key}|{count}")
            if failed:
                print(f"{'':8}   ({count}): {failed}")
                break


if __name__ == "__main__":
    main()
