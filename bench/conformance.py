"""The official MCP conformance suite against each test server directly and through the
gateway's per-server and aggregate endpoints: scenarios (and checks) passed per suite
release and protocol version, and every scenario the gateway loses, with the suite's reason.

Run: .venv/bin/python bench/conformance.py   (needs the test environment: scripts/testenv.sh)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv/cache"))

from tests.support import conformance_suite as suite  # noqa: E402
from tests.support.conformance_targets import ENDPOINTS, conformance_setup  # noqa: E402
from tests.support.sharedkeys import shared_keyring_home  # noqa: E402


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-conformance-") as tmp, shared_keyring_home(Path(tmp)), \
            conformance_setup(Path(tmp)) as setup:
        results = suite.measure(setup.urls)
    print(suite.tables(results, ENDPOINTS))
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
