"""The core is reachable without the console: only console/tui imports Textual. And the
packages stay in their layers (the import-linter contract in pyproject.toml)."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "console"


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


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root``, with the contracts of its pyproject.toml."""
    if importlib.util.find_spec("importlinter") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs import-linter (the test extras install it: pip install -e '.[test]')")
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    # Run from root: 'console' is imported from there ('' leads sys.path under -c).
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
               "--no-cache", "--no-logo", "pyproject.toml"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)


def test_the_packages_keep_their_layers() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_layers_contract_refuses_an_import_up_or_across(tmp_path: Path) -> None:
    """The same contract on a copy of the package with three imports it must refuse: one
    up the layers, one between independent siblings, one from the CLI into the console
    beside the two launch points it allows."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(PACKAGE, tmp_path / "console", ignore=lambda where, names: [
        n for n in names if n == "__pycache__" or not (n.endswith(".py") or Path(where, n).is_dir())])
    for module, line in [("errors.py", "from console.workspace import Workspace"),
                         ("policy.py", "from console.audit import AuditEvent"),
                         ("cli/agent_cmds.py", "from console.tui.screens import agents")]:
        with open(tmp_path / "console" / module, "a", encoding="utf-8") as source:
            source.write(f"\n{line}  # noqa\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    for refused in ["console.errors -> console.workspace", "console.policy -> console.audit",
                    "console.cli.agent_cmds -> console.tui.screens.agents"]:
        assert refused in done.stdout, done.stdout
