"""An MCP server's authorization server (/mcp-as), as the MCP authorization spec (2026-07-28) has it.

RFC 8414 metadata at the path-inserted well-known URI, client ID metadata documents
(fetched from the client's URL) and RFC 7591 registration, PKCE S256, RFC 8707 resource
indicators bound into every token (``McpSettings.audience``, what the resource server
checks), rotating refresh tokens, RFC 7009 revocation, RFC 9207 ``iss`` on redirects.
``McpSettings`` holds the knobs tests turn, including the ways a hostile server misbehaves.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.common.security import generate_token
from flask import Blueprint, Response, request

from . import web
from .models import Client
from .shapes import Shape
from .web import json_response, kind

if TYPE_CHECKING:
    from .provider import LocalOAuthProvider

MCP = Shape("mcp", "mcp-at-", "mcp-rt-", "/mcp-as/device/verify", revoke_whole_grant=True)
PREFIX = "/mcp-as"


@dataclass
class McpSettings:
    scopes: list[str] = field(default_factory=lambda: ["mcp:tools"])
    cimd: bool = True
    """Advertise and accept client ID metadata documents."""
    dcr: bool = True
    """Offer RFC 7591 registration."""
    iss: str = "correct"
    """What the redirect's ``iss`` says: correct, wrong, or omit."""
    advertise_iss: bool = True
    protected_resources: list[str] | None = None
    """Published as RFC 9728 §4 ``protected_resources`` when set."""
    registered_redirects: list[str] | None = None
    """A registration answers with these redirect URIs instead of the ones asked for."""
    echo_verifier: bool = False
    """The token endpoint answers a code exchange with the code verifier as the access token."""
    echoed: list[str] = field(default_factory=list)
    audience: dict[str, str | None] = field(default_factory=dict)
    """Access token -> the resource it was issued for."""
    code_resource: dict[str, str | None] = field(default_factory=dict)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    metadata_documents: list[str] = field(default_factory=list)
    """Client ID metadata document URLs fetched."""
    resources_asked: list[str | None] = field(default_factory=list)
    """The ``resource`` of every authorize and token request, in order."""


def issuer(p: LocalOAuthProvider) -> str:
    return p.base + PREFIX


def metadata(p: LocalOAuthProvider) -> dict[str, Any]:
    root, s = issuer(p), p.mcp
    document: dict[str, Any] = {
        "issuer": root,
        "authorization_endpoint": root + "/authorize",
        "token_endpoint": root + "/token",
        "revocation_endpoint": root + "/revoke",
        "device_authorization_endpoint": root + "/device",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", web.DEVICE_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [*s.scopes, "offline_access"],
        "client_id_metadata_document_supported": s.cimd,
        "authorization_response_iss_parameter_supported": s.advertise_iss,
    }
    if s.dcr:
        document["registration_endpoint"] = root + "/register"
    if s.protected_resources is not None:
        document["protected_resources"] = s.protected_resources
    return document


def ensure_client(p: LocalOAuthProvider, client_id: str) -> None:
    """A client id that is an https URL (or, here, a loopback one) names its metadata
    document: fetch it and accept the client if the document names itself."""
    if not p.mcp.cimd or not client_id.startswith(("https://", "http://127.0.0.1")):
        return
    with p.store.lock:
        if client_id in p.store.clients:
            return
    try:
        with urllib.request.urlopen(client_id, timeout=5) as answer:  # noqa: S310 - loopback test URL
            document = json.loads(answer.read(65536))
    except (OSError, ValueError):
        return
    p.mcp.metadata_documents.append(client_id)
    if isinstance(document, dict) and document.get("client_id") == client_id:
        p.register_client(client_id, None, p.mcp.scopes)


def with_iss(p: LocalOAuthProvider, location: str) -> str:
    if p.mcp.iss == "omit":
        return location
    value = issuer(p) if p.mcp.iss == "correct" else "http://127.0.0.1:1/another-issuer"
    return location + ("&" if "?" in location else "?") + urlencode({"iss": value})


def mcp_blueprint(p: LocalOAuthProvider) -> Blueprint:
    bp = Blueprint("mcp", __name__)

    @bp.get(f"/.well-known/oauth-authorization-server{PREFIX}")
    def discovery() -> Response:
        return json_response(metadata(p))

    @bp.post(f"{PREFIX}/register")
    @kind("register")
    def register() -> Response:
        if not p.mcp.dcr:
            return json_response({"error": "invalid_request"}, 404)
        body = request.get_json(silent=True) or {}
        redirects = body.get("redirect_uris")
        if not isinstance(redirects, list) or not redirects:
            return json_response({"error": "invalid_redirect_uri"}, 400)
        client_id = "dcr-" + generate_token(16)
        p.register_client(client_id, None, p.mcp.scopes)
        p.mcp.registrations.append(body)
        return json_response({
            "client_id": client_id, "client_name": body.get("client_name"), "token_endpoint_auth_method": "none",
            "redirect_uris": p.mcp.registered_redirects or redirects, "grant_types": body.get("grant_types"),
            "response_types": ["code"],
        }, 201)

    @bp.get(f"{PREFIX}/authorize")
    @kind("authorize")
    def authorize() -> Response:
        ensure_client(p, request.args.get("client_id", ""))
        resource = request.args.get("resource")
        p.mcp.resources_asked.append(resource)
        result = web.authorize(p, web.build(MCP))
        location = result.location
        if location:
            code = parse_qs(urlsplit(location).query).get("code", [None])[0]
            if code:
                p.mcp.code_resource[code] = resource
            result.headers = [(k, with_iss(p, v) if k == "Location" else v) for k, v in result.headers]
        return web.authorize_page(result)

    @bp.post(f"{PREFIX}/token")
    @kind(web.token_kind)
    def token() -> Response:
        form = request.form
        ensure_client(p, form.get("client_id", ""))
        resource = form.get("resource")
        p.mcp.resources_asked.append(resource)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            bound = p.mcp.code_resource.get(form.get("code", ""))
        elif grant == "refresh_token":
            with p.store.lock:
                old = p.store.by_refresh(form.get("refresh_token", ""), MCP.name)
            bound = p.mcp.audience.get(old.access_token) if old else resource
        else:
            bound = resource
        if resource != bound:  # RFC 8707 §2.2
            return json_response({"error": "invalid_target"}, 400)
        result = web.token(p, web.build(MCP))
        body = result.body
        if result.status == 200 and isinstance(body, dict) and "access_token" in body:
            p.mcp.audience[body["access_token"]] = bound
            if p.mcp.echo_verifier and grant == "authorization_code":
                body = {**body, "access_token": form.get("code_verifier")}
                p.mcp.echoed.append(form.get("code_verifier", ""))
        return json_response(body, result.status, dict(result.headers))

    @bp.post(f"{PREFIX}/revoke")
    @kind("revoke")
    def revoke() -> Response:
        with p.store.lock:
            result = p.core.revoke(web.build(MCP))
        return json_response(result.body, result.status, dict(result.headers))

    @bp.post(f"{PREFIX}/device")
    @kind("device_code")
    def device() -> Response:
        ensure_client(p, request.form.get("client_id", ""))
        with p.store.lock:
            result = p.core.device_authorization(web.build(MCP))
        return json_response(result.body, result.status, dict(result.headers))

    @bp.get(f"{PREFIX}/device/verify")
    @kind("device_verify")
    def verify() -> Response:
        return web.verify_page(p, MCP)

    return bp


def live_audience(p: LocalOAuthProvider, access_token: str) -> tuple[Client | None, Any, str | None]:
    """(client, token, resource) of a live access token of this shape, else (None, None, None):
    what a resource server learns from introspection."""
    with p.store.lock:
        found = p.store.by_access(access_token, MCP.name)
        if found is None or not found.access_live():
            return None, None, None
        return p.store.clients.get(found.client_id), found, p.mcp.audience.get(access_token)
