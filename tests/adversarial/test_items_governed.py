"""Resources, prompts and resource templates are granted like tools, default deny.

An agent granted one tool of a server must not read the server's resources or get its
prompts; nothing of a server is served while the item is pending or has changed.
"""

from __future__ import annotations

import pytest

from console.services import grants
from console.services.grants import Target
from console.services.tools import approve
from tests.gateway.conftest import Stack
from tests.support.rawmcp import RawAgent, error_of

pytestmark = pytest.mark.docker

DEFINITIONS = {
    "tools": [{"name": "echo", "description": "Echoes.", "inputSchema": {"type": "object"}}],
    "resources": [{"uri": "notes://public", "name": "public", "description": "Public notes."},
                  {"uri": "notes://private", "name": "private", "description": "Private notes."}],
    "resourceTemplates": [{"uriTemplate": "notes://day/{date}", "name": "day", "description": "A day's notes."}],
    "prompts": [{"name": "summary", "description": "Summarise notes."},
                {"name": "review", "description": "Review notes."}],
}


@pytest.fixture(scope="module")
def notes(stack: Stack) -> str:
    stack.add_shapeshifter("notes", DEFINITIONS, secrets={"LEAK_VALUE": "nothing-secret-here"})
    return "notes"


def listing(raw: RawAgent, method: str, key: str) -> list[str]:
    result = raw.request(method).json()["result"][key]
    return sorted(str(item.get("uri") or item.get("uriTemplate") or item.get("name")) for item in result)


def surface(raw: RawAgent) -> dict[str, list[str]]:
    return {"tools": listing(raw, "tools/list", "tools"), "prompts": listing(raw, "prompts/list", "prompts"),
            "resources": listing(raw, "resources/list", "resources"),
            "templates": listing(raw, "resources/templates/list", "resourceTemplates")}


def refused(response: object) -> bool:
    return "error" in response.json()  # type: ignore[attr-defined]


def test_a_tool_grant_shows_no_resources_or_prompts(stack: Stack, notes: str) -> None:
    _name, token = stack.agent("local", f"local/{notes}/echo")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert surface(raw) == {"tools": ["notes__echo"], "prompts": [], "resources": [], "templates": []}
        assert refused(raw.request("resources/read", {"uri": "notes://private"}))
        assert refused(raw.request("resources/read", {"uri": "notes://day/2026-12-06"}))
        assert refused(raw.request("prompts/get", {"name": "notes__summary"}))


def test_the_server_wildcard_covers_every_kind(stack: Stack, notes: str) -> None:
    _name, token = stack.agent("local", f"local/{notes}")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert surface(raw) == {"tools": ["notes__echo"], "prompts": ["notes__review", "notes__summary"],
                                "resources": ["notes://private", "notes://public"],
                                "templates": ["notes://day/{date}"]}
        read = raw.request("resources/read", {"uri": "notes://day/2026-12-06"}).json()
        assert read["result"]["contents"][0]["uri"] == "notes://day/2026-12-06"
        assert "result" in raw.request("prompts/get", {"name": "notes__summary"}).json()


def test_single_items_are_granted_one_by_one(stack: Stack, notes: str) -> None:
    _name, token = stack.agent("local", f"local/{notes}/resource:notes://public", f"local/{notes}/prompt:review")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert surface(raw) == {"tools": [], "prompts": ["notes__review"], "resources": ["notes://public"],
                                "templates": []}
        assert "result" in raw.request("resources/read", {"uri": "notes://public"}).json()
        assert refused(raw.request("resources/read", {"uri": "notes://private"}))
        assert refused(raw.request("resources/read", {"uri": "notes://day/x"}))
        assert "result" in raw.request("prompts/get", {"name": "notes__review"}).json()
        assert refused(raw.request("prompts/get", {"name": "notes__summary"}))
        assert refused(raw.request("tools/call", {"name": "notes__echo"}))


def test_a_template_grant_reads_only_what_the_template_expands_to(stack: Stack, notes: str) -> None:
    _name, token = stack.agent("local", f"local/{notes}/template:notes://day/{{date}}")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert "result" in raw.request("resources/read", {"uri": "notes://day/2026-12-06"}).json()
        for outside in ("notes://day/2026/../../private", "notes://day/a/b", "notes://private", "notes://week/1"):
            assert refused(raw.request("resources/read", {"uri": outside})), outside


def test_pending_items_are_not_served(stack: Stack) -> None:
    fresh = {"tools": [], "resources": [{"uri": "fresh://data", "name": "data"}],
             "prompts": [{"name": "p", "description": "A prompt."}]}
    stack.add_shapeshifter("fresh-items", fresh, secrets={"LEAK_VALUE": "nothing-secret-here"}, approve_all=False)
    _name, token = stack.agent("local", "local/fresh-items")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert surface(raw) == {"tools": [], "prompts": [], "resources": [], "templates": []}
        error = error_of(raw.request("resources/read", {"uri": "fresh://data"}))
        assert "not available" in error["message"]
        assert refused(raw.request("prompts/get", {"name": "fresh-items__p"}))
        approve(stack.ws, "local", "fresh-items")
        stack.ws.refresh()
        import time

        time.sleep(0.6)
        assert surface(raw)["resources"] == ["fresh://data"]
        assert "result" in raw.request("resources/read", {"uri": "fresh://data"}).json()


def test_revoking_the_wildcard_takes_the_items_away(stack: Stack, notes: str) -> None:
    name, token = stack.agent("local", f"local/{notes}")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert "result" in raw.request("resources/read", {"uri": "notes://public"}).json()
        grants.revoke(stack.ws, name, Target.parse(f"local/{notes}"))
        assert refused(raw.request("resources/read", {"uri": "notes://public"}))
