"""The SSH part of the add-toolbox dialog: ``USER@HOST[:PORT]`` and the private key file.

Only the shape is checked here (the full parse loads asyncssh, which the add worker
does anyway); the key file is read by the worker, never shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from console.tui.widgets.add_server_form import FormProblem

TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}@[^@:\s/]+(?::[0-9]{1,5})?$")
DEFAULT_KEY = "~/.ssh/id_ed25519"


@dataclass(frozen=True)
class SshChoice:
    target: str
    key_path: Path


class SshForm(Vertical):
    DEFAULT_CSS = """
    SshForm { height: auto; }
    SshForm .row { height: auto; }
    SshForm .row Label { width: 10; padding: 1 1 0 0; }
    SshForm Input { width: 1fr; }
    SshForm #ssh-note { padding: 0 0 0 10; height: auto; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Host")
            yield Input(placeholder="USER@HOST[:PORT], e.g. root@203.0.113.7", id="target")
        with Horizontal(classes="row"):
            yield Label("Key file")
            yield Input(value=DEFAULT_KEY, placeholder="the private key that logs in", id="key")
        yield Static("The host must run Docker. You confirm its host key fingerprint on first contact; the key "
                     "is kept in the vault.", id="ssh-note")

    def collect(self) -> SshChoice:
        target = self.query_one("#target", Input).value.strip()
        if not TARGET.match(target):
            raise FormProblem("the host is USER@HOST[:PORT], e.g. root@203.0.113.7", "target")
        port = target.rpartition(":")[2] if target.count(":") == 1 else ""
        if port and not 1 <= int(port) <= 65535:
            raise FormProblem("the port must be 1-65535", "target")
        raw = self.query_one("#key", Input).value.strip()
        if not raw:
            raise FormProblem("name the private key file that logs in to the host", "key")
        key = Path(raw).expanduser()
        if not key.is_file():
            raise FormProblem(f"no key file at {key}", "key")
        return SshChoice(target, key)
