"""The tool-poisoning scanner against a labelled corpus: recall, false positives, speed.

Corpus (tests/fixtures/):
- poisoned: ``scan/poisoned/*.json``, lists of entries ``{id, source, expect, server,
  other_servers_tools?, tool}`` rewritten from published research (an entry with ``file``
  points at one of the older ``poisoned/*.json`` fixtures and adds its labels);
- benign: ``real_tools/*.json`` (the catalog's servers, captured in containers) and
  ``scan/benign/*.json`` (popular servers captured on the host); every file names the
  ``package@version`` it came from and holds its ``tools/list`` as sent.

The rules were written from the attack classes; ``second_batch.json`` and ``third_batch.json``
were then written as held-out checks before the rules saw them: 8 of 18 and 6 of 15 were
caught at first, the rest after the rules were widened (generically) for what they showed.
Expect new attacks to be caught at roughly that first rate by rules this size.

Rules of the count. Any finding blocks approval until the user accepts its kind, so:
- a poisoned item is *caught* when it gets at least one medium or high finding of a kind it
  is labelled with (a low finding, or only findings of other kinds, is a miss: the user
  would be told the wrong reason, or nothing they must act on);
- a benign item is a *false positive* when it gets any medium or high finding; one with
  only low findings is counted apart (still shown to the user, but as a note).
Per class: of the items labelled with a kind, the share with a medium/high finding of it.

Each definition is scanned as the product scans it (``scan_tool(defn, server=, own_tools=,
other_servers_tools=)``), in two toolboxes: the server alone, and the server beside all
the catalog's servers (plus, for a poisoned entry, the servers its attack names).

Run: .venv/bin/python bench/scan.py [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.model import Finding  # noqa: E402
from console.trust.scan import KINDS, scan_tool  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
POISONED = FIXTURES / "scan" / "poisoned"
BENIGN_DIRS = (FIXTURES / "real_tools", FIXTURES / "scan" / "benign")
BLOCKING = ("medium", "high")


@dataclass(frozen=True)
class Item:
    id: str
    server: str
    tool: dict[str, Any]
    own_tools: frozenset[str]
    expect: tuple[str, ...] = ()
    """The finding kinds a poisoned item must raise (one is enough); empty for benign."""
    others: dict[str, frozenset[str]] = field(default_factory=dict)
    """Servers the attack itself names (a poisoned fixture's ``other_servers_tools``)."""
    source: str = ""


def load_poisoned() -> list[Item]:
    items = []
    for path in sorted(POISONED.glob("*.json")):
        for entry in json.loads(path.read_text()):
            data = {**json.loads((path.parent / entry["file"]).read_text()), **entry} if "file" in entry else entry
            tool = data["tool"]
            others = {s: frozenset(t) for s, t in data.get("other_servers_tools", {}).items()}
            items.append(Item(data["id"], data["server"], tool, frozenset({str(tool.get("name", ""))}),
                              tuple(data["expect"]), others, data.get("source", "")))
    return items


def load_benign() -> list[Item]:
    items = []
    for folder in BENIGN_DIRS:
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text())
            own = frozenset(str(t.get("name", "")) for t in data["tools"])
            items += [Item(f"{data['server']}/{tool.get('name')}", data["server"], tool, own, source=data["package"])
                      for tool in data["tools"]]
    return items


def catalog_toolbox() -> dict[str, frozenset[str]]:
    """The catalog's servers with their captured tools: a realistic full toolbox."""
    from console.catalog import load_catalog
    from console.paths import resolve_paths

    ids = set(load_catalog(resolve_paths()).by_id)
    servers = {}
    for folder in BENIGN_DIRS:
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text())
            if data["server"] in ids:
                servers[data["server"]] = frozenset(str(t.get("name", "")) for t in data["tools"])
    return servers


def scan(item: Item, toolbox: dict[str, frozenset[str]]) -> list[Finding]:
    others = {name: set(tools) for name, tools in {**toolbox, **item.others}.items() if name != item.server}
    return scan_tool(item.tool, server=item.server, other_servers_tools=others, own_tools=item.own_tools)


def caught(item: Item, findings: list[Finding]) -> bool:
    return any(f.kind in item.expect and f.severity in BLOCKING for f in findings)


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity in BLOCKING]


@dataclass
class Result:
    toolbox: str
    poisoned: list[tuple[Item, list[Finding]]]
    benign: list[tuple[Item, list[Finding]]]
    seconds: float

    @property
    def misses(self) -> list[tuple[Item, list[Finding]]]:
        return [(i, f) for i, f in self.poisoned if not caught(i, f)]

    @property
    def false_positives(self) -> list[tuple[Item, list[Finding]]]:
        return [(i, f) for i, f in self.benign if blocking(f)]

    @property
    def low_only(self) -> list[tuple[Item, list[Finding]]]:
        return [(i, f) for i, f in self.benign if f and not blocking(f)]

    def per_class(self) -> dict[str, tuple[int, int]]:
        """kind -> (items labelled with it that got a medium/high finding of it, items labelled)."""
        out = {}
        for kind in KINDS:
            labelled = [(i, f) for i, f in self.poisoned if kind in i.expect]
            hit = [1 for _, f in labelled if any(x.kind == kind and x.severity in BLOCKING for x in f)]
            out[kind] = (len(hit), len(labelled))
        return out


def run(toolbox_name: str, toolbox: dict[str, frozenset[str]], poisoned: list[Item], benign: list[Item],
        scanner: Callable[[Item, dict[str, frozenset[str]]], list[Finding]] = scan) -> Result:
    start = time.process_time()  # CPU time: a busy machine does not inflate it
    p = [(item, scanner(item, toolbox)) for item in poisoned]
    b = [(item, scanner(item, toolbox)) for item in benign]
    return Result(toolbox_name, p, b, time.process_time() - start)


def _first(findings: list[Finding], kinds: tuple[str, ...] = KINDS) -> str:
    shown = [f for f in findings if f.kind in kinds] or findings
    return "; ".join(f"{f.severity} {f.kind}: {f.message}" for f in shown[:2]) or "no finding"


def report(result: Result, verbose: bool) -> None:
    n_p, n_b = len(result.poisoned), len(result.benign)
    misses, fps, low = result.misses, result.false_positives, result.low_only
    print(f"\n== toolbox: {result.toolbox}")
    print(f"recall          {n_p - len(misses)}/{n_p} = {(n_p - len(misses)) / n_p:.1%}   (aim >= 95%)")
    print(f"false positives {len(fps)}/{n_b} = {len(fps) / n_b:.1%}   (aim <= 2%)")
    print(f"low-only benign {len(low)}/{n_b} = {len(low) / n_b:.1%}")
    print(f"time            {result.seconds / (n_p + n_b) * 1000:.2f} ms CPU per definition ({n_p + n_b} definitions)")
    print("per class (labelled items with a medium/high finding of that kind):")
    for kind, (hit, total) in result.per_class().items():
        print(f"  {kind:20} {hit}/{total}" + (f" = {hit / total:.0%}" if total else ""))
    for title, rows in (("misses", misses), ("false positives", fps)):
        print(f"{title}: {len(rows) or 'none'}")
        for item, findings in rows:
            print(f"  {item.id} [{', '.join(item.expect) or item.source}]: {_first(findings)}"[:400])
    if verbose:
        print("low-only benign:")
        for item, findings in low:
            print(f"  {item.id}: {_first(findings)}"[:300])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="also list the benign items with low findings")
    args = parser.parse_args()
    poisoned, benign = load_poisoned(), load_benign()
    packages = sorted({i.source for i in benign})
    print(f"corpus: {len(poisoned)} poisoned definitions, {len(benign)} benign definitions from "
          f"{len(packages)} packages")
    for result in (run("the server alone", {}, poisoned, benign),
                   run("beside the catalog's servers", catalog_toolbox(), poisoned, benign)):
        report(result, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
