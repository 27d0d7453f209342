"""Is a request's ``params`` valid for its method (MCP 2025-11-25 schema)?

Checked before anything reaches a server, so a server only ever sees requests of the
shape the specification promises it: a hostile agent cannot probe a server's parser
with a ``name`` that is a list or ``arguments`` that are a string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOG_LEVELS = frozenset({"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"})
MAX_NAME = 512
"""Longer tool or prompt names than any server offers: refused before any look-up."""

Rule = Callable[[dict[str, Any]], str | None]


def _string(params: dict[str, Any], key: str, *, required: bool = True, limit: int = MAX_NAME) -> str | None:
    if key not in params:
        return f"params.{key} is required" if required else None
    value = params[key]
    if not isinstance(value, str) or not value:
        return f"params.{key} must be a non-empty string"
    if len(value) > limit:
        return f"params.{key} is longer than {limit} characters"
    return None


def _object(params: dict[str, Any], key: str) -> str | None:
    if key in params and params[key] is not None and not isinstance(params[key], dict):
        return f"params.{key} must be an object"
    return None


def _first(*problems: str | None) -> str | None:
    return next((p for p in problems if p), None)


def _meta(params: dict[str, Any]) -> str | None:
    problem = _object(params, "_meta")
    meta = params.get("_meta")
    if problem is None and isinstance(meta, dict) and "progressToken" in meta:
        token = meta["progressToken"]
        if isinstance(token, bool) or not isinstance(token, str | int):
            return "params._meta.progressToken must be a string or an integer"
        if isinstance(token, str) and len(token) > MAX_NAME:
            return f"params._meta.progressToken is longer than {MAX_NAME} characters"
    return problem


def _listing(params: dict[str, Any]) -> str | None:
    return _first(_string(params, "cursor", required=False, limit=4096), _meta(params))


def _tool_call(params: dict[str, Any]) -> str | None:
    return _first(_string(params, "name"), _object(params, "arguments"), _meta(params))


def _prompt_get(params: dict[str, Any]) -> str | None:
    problem = _first(_string(params, "name"), _object(params, "arguments"), _meta(params))
    arguments = params.get("arguments")
    if problem is None and isinstance(arguments, dict) and not all(isinstance(v, str) for v in arguments.values()):
        return "params.arguments of a prompt must map names to strings"
    return problem


def _resource_read(params: dict[str, Any]) -> str | None:
    return _first(_string(params, "uri", limit=8192), _meta(params))


def _completion(params: dict[str, Any]) -> str | None:
    ref, argument = params.get("ref"), params.get("argument")
    if not isinstance(ref, dict) or ref.get("type") not in ("ref/prompt", "ref/resource"):
        return "params.ref must be an object of type ref/prompt or ref/resource"
    key = "name" if ref["type"] == "ref/prompt" else "uri"
    if _string(ref, key, limit=8192):
        return f"params.ref.{key} must be a non-empty string"
    if not isinstance(argument, dict) or not isinstance(argument.get("name"), str) \
            or not isinstance(argument.get("value"), str):
        return "params.argument must be an object with string name and value"
    return _first(_object(params, "context"), _meta(params))


def _set_level(params: dict[str, Any]) -> str | None:
    if params.get("level") not in LOG_LEVELS:
        return f"params.level must be one of {', '.join(sorted(LOG_LEVELS))}"
    return _meta(params)


def _initialize(params: dict[str, Any]) -> str | None:
    return _first(_string(params, "protocolVersion", required=False, limit=64),
                  _object(params, "capabilities"), _object(params, "clientInfo"), _meta(params))


RULES: dict[str, Rule] = {
    "initialize": _initialize,
    "ping": _meta,
    "tools/list": _listing,
    "prompts/list": _listing,
    "resources/list": _listing,
    "resources/templates/list": _listing,
    "tools/call": _tool_call,
    "prompts/get": _prompt_get,
    "resources/read": _resource_read,
    "completion/complete": _completion,
    "logging/setLevel": _set_level,
    "resources/subscribe": _resource_read,
    "resources/unsubscribe": _resource_read,
}


def problem(method: str, params: dict[str, Any]) -> str | None:
    """What is wrong with ``params`` for ``method``, or None when it is valid."""
    rule = RULES.get(method)
    return rule(params) if rule is not None else None
