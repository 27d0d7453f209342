"""Themes are files: TOML validated into Textual themes, shipped ones and the user's own.

A file that does not parse or validate is skipped with a message naming it and why; the
console falls back to a shipped theme rather than refusing to start.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "tbx-dark"


def shipped_themes_dir() -> Path:
    """``themes/`` of the installed package (wheel) or of the source checkout."""
    packaged = Path(__file__).resolve().parent / "builtin_themes"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "themes"


class ThemeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    dark: bool = True
    primary: str
    secondary: str | None = None
    accent: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)

    def to_theme(self) -> Theme:
        for key in ("primary", "secondary", "accent", "warning", "error", "success", "foreground", "background",
                    "surface", "panel"):
            value = getattr(self, key)
            if value is not None:
                try:
                    Color.parse(value)
                except ColorParseError:
                    raise ValueError(f"{key} = {value!r} is not a colour") from None
        return Theme(**self.model_dump())


@dataclass
class LoadedThemes:
    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_themes(*folders: Path) -> LoadedThemes:
    loaded = LoadedThemes()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                loaded.themes.append(ThemeFile.model_validate(tomllib.loads(path.read_text("utf-8"))).to_theme())
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                loaded.problems.append(f"theme {path.name} is unreadable ({exc}); using {DEFAULT_THEME}")
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "file"
                loaded.problems.append(f"theme {path.name}: {where}: {first['msg']}; using {DEFAULT_THEME}")
            except ValueError as exc:
                loaded.problems.append(f"theme {path.name}: {exc}; using {DEFAULT_THEME}")
    return loaded
