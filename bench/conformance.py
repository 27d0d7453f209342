"""The official MCP conformance suite against each test server directly and through the
gateway's per-server and aggregate endpoints: scenarios (and checks) passed per suite
release and protocol version, and every scenario the gateway loses, with the suite's reason.

Run: .venv/bin/python bench/conformance.py [--baseline REF]   (needs the test environment)

``--baseline REF`` measures the gateway of commit REF instead: the conformance harness
(this file and the support files below) is copied into a checkout of REF and run there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv/cache"))

from bench.baseline import worktree  # noqa: E402
from tests.support import conformance_suite as suite  # noqa: E402
from tests.support.conformance_targets import ENDPOINTS, conformance_setup, measure  # noqa: E402
from tests.support.sharedkeys import shared_keyring_home  # noqa: E402

HARNESS = ("bench/conformance.py", "tests/support/auth_proxy.py", "tests/support/conformance_suite.py",
           "tests/support/conformance_targets.py", "tests/fixtures/servers/conformance",
           "tests/support/npm/conformance-0.1", "tests/support/npm/conformance-0.2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="measure the gateway of this commit")
    args = parser.parse_args()
    if args.baseline:
        return _at(worktree(args.baseline))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-conformance-") as tmp, shared_keyring_home(Path(tmp)), \
            conformance_setup(Path(tmp)) as setup:
        results = measure(setup)
    print(suite.tables(results, ENDPOINTS))
    print(f"\n({time.monotonic() - started:.0f} s, gateway of {REPO})")
    return 0


def _at(tree: Path) -> int:
    for part in HARNESS:
        source, target = REPO / part, tree / part
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy(source, target)
    # The tool sets install into the checkout's .testenv once (npm ci from the same lock files).
    os.execv(sys.executable, [sys.executable, str(tree / "bench" / "conformance.py")])


if __name__ == "__main__":
    sys.exit(main())
