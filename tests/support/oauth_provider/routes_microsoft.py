"""Microsoft Entra ID v2.0 (/microsoft/{tenant}) and the Graph /me endpoint.

No revocation endpoint exists at Entra, so there is none here either.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response

from . import web
from .core import CoreResponse
from .routes_oidc import GRANT_TYPES, subject
from .shapes import MICROSOFT
from .web import json_response, kind

if TYPE_CHECKING:
    from .provider import LocalOAuthProvider

#: The AADSTS numbers Entra puts in front of its error descriptions.
AADSTS = {
    "invalid_grant": 70000,
    "invalid_client": 7000215,
    "invalid_request": 900144,
    "invalid_scope": 70011,
    "unauthorized_client": 700016,
    "unsupported_grant_type": 70003,
    "authorization_pending": 70016,
    "slow_down": 70016,
    "expired_token": 70020,
    "access_denied": 70019,
}


def account_id(email: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + email))


def entra_body(result: CoreResponse) -> dict[str, Any]:
    body: dict[str, Any] = dict(result.body)
    if result.error is None:
        if "expires_in" in body:
            body["ext_expires_in"] = body["expires_in"]
        return body
    code = AADSTS.get(body["error"], 50000)
    body["error_description"] = f"AADSTS{code}: {body.get('error_description') or body['error']}"
    body.update(
        error_codes=[code],
        timestamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        trace_id=str(uuid.uuid4()),
        correlation_id=str(uuid.uuid4()),
    )
    return body


def microsoft_blueprint(p: LocalOAuthProvider) -> Blueprint:
    bp = Blueprint("microsoft", __name__, url_prefix="/microsoft")

    @bp.get("/<tenant>/v2.0/.well-known/openid-configuration")
    def discovery(tenant: str) -> Response:
        root = f"{p.base}/microsoft/{tenant}"
        return json_response({
            "issuer": root + "/v2.0",
            "authorization_endpoint": root + "/oauth2/v2.0/authorize",
            "token_endpoint": root + "/oauth2/v2.0/token",
            "device_authorization_endpoint": root + "/oauth2/v2.0/devicecode",
            "userinfo_endpoint": p.base + "/microsoft/graph/oidc/userinfo",
            "jwks_uri": root + "/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": GRANT_TYPES,
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        })

    @bp.get("/<tenant>/discovery/v2.0/keys")
    def keys(tenant: str) -> Response:
        return json_response({"keys": []})

    @bp.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
    @kind("authorize")
    def authorize(tenant: str) -> Response:
        return web.authorize_page(web.authorize(p, web.build(MICROSOFT)))

    @bp.post("/<tenant>/oauth2/v2.0/token")
    @kind(web.token_kind)
    def token(tenant: str) -> Response:
        result = web.token(p, web.build(MICROSOFT))
        return json_response(entra_body(result), result.status)

    @bp.post("/<tenant>/oauth2/v2.0/devicecode")
    @kind("device_code")
    def device(tenant: str) -> Response:
        with p.store.lock:
            result = p.core.device_authorization(web.build(MICROSOFT))
        body = entra_body(result)
        if result.error is None:
            body.pop("verification_uri_complete", None)
            body["message"] = (f"To sign in, use a web browser to open the page {body['verification_uri']} "
                               f"and enter the code {body['user_code']} to authenticate.")
        return json_response(body, result.status)

    @bp.get("/devicelogin")
    @kind("device_verify")
    def verify() -> Response:
        return web.verify_page(p, MICROSOFT)

    def graph_error(reason: str) -> Response:
        return json_response({"error": {"code": "InvalidAuthenticationToken", "message": f"Access token {reason}."}},
                             401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    @bp.get("/graph/v1.0/me")
    @kind("userinfo")
    def me() -> Response:
        found, reason = web.check_access(p, MICROSOFT, web.bearer())
        if found is None:
            return graph_error(reason)
        email = found.user.email
        return json_response({"id": account_id(email), "userPrincipalName": email, "mail": email,
                              "displayName": email.split("@")[0]})

    @bp.route("/graph/oidc/userinfo", methods=["GET", "POST"])
    @kind("userinfo")
    def userinfo() -> Response:
        found, reason = web.check_access(p, MICROSOFT, web.bearer())
        if found is None:
            return graph_error(reason)
        return json_response({"sub": subject(found.user.email), "email": found.user.email})

    return bp
