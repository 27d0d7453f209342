"""The attacker's view: a real gateway over real HTTP, real server containers.

One stack for the whole package (starting servers costs seconds): `time` from the
catalog plus the shapeshifter test server, whose definitions, leaks and failures the
tests control. Tests create their own agents and servers, so they never share grants.
Tests that break the gateway itself (its audit log, its process) start their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.conftest import Stack, _stack
from tests.support.sharedkeys import shared_keyring_home

LIMITS = """max_sessions_per_agent = 8
max_inflight_per_agent = 4
max_streams_per_agent = 2
header_timeout_seconds = 1.0
body_timeout_seconds = 1.5
idle_timeout_seconds = 3.0
max_connections = 200
"""
"""Small limits, so a test can reach each of them quickly."""


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("adversarial")
    with shared_keyring_home(root):
        yield from _stack(root, ("time",), LIMITS)
