"""Slack (/slack): user scopes in ``user_scope``, HTTP 200 with ``ok`` for every Web API
answer, the user token nested under ``authed_user``, no PKCE and no device flow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from . import web
from .core import CoreResponse, RedirectMismatch
from .shapes import SLACK
from .web import json_response, kind

if TYPE_CHECKING:
    from .provider import LocalOAuthProvider

TEAM = {"id": "T1", "name": "Example"}


def error_name(result: CoreResponse, grant: str) -> str:
    error = result.error
    assert error is not None
    if isinstance(error, RedirectMismatch):
        return "bad_redirect_uri"
    return {
        "invalid_grant": "invalid_refresh_token" if grant == "refresh_token" else "invalid_code",
        "invalid_client": "bad_client_secret" if "does not exist" not in str(error.description) else "invalid_client_id",
        "unsupported_grant_type": "invalid_grant_type",
        "invalid_request": "invalid_arguments",
        "unauthorized_client": "invalid_client_id",
    }.get(error.error, error.error)


def access_body(result: CoreResponse) -> dict[str, Any]:
    token = result.body
    user: dict[str, Any] = {
        "id": "U1",
        "scope": ",".join(token.get("scope", "").split()),
        "access_token": token["access_token"],
        "token_type": "user",
    }
    if "refresh_token" in token:  # only with token rotation on
        user["refresh_token"] = token["refresh_token"]
    if "expires_in" in token:
        user["expires_in"] = token["expires_in"]
    return {"ok": True, "app_id": "A1", "authed_user": user, "team": TEAM, "enterprise": None,
            "is_enterprise_install": False}


def token_param() -> str:
    """Slack's Web API takes the token as ``Authorization: Bearer`` or a ``token`` parameter."""
    return web.bearer() or request.values.get("token", "")


def slack_blueprint(p: LocalOAuthProvider) -> Blueprint:
    bp = Blueprint("slack", __name__, url_prefix="/slack")

    @bp.get("/oauth/v2/authorize")
    @kind("authorize")
    def authorize() -> Response:
        # ``scope`` is for bot scopes, which this provider does not grant; the user's
        # scopes come comma-separated in ``user_scope``.
        params = MultiDict(request.args)
        params.pop("scope", None)
        params["response_type"] = "code"
        if "user_scope" in params:
            params["scope"] = " ".join(params.pop("user_scope").replace(",", " ").split())
        return web.authorize_page(web.authorize(p, web.build(SLACK, params, query=True)))

    @bp.post("/api/oauth.v2.access")
    @kind(web.token_kind)
    def access() -> Response:
        params = MultiDict(request.form)
        params.setdefault("grant_type", "authorization_code")
        result = web.token(p, web.build(SLACK, params))
        if result.error is not None:
            return json_response({"ok": False, "error": error_name(result, params["grant_type"])})
        return json_response(access_body(result))

    @bp.post("/api/auth.revoke")
    @kind("revoke")
    def revoke() -> Response:
        with p.store.lock:
            result = p.core.revoke(web.build(SLACK, {"token": token_param()}), by_token=True)
        if result.error is not None:
            return json_response({"ok": False, "error": "invalid_auth"})
        return json_response({"ok": True, "revoked": True})

    @bp.route("/api/auth.test", methods=["GET", "POST"])
    @kind("userinfo")
    def auth_test() -> Response:
        found, reason = web.check_access(p, SLACK, token_param())
        if found is None:
            error = {"revoked": "token_revoked", "expired": "token_expired", "missing": "not_authed"}
            return json_response({"ok": False, "error": error.get(reason, "invalid_auth")})
        name = found.user.email.split("@")[0]
        return json_response({"ok": True, "url": "https://example.slack.com/", "team": TEAM["name"], "user": name,
                              "team_id": TEAM["id"], "user_id": "U1"})

    return bp
