"""Where Toolbox Console keeps its files.

``TBX_HOME`` relocates everything (tests use a temporary one); otherwise the platform's
usual data and config directories are used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "toolbox-console"


@dataclass(frozen=True)
class Paths:
    """The set of locations one Toolbox Console installation uses."""

    data_dir: Path
    config_dir: Path
    state_dir: Path
    cache_dir: Path
    """Downloaded packages and build contexts; safe to delete. ``TBX_CACHE_DIR`` moves it
    on its own, so test runs with throwaway homes still share one warm cache."""

    @property
    def vault(self) -> Path:
        return self.data_dir / "vault.tbx"

    @property
    def vault_backup(self) -> Path:
        return self.data_dir / "vault.tbx.bak"

    @property
    def vault_lock(self) -> Path:
        return self.data_dir / "vault.tbx.lock"

    @property
    def audit_log(self) -> Path:
        return self.data_dir / "audit.jsonl"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def themes_dir(self) -> Path:
        return self.config_dir / "themes"

    @property
    def catalog_file(self) -> Path:
        return self.config_dir / "catalog.json"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def ensure(self) -> None:
        """Create the directories, private to the user."""
        for directory in (self.data_dir, self.config_dir, self.state_dir, self.cache_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def resolve_paths(environ: dict[str, str] | None = None) -> Paths:
    env = os.environ if environ is None else environ
    home = env.get("TBX_HOME")
    cache = env.get("TBX_CACHE_DIR")
    if home:
        root = Path(home).expanduser().absolute()
        return Paths(
            data_dir=root,
            config_dir=root / "config",
            state_dir=root / "state",
            cache_dir=Path(cache).expanduser().absolute() if cache else root / "cache",
        )
    return Paths(
        data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
        config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
        state_dir=Path(platformdirs.user_state_dir(APP_NAME)),
        cache_dir=Path(cache).expanduser().absolute() if cache else Path(platformdirs.user_cache_dir(APP_NAME)),
    )
