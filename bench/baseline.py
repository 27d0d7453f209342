"""The other side of a side-by-side benchmark: a checkout of a baseline commit."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worktree(ref: str) -> Path:
    """A checkout of ``ref`` beside this one (kept between runs: it is only a cache)."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"tbx-baseline-{commit}"
    if not (path / "console").exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(path), commit],
                       capture_output=True, check=True)
    return path
