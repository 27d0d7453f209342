"""How tests/gateway/test_conformance.py reads the suite's results and judges them: a
scenario lost on the way fails, and so does a listed gap that no longer is one."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.conformance_suite import LEGS, Run, Scenario, read_results, verdict

LEG = LEGS[1]


def checks(folder: Path, *statuses: tuple[str, str]) -> None:
    folder.mkdir(parents=True)
    folder.joinpath("checks.json").write_text(json.dumps(
        [{"id": check, "status": status, "errorMessage": f"{check} went\n  wrong"} for check, status in statuses]))


def test_results_are_read_per_scenario_with_the_first_failure_as_the_reason(tmp_path: Path) -> None:
    checks(tmp_path / "server-tools-call-simple-text-2026-12-06T18-21-31-127Z", ("a", "SUCCESS"), ("b", "SUCCESS"))
    checks(tmp_path / "server-server-sse-polling-2026-12-06T18-21-31-200Z",
           ("a", "SUCCESS"), ("b", "FAILURE"), ("c", "FAILURE"), ("d", "WARNING"))
    (tmp_path / "notes.txt").write_text("not a result")
    found = read_results(tmp_path)
    assert found == {
        "tools-call-simple-text": Scenario("tools-call-simple-text", 2, 0, ""),
        "server-sse-polling": Scenario("server-sse-polling", 1, 2, "b: b went wrong"),
    }
    assert found["tools-call-simple-text"].ok and not found["server-sse-polling"].ok
    assert Run(found).score() == "1/2 (3/5 checks)"
    assert Run.from_json(Run(found).to_json()) == Run(found)  # how a direct run is cached


def outcome(**passed: bool) -> Run:
    return Run({name.replace("_", "-"): Scenario(name, 1, 0 if ok else 1, "" if ok else "x: refused")
                for name, ok in passed.items()})


def test_only_listed_scenarios_may_be_lost_and_a_listed_one_that_passes_fails_too() -> None:
    results = {
        ("srv", "direct", LEG): outcome(ping=True, tools_list=True, tools_call=True, sampling=True, broken=False),
        ("srv", "per-server", LEG): outcome(ping=True, tools_list=False, tools_call=True, sampling=False, broken=False),
    }
    where = f"srv per-server {LEG.label()}"
    assert verdict(results, {("srv", "per-server", LEG.spec): frozenset({"sampling"})}, {}) == [
        f"{where}: tools-list lost: x: refused"]
    assert verdict(results, {("srv", "per-server", LEG.spec): frozenset({"sampling", "tools-list", "tools-call"})},
                   {("srv", "per-server", LEG.spec): frozenset({"ping"})}) == [
        f"{where}: tools-call passes now: take it out of the known gaps",
        f"{where}: ping passes now: take it out of by design"]
    # A scenario the suite did not run through the gateway at all is lost too.
    del results["srv", "per-server", LEG].scenarios["ping"]
    assert f"{where}: ping lost: the suite did not run it here" in verdict(results, {}, {})
