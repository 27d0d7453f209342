"""``tbx approvals``: calls held for the owner by ask grants, and the owner's decisions."""

from __future__ import annotations

import json
from typing import Any

import click

from console.cli.base import CliState, emit_json, json_option, pass_state, print_table
from console.errors import UsageError
from console.services.grants import parse_duration


def _shown(pending: dict[str, Any]) -> str:
    arguments = json.dumps(pending["arguments"], indent=2, ensure_ascii=False)
    lines = [f"{pending['id']}  {pending['agent']} wants {pending['target']} "
             f"(waiting {pending['waited']:.0f}s)",
             f"  {pending['description'][:300]}" if pending["description"] else "",
             "  arguments: " + arguments.replace("\n", "\n  "), f"  sha256: {pending['sha256']}"]
    return "\n".join(line for line in lines if line)


def _minutes(duration: str | None) -> float | None:
    return parse_duration(duration).total_seconds() / 60 if duration else None


def register(cli: click.Group) -> None:
    from console.gateway.approvals_client import ApprovalFailed, find
    from console.gateway.remote_approvals import reached

    @cli.group()
    def approvals() -> None:
        """Calls that wait for the owner (ask grants): list, allow, deny, watch."""

    toolbox_option = click.option("--toolbox", help="Only this toolbox's gateway (default: every one running here, "
                                                    "and every remote toolbox's, over SSH).")

    def warn(line: str) -> None:
        click.echo(f"warning: {line}", err=True)

    @approvals.command("list")
    @toolbox_option
    @json_option
    @pass_state
    def list_(state: CliState, toolbox: str | None, as_json: bool) -> None:
        """The calls waiting for a decision, oldest first."""
        unasked: list[str] = []
        held: list[dict[str, Any]] = []
        with reached(state.workspace(), toolbox, unreachable=unasked.append) as found:
            for gateway in found:
                try:
                    held += gateway.pending()[1]
                except ApprovalFailed as failed:  # one toolbox's gateway does not answer: the others' calls still show
                    unasked.append(str(failed))
        if as_json:
            emit_json(held)
            for line in unasked:
                warn(line)
            return
        if not found and not unasked:
            click.echo("no gateway is running here, so no call is waiting ('tbx gateway serve' starts one)")
            return
        print_table(["ID", "AGENT", "CALL", "WAITING", "SHA256"],
                    [(c["id"], c["agent"], c["target"], f"{c['waited']:.0f}s", c["sha256"][:12]) for c in held],
                    empty="no call is waiting")
        for line in unasked:  # part of the answer: these toolboxes' calls are not in the table
            click.echo(f"not asked: {line}")

    @approvals.command("allow")
    @click.argument("approval_id", metavar="ID")
    @click.option("--for", "duration", metavar="DURATION",
                  help="Also let the agent call this item without asking for a while, e.g. 15m.")
    @click.option("--sha256", help="The arguments' hash as you saw it: refused if the call is another.")
    @toolbox_option
    @pass_state
    def allow(state: CliState, approval_id: str, duration: str | None, sha256: str | None,
              toolbox: str | None) -> None:
        """Let one held call through (the exact arguments shown)."""
        minutes = _minutes(duration)
        with reached(state.workspace(), toolbox, unreachable=warn) as found:
            gateway, pending = find(found, approval_id)
            click.echo(_shown(pending))
            outcome = gateway.decide(approval_id, sha256 or pending["sha256"], allow=True, minutes=minutes)
        click.echo(f"{outcome}: {pending['target']} for {pending['agent']}" + (f" (and for {duration})" if duration
                                                                               else ""))

    @approvals.command("deny")
    @click.argument("approval_id", metavar="ID")
    @click.option("--always", is_flag=True, help="Also deny this agent this item from now on.")
    @click.option("--sha256", help="The arguments' hash as you saw it: refused if the call is another.")
    @toolbox_option
    @pass_state
    def deny(state: CliState, approval_id: str, always: bool, sha256: str | None, toolbox: str | None) -> None:
        """Refuse one held call."""
        with reached(state.workspace(), toolbox, unreachable=warn) as found:
            gateway, pending = find(found, approval_id)
            outcome = gateway.decide(approval_id, sha256 or pending["sha256"], allow=False, always=always)
        click.echo(f"{outcome}: {pending['target']} for {pending['agent']}")

    @approvals.command("watch")
    @toolbox_option
    @click.option("--wait", type=click.FloatRange(min=1, max=30), default=25.0, hidden=True)
    @pass_state
    def watch(state: CliState, toolbox: str | None, wait: float) -> None:
        """Ask about each call as it is held: [a]llow, [d]eny, allow [f]or a while, [n]ever (always deny),
        [s]kip. Ctrl+C stops."""
        with reached(state.workspace(), toolbox, unreachable=warn) as found:
            if not found:
                raise UsageError("no gateway is running here ('tbx gateway serve' starts one)")
            if len(found) > 1:
                raise UsageError(f"gateways of {', '.join(g.toolbox for g in found)} hold calls: pass --toolbox")
            _watch(found[0], wait)


def _watch(gateway: Any, wait: float) -> None:
    version, asked = -1, set()
    click.echo(f"watching the gateway of {gateway.toolbox}; Ctrl+C stops", err=True)
    while True:
        version, held = gateway.pending(version, wait)
        for pending in held:
            if pending["id"] in asked:
                continue
            asked.add(pending["id"])
            _ask(gateway, pending)
        asked &= {p["id"] for p in held}


def _ask(gateway: Any, pending: dict[str, Any]) -> None:
    from console.gateway.approvals_client import ApprovalFailed

    click.echo(_shown(pending))
    choice = click.prompt("  [a]llow, [d]eny, allow [f]or a while, [n]ever, [s]kip",
                          type=click.Choice(["a", "d", "f", "n", "s"]), show_choices=False)
    try:
        if choice == "a":
            outcome = gateway.decide(pending["id"], pending["sha256"], allow=True)
        elif choice == "f":
            minutes = _minutes(click.prompt("  for how long (e.g. 15m, 1h)", default="15m"))
            outcome = gateway.decide(pending["id"], pending["sha256"], allow=True, minutes=minutes)
        elif choice in ("d", "n"):
            outcome = gateway.decide(pending["id"], pending["sha256"], allow=False, always=choice == "n")
        else:
            return
    except ApprovalFailed as failed:
        click.echo(f"  not applied: {failed}", err=True)
        return
    click.echo(f"  {outcome}")
