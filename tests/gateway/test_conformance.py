"""The official MCP conformance suite through the gateway (issue 17, item 4).

Each suite release and protocol version runs against server-everything and against the
suite's reference server (behind the gateway in both eras, and in the 2026-07-28 era
only), directly and through the gateway's per-server and aggregate endpoints, as an
agent granted the whole server. A scenario that passes directly must
pass through the gateway, except those named below: the gaps still open (none since
issue 17's parts 1-3) and the differences the gateway makes on purpose. Both lists are exact: a
scenario that starts passing must leave its list, so the lists only shrink. The owner
lets both servers ask agents for sampling, elicitation and roots (``tbx server allow``),
as a client connected directly would be asked.

``bench/conformance.py`` prints the same measurement as tables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import conformance_suite as suite
from tests.support import npm_tools
from tests.support.conformance_targets import ENDPOINTS, conformance_setup, measure
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.slow]

V2025, V2026 = "2025-11-25", "2026-07-28"

SERVER_TO_CLIENT = frozenset({"tools-call-sampling", "tools-call-elicitation", "elicitation-sep1034-defaults",
                              "elicitation-sep1330-enums"})
NEW_ERA = frozenset({  # the 2026-07-28 scenarios of the suite, all passed by the reference server
    "completion-complete", "dns-rebinding-protection", "server-sse-multiple-streams",
    "prompts-list", "prompts-get-simple", "prompts-get-with-args", "prompts-get-embedded-resource",
    "prompts-get-with-image", "resources-list", "resources-read-text", "resources-read-binary",
    "resources-templates-read", "tools-list", "tools-call-simple-text", "tools-call-image", "tools-call-audio",
    "tools-call-embedded-resource", "tools-call-mixed-content", "tools-call-error", "tools-call-with-progress",
})

KNOWN_GAPS: suite.Expected = {}
"""Scenarios that pass directly and not through the gateway yet, per (server, endpoint, spec).
Emptied by issue 17: part 2 took out the reference server's sampling and elicitation
scenarios (SERVER_TO_CLIENT) at 2025-11-25, part 3 all of NEW_ERA at 2026-07-28 (they got
"missing Mcp-Session-Id")."""

RENAMED = frozenset({
    "completion-complete", "prompts-get-simple", "prompts-get-with-args", "prompts-get-embedded-resource",
    "prompts-get-with-image", "tools-call-simple-text", "tools-call-image", "tools-call-audio",
    "tools-call-embedded-resource", "tools-call-mixed-content", "tools-call-error", "tools-call-with-logging",
    "tools-call-with-progress", *SERVER_TO_CLIENT,
})
UNKNOWN_NAMES = frozenset({"tools-call-simple-text", "tools-call-error", "resources-subscribe",
                           "resources-unsubscribe"})

BY_DESIGN: suite.Expected = {
    # The aggregate endpoint names tools and prompts <server>__<name>; the suite asks for
    # the reference server's own names (test_simple_text), which only /servers/NAME/mcp has.
    ("conformance", "aggregate", V2025): RENAMED,
    ("conformance", "aggregate", V2026): RENAMED & NEW_ERA,
    ("conformance26", "aggregate", V2025): RENAMED,
    ("conformance26", "aggregate", V2026): RENAMED & NEW_ERA,
    # The reference server speaking only 2026-07-28 behind the gateway (its "direct" is the
    # same code over HTTP, serving both eras). Its sampling and elicitation tools send the
    # handshake era's server-to-client requests, which its own era has no channel for: they
    # fail in the server, before anything reaches the gateway (its input-required tools,
    # the new era's way, are relayed: tests/gateway/test_modern_upstream.py).
    ("conformance26", "per-server", V2025): SERVER_TO_CLIENT,
    # server-everything has no test_simple_text, test_error_handling or test://watched-resource:
    # it answers the call with an isError result and accepts the subscription, and the suite
    # counts both as passes. The gateway refuses an item it never discovered (and so no one
    # approved or granted) with the JSON-RPC error the specification gives unknown tools.
    ("everything", "per-server", V2025): UNKNOWN_NAMES,
    ("everything", "aggregate", V2025): UNKNOWN_NAMES,
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> suite.Results:  # noqa: ANN001
    for toolset in sorted({leg.toolset for leg in suite.LEGS}):
        npm_tools.require(toolset)
    root = tmp_path_factory.mktemp("conformance")
    with shared_keyring_home(root), conformance_setup(Path(root)) as setup:
        measured = measure(setup)
    print(suite.tables(measured, ENDPOINTS))  # the tables, with pytest -s
    return measured


def test_the_reference_server_passes_every_scenario_directly(results: suite.Results) -> None:
    # Without this, a setup that broke the server would make "direct" and "through" agree.
    for leg in suite.LEGS:
        run = results["conformance", "direct", leg]
        assert len(run.scenarios) >= 20 and run.passing() == set(run.scenarios), (leg.label(), run.score())


def test_what_passes_directly_passes_through_the_gateway(results: suite.Results) -> None:
    problems = suite.verdict(results, KNOWN_GAPS, BY_DESIGN)
    assert not problems, "\n".join(problems) + suite.tables(results, ENDPOINTS)
