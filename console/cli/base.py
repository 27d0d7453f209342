"""What every command shares: error handling, opening the workspace, output helpers."""

from __future__ import annotations

import getpass
import importlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click

from console.errors import TbxError, VaultLocked
from console.logsetup import record_crash
from console.paths import Paths, resolve_paths
from console.workspace import Commit, Workspace

log = logging.getLogger("console.cli")


class CommandFailed(click.ClickException):
    """A ``TbxError`` (or an unexpected failure) as click reports it: one line on stderr."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class TbxGroup(click.Group):
    """Turns our typed errors into one-line messages, tracebacks only with ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            if ctx.parent is None:
                _follow_remote_toolboxes(ctx)
            return result
        except TbxError as exc:
            if _debug(ctx):
                log.exception("command failed")
            raise CommandFailed(str(exc), exc.exit_code) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            # One line on stderr, and the traceback kept: a failure nobody expected (one
            # seen once in seven quits of the console) must be findable afterwards.
            where = record_crash(_state(ctx).paths, " ".join(filter(None, (ctx.command_path, ctx.invoked_subcommand))),
                                 exc)
            if _debug(ctx):
                raise
            said = f"its traceback is in {where}" if where else "run with --debug for the traceback"
            raise CommandFailed(f"unexpected {type(exc).__name__}: {exc} ({said})") from exc


def _follow_remote_toolboxes(ctx: click.Context) -> None:
    """A command that changed the vault (its workspace told of a commit) pushes the new
    policy to the gateways of remote toolboxes (those whose policy changed, all at once)
    before it returns, so a grant or revoke is in force there when the command ends. A
    change that takes access away and did not reach every toolbox fails the command: it
    is retried in the background."""
    state = ctx.find_root().obj
    ws = getattr(state, "_workspace", None)
    if ws is None or not state.changed:
        return
    if not any(box.is_remote for box in ws.repos.toolboxes):
        return
    from console.remote.push import describe_failure, push_changes

    report = push_changes(ws)
    if report.removal_failed:
        raise TbxError(describe_failure(report))
    if report.failed:
        click.echo(f"warning: {describe_failure(report)}", err=True)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and getattr(root.obj, "debug", False))


def _state(ctx: click.Context) -> CliState:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, CliState) else CliState()


@dataclass
class CliState:
    debug: bool = False
    paths: Paths = field(default_factory=resolve_paths)
    _workspace: Workspace | None = None
    changed: bool = False
    """The vault changed while the command ran (a commit event came): remote toolboxes follow."""

    def workspace(self) -> Workspace:
        if self._workspace is None:
            _prefetch_push(self.paths)
            return self.use(Workspace.open(self.paths, ask_passphrase))
        return self._workspace

    def use(self, ws: Workspace) -> Workspace:
        """Make ``ws`` the command's workspace, the one whose changes reach remote toolboxes."""
        self._workspace = ws
        ws.on_commit(self._committed)
        return ws

    def _committed(self, _commit: Commit) -> None:
        self.changed = True


def _prefetch_push(paths: Paths) -> None:
    """With remote toolboxes (their push state is on disk), import what pushes to them
    (asyncssh, ~0.2 s) while the vault's key is fetched or derived (Argon2id lets go of
    the interpreter): a revoke then returns that much sooner."""
    try:
        remote = any((paths.state_dir / "remote").iterdir())
    except OSError:
        return
    if remote:
        threading.Thread(target=importlib.import_module, args=("console.remote.push",), daemon=True).start()


pass_state = click.make_pass_decorator(CliState, ensure=True)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def ask_passphrase(reason: str) -> str:
    if not interactive():
        raise VaultLocked(f"{reason}: no terminal to ask on; set TBX_PASSPHRASE")
    return getpass.getpass(f"{reason}: ")


def ask_new_passphrase(what: str = "New passphrase") -> str:
    if not interactive():
        raise VaultLocked("no terminal to ask for a passphrase on; set TBX_PASSPHRASE (or TBX_NEW_PASSPHRASE)")
    while True:
        first = getpass.getpass(f"{what} (at least 8 characters): ")
        if len(first) < 8:
            click.echo("too short, try again", err=True)
            continue
        if getpass.getpass("Repeat it: ") == first:
            return first
        click.echo("the two entries differ, try again", err=True)


def confirm_or_yes(yes: bool, question: str) -> None:
    """Destructive commands ask first; scripts pass ``--yes``."""
    if yes:
        return
    if not interactive():
        raise click.UsageError("this removes data: add --yes to confirm without a prompt")
    if not click.confirm(question, default=False, err=True):
        raise click.Abort()


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "(none)") -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def fail(message: str, exit_code: int = 1) -> NoReturn:
    raise CommandFailed(message, exit_code)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)
