"""npm packages the tests run on the host (an independent OAuth provider, Node 22 itself),
installed from the npm registry into ``.testenv/npm`` and reused while their lock file
is unchanged.

Each tool set is a directory under ``tests/support/npm/`` with a ``package.json`` and a
``package-lock.json`` that pins every package by its integrity hash. ``npm ci`` installs
it into ``.testenv/npm/<name>-<hash of the directory>``; a new lock file gets a new
directory, so a changed pin can never run on stale packages. Node comes from the npm
registry too (the ``node`` package's platform binary), not from Debian, whose Node is
older than what the tools need.

``python -m tests.support.npm_tools`` installs every tool set (``scripts/testenv.sh`` runs it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from console.filelock import held

ROOT = Path(__file__).resolve().parents[2]
SOURCES = Path(__file__).resolve().parent / "npm"
INSTALLS = ROOT / ".testenv" / "npm"


class ToolsetMissing(RuntimeError):
    """The tool set is not installed and cannot be (no npm, no registry)."""


def _digest(name: str) -> str:
    source = SOURCES / name
    digest = hashlib.sha256()
    for part in sorted(source.iterdir()):  # the lock file, and the scripts that run on the packages
        digest.update(part.name.encode() + b"\0" + part.read_bytes())
    return digest.hexdigest()[:16]


def toolset_dir(name: str) -> Path:
    return INSTALLS / f"{name}-{_digest(name)}"


def install(name: str) -> Path:
    """The installed tool set, installing it first if needed (one installer at a time)."""
    target = toolset_dir(name)
    if (target / ".installed").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ToolsetMissing(f"npm is not installed, so the {name} tool set cannot be installed (scripts/testenv.sh installs npm)")
    INSTALLS.mkdir(parents=True, exist_ok=True)
    with held(INSTALLS / f"{name}.lock", 600.0, lambda pid: ToolsetMissing(f"process {pid} is installing {name}")):
        if (target / ".installed").exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for part in (SOURCES / name).iterdir():
            shutil.copy(part, target / part.name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=target, capture_output=True, text=True, timeout=600,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise ToolsetMissing(f"npm ci of {name} failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
        (target / ".installed").touch()
        for stale in INSTALLS.glob(f"{name}-*"):  # installs of earlier pins
            if stale != target and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    return target


def node(toolset: Path) -> Path:
    """The Node binary a tool set installed from the registry's ``node`` package."""
    binary = toolset / "node_modules" / ".bin" / "node"
    if not binary.exists():
        raise ToolsetMissing(f"{toolset.name} has no node binary: its package.json must depend on the 'node' package")
    return binary


def require(name: str) -> Path:
    """The installed tool set, or the test ends here: skipped where npm cannot install it,
    failed under CI (``scripts/testenv.sh`` installs every tool set)."""
    import pytest

    try:
        return install(name)
    except ToolsetMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the {name} npm tool set: {exc}")
        pytest.skip(str(exc))


def main() -> int:
    for source in sorted(p for p in SOURCES.iterdir() if (p / "package.json").exists()):
        try:
            print(f"npm tool set {source.name}: {install(source.name)}")
        except ToolsetMissing as exc:
            print(f"npm tool set {source.name}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
