"""``tbx audit ...``: read, verify and export the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from console.audit import printable, printable_text
from console.cli.base import CliState, emit_json, fail, json_option, pass_state, print_table
from console.errors import UsageError
from console.services.grants import parse_duration


def parse_since(text: str) -> str:
    """A duration back from now (``2h``) or an ISO date/time; returns an audit timestamp."""
    try:
        moment = datetime.now(UTC) - parse_duration(text)
    except UsageError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"bad --since {text!r}: use a duration like 2h or 7d, or a date like 2026-11-01") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def register(cli: click.Group) -> None:
    @cli.group()
    def audit() -> None:
        """The tamper-evident record of every change and every gateway decision."""

    @audit.command("list")
    @click.option("--agent", help="Only records about this agent.")
    @click.option("--since", help="Only records since a duration ago (2h) or a date.")
    @click.option("--action", help="Only this action, or an area prefix (grant, agent).")
    @click.option("--decision", type=click.Choice(["ok", "allow", "deny", "error"]))
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="The most recent N.")
    @json_option
    @pass_state
    def list_(state: CliState, agent: str | None, since: str | None, action: str | None,
              decision: str | None, limit: int, as_json: bool) -> None:
        """List audit records, oldest first.

        Records are shown as read, with control and invisible characters escaped: a record
        edited by hand (``tbx audit verify`` says which) cannot drive the terminal.
        """
        ws = state.workspace()
        cutoff = parse_since(since) if since else None
        selected = [
            r for r in ws.audit.records()
            if (agent is None or r.get("agent") == agent)
            and (cutoff is None or str(r.get("ts", "")) >= cutoff)
            and (action is None or r.get("action") == action or str(r.get("action", "")).startswith(action + "."))
            and (decision is None or r.get("decision") == decision)
        ][-limit:]
        if as_json:
            emit_json([printable(r) for r in selected])
            return
        print_table(
            ["SEQ", "TIME (UTC)", "ACTOR", "ACTION", "TARGET", "DECISION"],
            [[printable_text(r.get("seq"), 20), printable_text(str(r.get("ts", ""))[:19].replace("T", " "), 19)]
             + [printable_text(r.get(name), 120) for name in ("actor", "action", "target", "decision")]
             for r in selected],
            empty="no audit records match",
        )

    @audit.command()
    @json_option
    @pass_state
    def verify(state: CliState, as_json: bool) -> None:
        """Check the whole chain, the vault's checkpoint and the head anchor; exit 1 at the first bad record."""
        ws = state.workspace()
        checkpoint = ws.audit_checkpoint
        result = ws.audit.verify(checkpoint)
        if as_json:
            emit_json({"ok": result.ok, "records": result.records, "message": result.message,
                       "bad_record": result.bad_seq, "checkpoint": checkpoint.to_json() if checkpoint else None,
                       "anchor": result.anchor_seq})
            if not result.ok:
                raise SystemExit(1)
            return
        if not result.ok:
            fail(f"audit log {ws.paths.audit_log} is broken at {result.message}")
        at = f"; checkpoint at record {checkpoint.seq}" if checkpoint else ""
        anchored = f"; head anchor at record {result.anchor_seq}" if result.anchor_seq else "; no head anchor"
        click.echo(f"ok: {result.message}{at}{anchored}")

    @audit.command()
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @pass_state
    def export(state: CliState, file: Path) -> None:
        """Copy the log to FILE (JSON lines), after verifying it."""
        ws = state.workspace()
        result = ws.audit.verify(ws.audit_checkpoint)
        count = ws.audit.export(file)
        click.echo(f"exported {count} records to {file}")
        if not result.ok:
            click.echo(f"warning: the chain is broken at {result.message}", err=True)
