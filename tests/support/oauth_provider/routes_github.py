"""GitHub (/github): form-encoded answers unless JSON is asked for, errors with HTTP 200,
comma-separated scopes, GitHub's own error names, and DELETE-based revocation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from . import web
from .core import CoreResponse, RedirectMismatch, UnknownDeviceCode, seconds
from .shapes import GITHUB
from .web import form_response, json_response, kind

if TYPE_CHECKING:
    from .provider import LocalOAuthProvider

DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"


def wants_json() -> bool:
    return "application/json" in request.headers.get("Accept", "")


def answer(body: dict[str, Any]) -> Response:
    """GitHub's token endpoints answer 200 whatever happened, in the encoding asked for."""
    return json_response(body) if wants_json() else form_response(body)


def github_params() -> MultiDict:
    """GitHub reads parameters from the query string, a form or a JSON body alike."""
    params = MultiDict(request.args)
    params.update(request.form)
    if request.is_json:
        params.update({k: str(v) for k, v in (request.get_json(silent=True) or {}).items()})
    return params


def scopes_in(value: str) -> str:
    return " ".join(value.replace(",", " ").split())


def error_name(result: CoreResponse, grant: str) -> str:
    error = result.error
    assert error is not None
    if isinstance(error, RedirectMismatch):
        return "redirect_uri_mismatch"
    if isinstance(error, UnknownDeviceCode):
        return "incorrect_device_code"
    if error.error == "invalid_client":
        return "incorrect_client_credentials"
    if error.error == "invalid_grant":
        return "bad_refresh_token" if grant == "refresh_token" else "bad_verification_code"
    return error.error


def token_body(result: CoreResponse, grant: str, refresh_ttl: float, interval: float | None) -> dict[str, Any]:
    if result.error is not None:
        body = {"error": error_name(result, grant), "error_description": result.body.get("error_description", ""),
                "error_uri": DOCS}
        if result.error.error == "slow_down" and interval is not None:
            body["interval"] = seconds(interval)  # GitHub says how long to wait now
        return body
    body = {"access_token": result.body["access_token"], "token_type": "bearer",
            "scope": ",".join(result.body.get("scope", "").split())}
    if "expires_in" in result.body:
        body["expires_in"] = result.body["expires_in"]
    if "refresh_token" in result.body:
        body["refresh_token"] = result.body["refresh_token"]
        body["refresh_token_expires_in"] = int(refresh_ttl)
    return body


def github_blueprint(p: LocalOAuthProvider) -> Blueprint:
    bp = Blueprint("github", __name__, url_prefix="/github")

    @bp.get("/login/oauth/authorize")
    @kind("authorize")
    def authorize() -> Response:
        params = MultiDict(request.args)
        params.setdefault("response_type", "code")  # GitHub's authorize URL has none
        if "scope" in params:
            params["scope"] = scopes_in(params["scope"])
        return web.authorize_page(web.authorize(p, web.build(GITHUB, params, query=True)))

    @bp.post("/login/oauth/access_token")
    @kind(web.token_kind)
    def access_token() -> Response:
        params = github_params()
        if not params.get("grant_type") and "code" in params:
            params["grant_type"] = "authorization_code"  # GitHub's code exchange omits it
        result = web.token(p, web.build(GITHUB, params))
        with p.store.lock:
            device = p.store.devices.get(params.get("device_code", ""))
        interval = device.interval if device is not None else None
        return answer(token_body(result, params.get("grant_type", ""), p.refresh_token_ttl, interval))

    @bp.post("/login/device/code")
    @kind("device_code")
    def device_code() -> Response:
        params = github_params()
        if "scope" in params:
            params["scope"] = scopes_in(params["scope"])
        with p.store.lock:
            result = p.core.device_authorization(web.build(GITHUB, params))
        if result.error is not None:
            return answer({"error": error_name(result, ""), "error_description": result.body.get("error_description", "")})
        body = dict(result.body)
        body.pop("verification_uri_complete", None)
        return answer(body)

    @bp.get("/login/device")
    @kind("device_verify")
    def verify() -> Response:
        return web.verify_page(p, GITHUB)

    @bp.get("/api/user")
    @kind("userinfo")
    def user() -> Response:
        found, _ = web.check_access(p, GITHUB, web.bearer())
        if found is None:
            return json_response({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                                  "status": "401"}, 401)
        scopes = ", ".join(found.scope.split())
        return json_response({"login": found.user.email.split("@")[0], "id": 1}, headers={"X-OAuth-Scopes": scopes})

    @bp.delete("/api/applications/<client_id>/token")
    @kind("revoke")
    def revoke(client_id: str) -> Response:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username != client_id:
            return json_response({"message": "Requires authentication"}, 401)
        value = str((request.get_json(silent=True) or {}).get("access_token", ""))
        with p.store.lock:
            found = p.store.by_access(value, GITHUB.name)
            result = p.core.revoke(web.build(GITHUB, {"token": value}))
        if result.error is not None:
            return json_response({"message": "Requires authentication"}, 401)
        if found is None or found.client_id != client_id:
            return json_response({"message": "Not Found"}, 404)
        return Response(status=204)

    return bp
