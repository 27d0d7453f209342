"""The official MCP conformance suite (npm ``@modelcontextprotocol/conformance``), run as
its users run it: ``conformance server --url URL --spec-version V``, on Node 22 from the
tool sets ``tests/support/npm/conformance-0.1`` and ``conformance-0.2``.

What it found is read from its results directory, one ``checks.json`` per scenario, not
from its console output, which is meant for people and changes between releases.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support import npm_tools

PACKAGE = Path("node_modules") / "@modelcontextprotocol" / "conformance"


@dataclass(frozen=True)
class Leg:
    """One way of running the suite: which release, at which protocol version."""

    toolset: str
    spec: str

    def label(self) -> str:
        return f"{suite_version(self.toolset)}, {self.spec}"


LEGS = (
    Leg("conformance-0.1", "2025-11-25"),
    Leg("conformance-0.2", "2025-11-25"),
    Leg("conformance-0.2", "2026-07-28"),
)


@dataclass(frozen=True)
class Scenario:
    name: str
    passed: int
    """Checks that succeeded."""
    failed: int
    reason: str
    """The first failed check and what the suite said about it; empty when none failed."""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0


@dataclass(frozen=True)
class Run:
    scenarios: dict[str, Scenario]

    def passing(self) -> set[str]:
        return {name for name, scenario in self.scenarios.items() if scenario.ok}

    def to_json(self) -> str:
        return json.dumps({name: [s.passed, s.failed, s.reason] for name, s in self.scenarios.items()})

    @classmethod
    def from_json(cls, text: str) -> Run:
        return cls({name: Scenario(name, *fields) for name, fields in json.loads(text).items()})

    def score(self) -> str:
        passed = sum(s.passed for s in self.scenarios.values())
        total = passed + sum(s.failed for s in self.scenarios.values())
        return f"{len(self.passing())}/{len(self.scenarios)} ({passed}/{total} checks)"


def suite_version(toolset: str) -> str:
    """The release the tool set pins (exactly: its lock file installs that and nothing else)."""
    manifest = json.loads((npm_tools.SOURCES / toolset / "package.json").read_text(encoding="utf-8"))
    return manifest["dependencies"]["@modelcontextprotocol/conformance"]


def run(leg: Leg, url: str, timeout: float = 300.0) -> Run:
    """Every active server scenario of ``leg`` against the MCP endpoint at ``url``."""
    toolset = npm_tools.install(leg.toolset)
    with tempfile.TemporaryDirectory(prefix="conformance-") as out:
        done = subprocess.run(
            [str(npm_tools.node(toolset)), str(toolset / PACKAGE / "dist" / "index.js"), "server",
             "--url", url, "--spec-version", leg.spec, "--output-dir", out],
            cwd=out, capture_output=True, text=True, timeout=timeout,
        )
        scenarios = read_results(Path(out))
    if not scenarios:  # exit status 1 only says some check failed; no results says the suite did not run
        raise RuntimeError(f"conformance {leg.label()} against {url} wrote no results "
                           f"(exit {done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
    return Run(scenarios)


_RESULT_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d\d-\d\dT[\d-]+Z$")


def read_results(out: Path) -> dict[str, Scenario]:
    """``server-<scenario>-<timestamp>/checks.json`` for each scenario the suite ran."""
    scenarios = {}
    for folder in sorted(out.iterdir()):
        match = _RESULT_DIR.match(folder.name)
        if match is None or not (folder / "checks.json").exists():
            continue
        checks = json.loads((folder / "checks.json").read_text(encoding="utf-8"))
        failures = [c for c in checks if c.get("status") == "FAILURE"]
        reason = ""
        if failures:
            first = failures[0]
            reason = f"{first.get('id')}: {' '.join(str(first.get('errorMessage', '')).split())[:300]}"
        name = match["name"]
        scenarios[name] = Scenario(name, sum(c.get("status") == "SUCCESS" for c in checks), len(failures), reason)
    return scenarios


Results = dict[tuple[str, str, Leg], Run]
"""(server, endpoint, leg) -> what the suite found there."""


def lost(results: Results, server: str, endpoint: str, leg: Leg) -> dict[str, str]:
    """Scenarios that pass directly and not at ``endpoint``, with the suite's reason."""
    direct, through = results[server, "direct", leg], results[server, endpoint, leg]
    missing = Scenario("", 0, 0, "the suite did not run it here")
    return {name: through.scenarios.get(name, missing).reason
            for name in sorted(direct.passing() - through.passing())}


Expected = dict[tuple[str, str, str], frozenset[str]]
"""(server, endpoint, spec version) -> scenarios that pass directly and are known not to through it."""


def verdict(results: Results, known_gaps: Expected, by_design: Expected) -> list[str]:
    """What breaks the rule "a scenario that passes directly passes through the gateway"
    beyond the two lists, and every entry of the lists that no longer applies (so they
    only shrink)."""
    problems = []
    for server, endpoint, leg in results:
        if endpoint == "direct":
            continue
        lost_here = lost(results, server, endpoint, leg)
        gaps = known_gaps.get((server, endpoint, leg.spec), frozenset())
        meant = by_design.get((server, endpoint, leg.spec), frozenset())
        where = f"{server} {endpoint} {leg.label()}"
        problems += [f"{where}: {name} lost: {why}" for name, why in lost_here.items() if name not in gaps | meant]
        problems += [f"{where}: {name} passes now: take it out of the known gaps" for name in sorted(gaps - lost_here.keys())]
        problems += [f"{where}: {name} passes now: take it out of by design" for name in sorted(meant - lost_here.keys())]
    return problems


def tables(results: Results, endpoints: tuple[str, ...]) -> str:
    """Per server: scenarios (and checks) passed per leg, directly and through the gateway,
    then what the gateway loses and why."""
    lines: list[str] = []
    servers = list(dict.fromkeys(server for server, _e, _l in results))
    legs = list(dict.fromkeys(leg for _s, _e, leg in results))
    for server in servers:
        lines += [f"\n{server}", f"| suite, spec | {' | '.join(endpoints)} |", f"|---|{'---|' * len(endpoints)}"]
        lines += [f"| {leg.label()} | {' | '.join(results[server, e, leg].score() for e in endpoints)} |"
                  for leg in legs]
        for leg in legs:
            for endpoint in endpoints[1:]:
                for name, reason in lost(results, server, endpoint, leg).items():
                    lines.append(f"  lost {leg.label()} {endpoint}: {name}: {reason}")
    return "\n".join(lines)

