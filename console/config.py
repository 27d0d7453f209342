"""User settings, read from ``config.toml`` in the config directory.

Missing file means defaults. A malformed file is an error that names the file and the
bad setting, never a silent fallback: a user who wrote a setting expects it to hold.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.errors import TbxError


class VaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyring_timeout: float = Field(default=5.0, gt=0, le=120)
    """Seconds to wait for the OS keyring before treating it as unavailable."""

    lock_timeout: float = Field(default=15.0, gt=0, le=600)
    """Seconds to wait for another process to release the vault lock."""

    def timeouts(self) -> dict[str, float]:
        return {"keyring_timeout": self.keyring_timeout, "lock_timeout": self.lock_timeout}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vault: VaultSettings = VaultSettings()


def load_settings(path: Path) -> Settings:
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TbxError(f"cannot read settings {path}: {exc}; fix or delete the file") from exc
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TbxError(f"bad setting {where} in {path}: {first['msg']}") from exc
