"""JSON-RPC pieces the gateway handles as bytes, to keep tool results undecoded."""

from __future__ import annotations

import json
import re
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_UNAVAILABLE = -32000
"""Implementation-defined: the upstream server is down, restarting or did not answer."""
CALL_BLOCKED = -32001
"""Implementation-defined: the call was refused by a content rule (a secret in the arguments)."""

JsonId = str | int | None


def dumps(value: Any) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed from a request: escape it, still valid JSON
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def error(request_id: JsonId, code: int, message: str, data: Any = None) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return dumps({"jsonrpc": "2.0", "id": request_id, "error": body})


def result(request_id: JsonId, value: Any) -> bytes:
    return dumps({"jsonrpc": "2.0", "id": request_id, "result": value})


def notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return dumps(message)


def splice_id(line: bytes, span: tuple[int, int], request_id: JsonId) -> bytes:
    """Replace the id value at ``span`` (the upstream's id literal) with the agent's id."""
    literal = str(request_id).encode() if type(request_id) is int else dumps(request_id)
    return b"".join((line[: span[0]], literal, line[span[1] :]))


def is_valid_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def lone_surrogate(body: bytes, message: Any) -> bool:
    """Whether the decoded ``message`` holds a lone UTF-16 surrogate (only a ``\\uD8xx``
    escape in the body can produce one, so ordinary bodies cost one byte search)."""
    if not _SURROGATE_ESCAPE.search(body):
        return False
    stack = [message]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False
