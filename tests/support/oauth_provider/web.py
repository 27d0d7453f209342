"""Flask plumbing shared by the shape routes: request building, counting, responses."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Response, request
from werkzeug.datastructures import Headers, MultiDict

from .core import CoreResponse, ShapeRequest
from .models import Token, User
from .shapes import Shape

if TYPE_CHECKING:
    from .provider import LocalOAuthProvider

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_KINDS = {"authorization_code": "code", "refresh_token": "refresh", DEVICE_GRANT: "device_poll"}

Kind = str | Callable[[], str]


def kind(value: Kind) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tag a view with what ``provider.requests`` counts it as (a name, or a function of the request)."""

    def tag(view: Callable[..., Any]) -> Callable[..., Any]:
        view.oauth_kind = value  # type: ignore[attr-defined]
        return view

    return tag


def token_kind() -> str:
    """code / refresh / device_poll, from grant_type (GitHub and Slack may omit it for codes)."""
    params = dict(request.values)
    if request.is_json:  # GitHub also takes JSON bodies
        params.update(request.get_json(silent=True) or {})
    grant = params.get("grant_type") or ("authorization_code" if "code" in params else "")
    return _KINDS.get(grant, "token")


def build(shape: Shape, params: Mapping[str, Any] | None = None, *, query: bool = False) -> ShapeRequest:
    """The core's view of the current request. ``params`` replaces the form (or the query
    string when ``query``) with the shape's translation of it."""
    args = MultiDict(request.args)
    form = MultiDict(request.form)
    if params is not None:
        if query:
            args = MultiDict(params)
        else:
            form = MultiDict(params)
    return ShapeRequest(shape, request.method, request.url, Headers(request.headers), args, form)


def authorize(p: LocalOAuthProvider, req: ShapeRequest) -> CoreResponse:
    """The user (``p.user``) is already logged in and does what ``p.consent`` says."""
    with p.store.lock:
        return p.core.authorize(req, User(p.user), p.consent == "approve")


def token(p: LocalOAuthProvider, req: ShapeRequest) -> CoreResponse:
    if req.payload.grant_type == "refresh_token" and p.refresh_delay > 0:
        time.sleep(p.refresh_delay)  # outside the lock: concurrent refreshes really overlap
    if req.payload.grant_type == "refresh_token" and p.refresh_barrier is not None:
        p.refresh_barrier.wait(timeout=10)
    with p.store.lock:
        return p.core.token(req)


def authorize_page(result: CoreResponse) -> Response:
    """A redirect back to the client, or the error page a browser would show."""
    if result.location:
        return Response("", status=302, headers={"Location": result.location})
    return json_response(result.body, result.status)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    out = Response(json.dumps(body), status=status, content_type="application/json")
    out.headers["Cache-Control"] = "no-store"
    out.headers.update(dict(headers or {}))
    return out


def form_response(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(urlencode({k: v for k, v in body.items() if v is not None}), status=status,
                    content_type="application/x-www-form-urlencoded; charset=utf-8")


def page(title: str, text: str, status: int = 200) -> Response:
    body = f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body><p>{html.escape(text)}</p></body></html>"
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def bearer() -> str | None:
    """The token of ``Authorization: Bearer X`` (or GitHub's ``token X``)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token"):
        return None
    return value.strip() or None


def check_access(p: LocalOAuthProvider, shape: Shape, value: str | None) -> tuple[Token | None, str]:
    """The live token behind an access token string, or why there is none."""
    if not value:
        return None, "missing"
    with p.store.lock:
        found = p.store.by_access(value, shape.name)
        if found is None:
            return None, "unknown"
        if found.access_revoked:
            return None, "revoked"
        if found.is_expired():
            return None, "expired"
        return found, "ok"


def verify_page(p: LocalOAuthProvider, shape: Shape) -> Response:
    """The device flow's verification page: with ?user_code= the logged-in user acts
    according to ``p.consent`` at once, as the authorize endpoint does."""
    user_code = request.values.get("user_code", "").strip()
    if not user_code:
        form = '<form method="get"><input name="user_code"><button>Continue</button></form>'
        return Response(f"<!doctype html><html><body>{form}</body></html>", content_type="text/html; charset=utf-8")
    approve = p.consent == "approve"
    try:
        p.decide_device(user_code, approve, shape.name)
    except KeyError:
        return page("Device login", "That code is not valid or has expired.", 404)
    return page("Device login", "Device connected." if approve else "Access denied.")
