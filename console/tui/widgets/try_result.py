"""What a Try call brought back: the result as a person reads it, and the raw exchange."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.json import JSON
from rich.rule import Rule
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from console.tui.widgets.tabs import SteppedTabs
from textual.widgets import Static, TabbedContent, TabPane

from console.tui.widgets.try_call import TryOutcome

RAW_LIMIT = 32 * 1024
"""Bytes of one message shown in the raw exchange; the rest is counted, not shown."""


def _size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data) * 3 // 4


def _json_or_text(text: str) -> RenderableType:
    try:
        parsed = json.loads(text)
    except ValueError:
        return Text(text)
    if isinstance(parsed, dict | list):
        return JSON(json.dumps(parsed, ensure_ascii=False), indent=2)
    return Text(text)


def content_block(block: dict[str, Any]) -> RenderableType:
    """One content block of a tool result."""
    kind = block.get("type")
    if kind == "text":
        return _json_or_text(str(block.get("text", "")))
    if kind in ("image", "audio"):
        return Text(f"[{kind}: {block.get('mimeType', '?')}, {_size(str(block.get('data', ''))):,} bytes]",
                    style="italic")
    if kind == "resource_link":
        name = f" {block['name']}" if block.get("name") else ""
        return Text(f"[resource link: {block.get('uri')}{name}]", style="italic")
    if kind == "resource":
        resource = block.get("resource") or {}
        head = Text(f"[embedded resource: {resource.get('uri')} ({resource.get('mimeType', '?')})]", style="italic")
        if "text" in resource:
            return Group(head, _json_or_text(str(resource["text"])))
        return Group(head, Text(f"[{_size(str(resource.get('blob', ''))):,} bytes of binary]", style="italic"))
    return Text(f"[{kind} content]", style="italic")


class ResultView(SteppedTabs, Vertical):
    """Two tabs: Result (text as text, JSON pretty, binaries as a note) and Raw exchange
    (the JSON-RPC bodies exactly as they crossed the wire)."""

    TAB_IDS = ("result-tab", "raw-tab")

    DEFAULT_CSS = """
    ResultView { height: 1fr; }
    ResultView TabbedContent { height: 1fr; }
    ResultView TabPane { padding: 0 1; height: 1fr; }
    ResultView VerticalScroll { height: 1fr; }
    ResultView .verdict { height: auto; margin-bottom: 1; text-style: bold; }
    ResultView .verdict.-ok { color: $success; }
    ResultView .verdict.-bad { color: $background; background: $error; padding: 0 1; }
    ResultView .verdict.-idle { color: $text-muted; text-style: none; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcome: TryOutcome | None = None

    def compose(self) -> ComposeResult:
        with TabbedContent():
            with TabPane("Result", id="result-tab"), VerticalScroll():
                yield Static("nothing run yet: fill in the arguments, then Run",
                             id="verdict", classes="verdict -idle")
                yield Static("", id="result-body")
            with TabPane("Raw exchange", id="raw-tab"), VerticalScroll():
                yield Static(Text("the JSON-RPC messages of the last call appear here", style="dim"), id="exchange")

    def clear(self, text: str) -> None:
        """No outcome: ``text`` where the verdict goes, nothing in the result or the exchange."""
        self.outcome = None
        if not self.query("#verdict"):
            # TabbedContent mounts its panes after this widget: a screen made ahead of its
            # first visit (console/tui/warmup.py) can fill its form before they exist.
            self.call_after_refresh(self._clear_once_mounted, text)
            return
        self.show_running(text)
        self.query_one("#result-body", Static).update("")
        self.query_one("#exchange", Static).update(Text("the JSON-RPC messages of the last call appear here",
                                                        style="dim"))

    def _clear_once_mounted(self, text: str) -> None:
        if self.outcome is None:  # nothing was shown meanwhile
            self.clear(text)

    def show_running(self, text: str) -> None:
        status = self.query_one("#verdict", Static)
        status.set_classes("verdict -idle")
        status.update(text)

    def show(self, outcome: TryOutcome) -> None:
        self.outcome = outcome
        status = self.query_one("#verdict", Static)
        took = f"{outcome.elapsed_ms:,.1f} ms"
        parts: list[RenderableType] = []
        if outcome.result is None:
            status.set_classes("verdict -bad")
            status.update(Text(f"✗ REFUSED {outcome.via}: {outcome.refusal}"))
        elif outcome.result.get("isError"):
            status.set_classes("verdict -bad")
            status.update(Text(f"✗ isError: the tool reported an error · {outcome.target} {outcome.via} · {took}"))
        else:
            status.set_classes("verdict -ok")
            status.update(Text(f"✓ {outcome.target} {outcome.via} · {took}"))
        if outcome.result is not None:
            blocks = outcome.result.get("content") or []
            parts += [content_block(block) for block in blocks]
            if not blocks:
                parts.append(Text("no content blocks", style="dim"))
            structured = outcome.result.get("structuredContent")
            if structured is not None:
                parts += [Text(""), Rule("structuredContent", style="dim", align="left"),
                          JSON(json.dumps(structured, ensure_ascii=False), indent=2)]
        self.query_one("#result-body", Static).update(Group(*parts))
        self.query_one("#exchange", Static).update(self._raw(outcome))

    @staticmethod
    def _raw(outcome: TryOutcome) -> RenderableType:
        if not outcome.exchange:
            return Text("nothing crossed the wire (the call failed before it was sent)", style="dim")
        where = "attach stream (stdio)" if outcome.caller == "@owner" else "HTTP bodies to the gateway"
        parts: list[RenderableType] = [Text(f"{len(outcome.exchange)} messages · {where} · exact bytes", style="dim")]
        highlight = JSONHighlighter()
        for item in outcome.exchange:
            body = item.body[:RAW_LIMIT].decode("utf-8", "replace").rstrip("\n")
            sent = item.direction == "sent"
            head = Text("→ sent · " if sent else "← received · ", style="bold cyan" if sent else "bold green")
            head.append(f"{len(item.body):,} bytes", style="dim")
            parts += [Text(""), head, highlight(Text(body or "(empty body)"))]
            if len(item.body) > RAW_LIMIT:
                parts.append(Text(f"… {len(item.body) - RAW_LIMIT:,} more bytes not shown", style="dim"))
        return Group(*parts)

