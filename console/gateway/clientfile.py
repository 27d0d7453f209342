"""Merge an agent's entry into a client's own config file, keeping everything else.

Pure up to ``write``: ``merge`` reads the file and returns the text it would become, so
the CLI and the console show the same diff before anything is written. A file that does
not parse is refused rather than rewritten: it may be the user's only copy of a hand
edit in progress.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.errors import TbxError
from console.gateway.clientconfig import ClientConfig, toml_table


@dataclass(frozen=True)
class Merge:
    path: Path
    old: str | None
    """The file's text, None when it does not exist yet."""
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        name = str(self.path)
        return "".join(difflib.unified_diff((self.old or "").splitlines(keepends=True),
                                            self.new.splitlines(keepends=True),
                                            fromfile=name if self.old is not None else "/dev/null", tofile=name))


def merge(config: ClientConfig, path: Path) -> Merge:
    """What ``path`` becomes with ``config``'s entry in (replacing one of the same name)."""
    if config.fmt == "text":
        raise TbxError(f"{config.client} has no config file to write; copy the URL and header instead")
    try:
        old: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise TbxError(f"cannot read {path}: {exc.strerror or exc}") from None
    if config.fmt == "toml":
        return Merge(path, old, _merge_toml(config, path, old or ""))
    return Merge(path, old, _merge_json(config, path, old))


def _merge_json(config: ClientConfig, path: Path, old: str | None) -> str:
    doc: Any = {}
    if old is not None and old.strip():
        try:
            doc = json.loads(old)
        except ValueError as exc:
            raise TbxError(f"cannot parse {path} as JSON ({exc}); fix it or pass --file") from None
    if not isinstance(doc, dict):
        raise TbxError(f"{path} is not a JSON object; fix it or pass --file")
    servers = doc.setdefault(config.section, {})
    if not isinstance(servers, dict):
        raise TbxError(f"'{config.section}' in {path} is not an object; fix it or pass --file")
    servers[config.key] = config.entry
    if config.inputs:
        inputs = doc.setdefault("inputs", [])
        if not isinstance(inputs, list):
            raise TbxError(f"'inputs' in {path} is not a list; fix it or pass --file")
        ours = {i["id"] for i in config.inputs}
        doc["inputs"] = [i for i in inputs if not (isinstance(i, dict) and i.get("id") in ours)] + config.inputs
    return json.dumps(doc, indent=_indent(old), ensure_ascii=False) + "\n"


def _indent(text: str | None) -> int:
    """Keep the file's own indent (2 when it has none to go by)."""
    found = re.search(r"\n( +)\S", text or "")
    return len(found.group(1)) if found else 2


def _merge_toml(config: ClientConfig, path: Path, old: str) -> str:
    try:
        doc = tomllib.loads(old)
    except tomllib.TOMLDecodeError as exc:
        raise TbxError(f"cannot parse {path} as TOML ({exc}); fix it or pass --file") from None
    table = toml_table(config.section, config.key, config.entry) + "\n"
    header = re.compile(rf'^[ \t]*\[[ \t]*{config.section}[ \t]*\.[ \t]*(?:"{config.key}"|{config.key})[ \t]*\][ \t]*$',
                        re.M)
    found = header.search(old)
    if found is None:
        if config.key in doc.get(config.section, {}):
            raise TbxError(f"{path} defines {config.section}.{config.key} in a form tbx does not rewrite; "
                           f"remove it and run again")
        if not old.strip():
            return table
        return old + ("" if old.endswith("\n\n") else "\n" if old.endswith("\n") else "\n\n") + table
    # The table runs to the next table header; its sub-tables ([...key.env]) stay.
    following = re.compile(r"^[ \t]*\[", re.M).search(old, found.end())
    end = following.start() if following else len(old)
    tail = old[end:]
    new = old[:found.start()] + table + ("\n" if tail else "") + tail
    try:  # a line of the old table that only looked like a header would have cut it short
        ours = tomllib.loads(new)[config.section][config.key]
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        ours = None
    if not isinstance(ours, dict) or any(ours.get(name) != value for name, value in config.entry.items()):
        raise TbxError(f"cannot rewrite {config.section}.{config.key} in {path} safely; remove it and run again")
    return new


def write(change: Merge) -> Path | None:
    """Write the merged file; the previous one is kept next to it first. Returns the
    backup's path (None when there was no file before)."""
    backup = None
    change.path.parent.mkdir(parents=True, exist_ok=True)
    if change.old is not None:
        backup = change.path.with_name(change.path.name + ".tbx-backup")
        shutil.copy2(change.path, backup)
    temp = change.path.with_name(f".{change.path.name}.tbx-{os.getpid()}")
    temp.write_text(change.new, encoding="utf-8")
    if change.old is not None:
        shutil.copymode(change.path, temp)
    else:
        temp.chmod(0o600)  # it may hold a token
    temp.replace(change.path)
    return backup
