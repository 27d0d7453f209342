"""The core is reachable without the console: only console/tui imports Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "console"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_only_the_tui_package_imports_textual() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "tui" in path.relative_to(PACKAGE).parts:
            continue
        if any(name == "textual" or name.startswith("textual.") for name in imported_modules(path)):
            offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert offenders == []


def test_the_core_imports_without_textual() -> None:
    core = [f"console.{p.relative_to(PACKAGE).with_suffix('').as_posix().replace('/', '.')}"
            for p in PACKAGE.rglob("*.py")
            if "tui" not in p.relative_to(PACKAGE).parts and p.name not in ("__main__.py",)]
    core = [name.removesuffix(".__init__") for name in core]
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in core) + \
        "print('textual' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_the_gateway_has_no_import_cycles() -> None:
    """Its steps are composed by service.py; none of them reaches back up (TYPE_CHECKING
    imports count: a cycle there is the same tangle, postponed)."""
    gateway = PACKAGE / "gateway"
    graph = {f"console.gateway.{p.stem}": {m for m in imported_modules(p) if m.startswith("console.gateway.")}
             for p in gateway.glob("*.py") if p.stem != "__init__"}

    def cycle_from(start: str, path: list[str]) -> list[str] | None:
        for target in sorted(graph.get(path[-1], ())):
            if target == start:
                return [*path, target]
            if target not in path:
                found = cycle_from(start, [*path, target])
                if found:
                    return found
        return None

    cycles = [c for module in graph if (c := cycle_from(module, [module]))]
    assert cycles == []
