"""Generic OIDC (/oidc) and Google (/google): RFC 6749 JSON with Google's few quirks."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from . import web
from .shapes import GOOGLE, OIDC
from .web import json_response, kind

if TYPE_CHECKING:
    from .provider import LocalOAuthProvider

GRANT_TYPES = ["authorization_code", "refresh_token", web.DEVICE_GRANT]
#: Google answers device polling with these statuses instead of 400 (its documented behaviour).
GOOGLE_POLL_STATUS = {"authorization_pending": 428, "slow_down": 403, "access_denied": 403}


def subject(email: str) -> str:
    """A stable opaque ``sub`` for an account."""
    return hashlib.sha256(email.encode()).hexdigest()[:20]


def unauthorized(reason: str) -> Response:
    return json_response({"error": "invalid_token", "error_description": f"Access token {reason}."}, 401,
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def oidc_blueprint(p: LocalOAuthProvider) -> Blueprint:
    bp = Blueprint("oidc", __name__, url_prefix="/oidc")

    @bp.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        issuer = p.base + "/oidc"
        return json_response({
            "issuer": issuer,
            "authorization_endpoint": issuer + "/authorize",
            "token_endpoint": issuer + "/token",
            "revocation_endpoint": issuer + "/revoke",
            "device_authorization_endpoint": issuer + "/device",
            "userinfo_endpoint": issuer + "/userinfo",
            "jwks_uri": issuer + "/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": GRANT_TYPES,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": p.oidc_auth_methods,
            "revocation_endpoint_auth_methods_supported": p.oidc_auth_methods,
            "scopes_supported": p.oidc_scopes,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })

    @bp.get("/jwks")
    def jwks() -> Response:
        return json_response(p.core.signer.jwks())

    @bp.route("/authorize", methods=["GET", "POST"])
    @kind("authorize")
    def authorize() -> Response:
        return web.authorize_page(web.authorize(p, web.build(OIDC)))

    @bp.post("/token")
    @kind(web.token_kind)
    def token() -> Response:
        result = web.token(p, web.build(OIDC))
        return json_response(result.body, result.status, dict(result.headers))

    @bp.post("/revoke")
    @kind("revoke")
    def revoke() -> Response:
        with p.store.lock:
            result = p.core.revoke(web.build(OIDC))
        return json_response(result.body, result.status, dict(result.headers))

    @bp.post("/device")
    @kind("device_code")
    def device() -> Response:
        with p.store.lock:
            result = p.core.device_authorization(web.build(OIDC))
        return json_response(result.body, result.status, dict(result.headers))

    @bp.get("/device/verify")
    @kind("device_verify")
    def verify() -> Response:
        return web.verify_page(p, OIDC)

    @bp.route("/userinfo", methods=["GET", "POST"])
    @kind("userinfo")
    def userinfo() -> Response:
        found, reason = web.check_access(p, OIDC, web.bearer())
        if found is None:
            return unauthorized(reason)
        email = found.user.email
        return json_response({"sub": subject(email), "email": email, "email_verified": True})

    return bp


def google_blueprint(p: LocalOAuthProvider) -> Blueprint:
    bp = Blueprint("google", __name__, url_prefix="/google")

    @bp.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        root = p.base + "/google"
        return json_response({
            "issuer": root,
            "authorization_endpoint": root + "/o/oauth2/v2/auth",
            "device_authorization_endpoint": root + "/device/code",
            "token_endpoint": root + "/token",
            "userinfo_endpoint": root + "/v1/userinfo",
            "revocation_endpoint": root + "/revoke",
            "jwks_uri": root + "/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": GRANT_TYPES,
        })

    @bp.get("/oauth2/v3/certs")
    def certs() -> Response:
        return json_response({"keys": []})

    @bp.get("/o/oauth2/v2/auth")
    @kind("authorize")
    def authorize() -> Response:
        return web.authorize_page(web.authorize(p, web.build(GOOGLE)))

    @bp.post("/token")
    @kind(web.token_kind)
    def token() -> Response:
        result = web.token(p, web.build(GOOGLE))
        status = result.status
        if result.error is not None:
            status = GOOGLE_POLL_STATUS.get(result.error.error, status)
        return json_response(result.body, status, dict(result.headers))

    @bp.post("/revoke")
    @kind("revoke")
    def revoke() -> Response:
        # Google takes the token alone, in the form or the query string, with no client auth.
        req = web.build(GOOGLE, {"token": request.values.get("token", "")})
        with p.store.lock:
            result = p.core.revoke(req, by_token=True)
        if result.error is not None:
            return json_response({"error": "invalid_token", "error_description": "Token expired or revoked"}, 400)
        return json_response({})

    @bp.post("/device/code")
    @kind("device_code")
    def device() -> Response:
        with p.store.lock:
            result = p.core.device_authorization(web.build(GOOGLE))
        body: dict[str, Any] = dict(result.body)
        if result.error is None:
            # Google's field is verification_url, and it has no verification_uri_complete.
            body["verification_url"] = body.pop("verification_uri")
            body.pop("verification_uri_complete", None)
        return json_response(body, result.status)

    @bp.get("/device")
    @kind("device_verify")
    def verify() -> Response:
        return web.verify_page(p, GOOGLE)

    @bp.get("/v1/userinfo")
    @kind("userinfo")
    def userinfo() -> Response:
        found, reason = web.check_access(p, GOOGLE, web.bearer())
        if found is None:
            return json_response({"error": {"code": 401, "message": f"Access token {reason}.",
                                            "status": "UNAUTHENTICATED"}}, 401,
                                 {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
        email = found.user.email
        return json_response({"sub": subject(email), "email": email, "email_verified": True})

    return bp
