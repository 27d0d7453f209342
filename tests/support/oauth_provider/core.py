"""One authlib authorization server shared by every provider shape.

Routes build a ``ShapeRequest`` (the RFC 6749 parameters after their shape's
translation) and get a ``CoreResponse`` back (RFC status, body and headers, plus the
authlib error if any), which they turn into their provider's wire format. Callers
hold ``Store.lock`` around every call so that validating and consuming a code or a
refresh token is one atomic step, as it is at a real provider.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from werkzeug.datastructures import CombinedMultiDict, Headers, MultiDict

from .id_tokens import IdTokenSigner
from .models import AuthCode, Client, DeviceCode, Store, Token, User
from .shapes import Settings, Shape

ALL_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class RedirectMismatch(InvalidGrantError):
    """redirect_uri at the token endpoint differs from the authorize request's."""


class UnknownDeviceCode(InvalidGrantError):
    """device_code never issued, already used, or from another shape."""


class _Payload(OAuth2Payload):
    def __init__(self, data: CombinedMultiDict) -> None:
        self._data = data

    @property
    def data(self) -> CombinedMultiDict:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        values: defaultdict[str, list] = defaultdict(list)
        for key in self._data:
            values[key].extend(self._data.getlist(key))
        return values


class ShapeRequest(OAuth2Request):
    """An OAuth 2.0 request as the core sees it, tagged with the shape it came through."""

    def __init__(self, shape: Shape, method: str, url: str, headers: Headers, args: MultiDict, form: MultiDict) -> None:
        super().__init__(method, url, headers=headers)
        self.shape = shape
        self._args, self._form = args, form
        self.payload = _Payload(CombinedMultiDict([args, form]))

    @property
    def args(self) -> MultiDict:
        return self._args

    @property
    def form(self) -> MultiDict:
        return self._form


@dataclass
class CoreResponse:
    status: int
    body: Any  # dict for JSON bodies, "" for redirects
    headers: list[tuple[str, str]]
    error: OAuth2Error | None = field(default=None)

    @property
    def location(self) -> str | None:
        return dict(self.headers).get("Location")


class S256Challenge(CodeChallenge):
    """PKCE with S256 only: required of public clients, checked for anyone who sent it.
    Shapes without PKCE (Slack) skip it entirely."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str | None) -> None:
        request: ShapeRequest = grant.request
        if not request.shape.pkce:
            return
        data = request.payload.data
        challenge = data.get("code_challenge")
        if not challenge and request.client.client_secret is None:
            raise InvalidRequestError("Public clients must send code_challenge with code_challenge_method=S256.")
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if grant.request.shape.pkce:
            super().validate_code_verifier(grant, result)


class _Shaped:
    """Token minting for every grant: the shape decides prefixes, expiry and refresh."""

    request: ShapeRequest
    server: CoreServer

    def include_refresh(self) -> bool:
        raise NotImplementedError

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        token = self.server.mint(self.request.shape, scope or "", self.include_refresh())
        if self.request.shape.id_tokens and "openid" in (scope or "").split() and self.request.refresh_token is None:
            code = self.request.authorization_code
            id_token = self.server.id_token(self.request.client.client_id, self.request.user,
                                            code.nonce if code is not None else None)
            if id_token is not None:
                token["id_token"] = id_token
        return token


class CodeGrant(_Shaped, AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def include_refresh(self) -> bool:
        return self.request.shape.include_refresh(self.server.settings, self.request.authorization_code.offline)

    def save_authorization_code(self, code: str, request: ShapeRequest) -> None:
        store, shape, data = self.server.store, request.shape, request.payload.data
        consent = (shape.name, request.client.client_id, request.user.email)
        offline = shape.offline_for_code(data, request.scope, consent not in store.offline_consents)
        if offline:
            store.offline_consents.add(consent)
        store.codes[code] = AuthCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user=request.user,
            shape=shape.name,
            family="c-" + generate_token(16),
            offline=offline,
            code_challenge=data.get("code_challenge") if shape.pkce else None,
            code_challenge_method=data.get("code_challenge_method") if shape.pkce else None,
            nonce=data.get("nonce"),
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        item = self.server.store.codes.get(code)
        if item is None or item.shape != self.request.shape.name or item.client_id != client.client_id:
            return None
        if item.used:
            # RFC 6749 §4.1.2: a replayed code is a sign of theft; revoke what it bought.
            self.server.store.kill_family(item.family)
            raise InvalidGrantError("The authorization code was already used.")
        if item.expires_at <= time.time():
            return None
        if self.request.payload.redirect_uri != item.redirect_uri:
            raise RedirectMismatch("redirect_uri does not match the authorization request.")
        return item

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        authorization_code.used = True  # kept, so that a replay can be recognised

    def authenticate_user(self, authorization_code: AuthCode) -> User:
        return authorization_code.user


class RefreshGrant(_Shaped, RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def include_refresh(self) -> bool:
        return self.request.shape.rotates(self.server.settings)

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token = self.server.store.by_refresh(refresh_token, self.request.shape.name)
        return token if token is not None and token.refresh_live() else None

    def authenticate_user(self, refresh_token: Token) -> User:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        if self.include_refresh():
            refresh_token.refresh_revoked = True


class DeviceGrant(_Shaped, DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*ALL_METHODS, "device_client_id"]
    def include_refresh(self) -> bool:
        return self.request.shape.include_refresh(self.server.settings, self.request.credential.offline)

    def query_device_credential(self, device_code: str) -> DeviceCode:
        item = self.server.store.devices.get(device_code)
        if item is None or item.used or item.shape != self.request.shape.name:
            raise UnknownDeviceCode("Unknown or already used device_code.")
        return item

    def query_user_grant(self, user_code: str) -> tuple[User, bool] | None:
        item = self.server.store.by_user_code(user_code)
        return None if item is None else item.decision

    def should_slow_down(self, credential: DeviceCode) -> bool:
        now, last = time.time(), credential.last_poll
        credential.last_poll = now
        # a little slack: the client's clock and ours start the interval at different moments
        if last is not None and now - last < credential.interval - 0.05:
            credential.interval += self.server.settings.slow_down_increment  # RFC 8628 §3.5
            return True
        return False

    def create_token_response(self):
        result = super().create_token_response()
        self.request.credential.used = True
        return result


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = [*ALL_METHODS, "device_client_id"]
    def create_endpoint_response(self, request: ShapeRequest):
        # authlib asks for the verification URI without the request; the caller holds the
        # store lock, so this instance serves one request at a time.
        self._request = request
        settings = self.server.settings
        self.INTERVAL = seconds(settings.device_interval)
        self.EXPIRES_IN = seconds(settings.device_code_ttl)
        return super().create_endpoint_response(request)

    def get_verification_uri(self) -> str:
        return self.server.settings.base + (self._request.shape.verification_path or "")

    def save_device_credential(self, client_id: str, scope: str | None, data: dict) -> None:
        request = self._request
        granted = request.client.get_allowed_scope(scope)
        if granted is None:
            raise InvalidScopeError()
        self.server.store.devices[data["device_code"]] = DeviceCode(
            device_code=data["device_code"],
            user_code=data["user_code"],
            client_id=client_id,
            scope=granted,
            shape=request.shape.name,
            offline=request.shape.offline_for_device(granted),
            expires_at=time.time() + float(data["expires_in"]),
            interval=float(data["interval"]),
        )


class Revocation(RevocationEndpoint):
    """RFC 7009 with client authentication (generic OIDC, GitHub's DELETE)."""

    CLIENT_AUTH_METHODS = ALL_METHODS

    def authenticate_token(self, request: ShapeRequest, client: Client) -> Token | None:
        self.check_params(request, client)
        store, shape, value = self.server.store, request.shape.name, request.form["token"]
        token = store.by_access(value, shape) or store.by_refresh(value, shape)
        if token is not None and not token.check_client(client):
            raise InvalidGrantError()
        return token

    def revoke_token(self, token: Token, request: ShapeRequest) -> None:
        store, value = self.server.store, request.form["token"]
        if value == token.refresh_token or request.shape.revoke_whole_grant:
            killed = store.kill_family(token.family)
        else:
            token.access_revoked = True
            killed = [token.access_token]
        store.revoked.update(killed)


class RevocationByToken(Revocation):
    """Google's and Slack's revoke: no client credentials, the token itself is the proof."""

    ENDPOINT_NAME = "revocation_by_token"
    CLIENT_AUTH_METHODS = ["token_owner"]


class CoreServer(AuthorizationServer):
    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__()
        self.store, self.settings = store, settings
        self.signer = IdTokenSigner()
        self.register_grant(CodeGrant, [S256Challenge(required=True)])
        self.register_grant(RefreshGrant)
        self.register_grant(DeviceGrant)
        self.register_endpoint(DeviceEndpoint)
        self.register_endpoint(Revocation)
        self.register_endpoint(RevocationByToken)
        self.register_client_auth_method("token_owner", self._authenticate_token_owner)
        self.register_client_auth_method("device_client_id", self._authenticate_device_client_id)

    # -- what the routes call -------------------------------------------------------------
    def authorize(self, request: ShapeRequest, user: User, approve: bool) -> CoreResponse:
        try:
            grant = self.get_consent_grant(request, end_user=user)
        except OAuth2Error as error:
            return self.handle_error_response(request, error)
        return self.create_authorization_response(request, grant_user=user if approve else None, grant=grant)

    def token(self, request: ShapeRequest) -> CoreResponse:
        return self.create_token_response(request)

    def device_authorization(self, request: ShapeRequest) -> CoreResponse:
        return self.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME, request)

    def revoke(self, request: ShapeRequest, by_token: bool = False) -> CoreResponse:
        name = RevocationByToken.ENDPOINT_NAME if by_token else Revocation.ENDPOINT_NAME
        return self.create_endpoint_response(name, request)

    # -- authlib's storage and framework hooks ---------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        return self.store.clients.get(client_id)

    def id_token(self, client_id: str, user: User, nonce: str | None) -> str | None:
        from .routes_oidc import subject

        issuer = self.settings.base + "/oidc"
        return self.signer.mint(issuer, client_id, subject(user.email), user.email, nonce, self.settings.id_token_fault)

    def mint(self, shape: Shape, scope: str, include_refresh: bool) -> dict[str, Any]:
        token: dict[str, Any] = {"token_type": "Bearer", "access_token": shape.access_prefix + generate_token(40)}
        if shape.expiring(self.settings):
            token["expires_in"] = seconds(self.settings.access_token_ttl)
        if include_refresh:
            token["refresh_token"] = shape.refresh_prefix + generate_token(48)
        if scope:
            token["scope"] = scope
        return token

    def save_token(self, token: dict[str, Any], request: ShapeRequest) -> None:
        origin = request.authorization_code or request.credential or request.refresh_token
        family = origin.family if isinstance(origin, AuthCode | Token) else "d-" + origin.user_code
        now = time.time()
        refresh = token.get("refresh_token")
        self.store.tokens.append(
            Token(
                access_token=token["access_token"],
                refresh_token=refresh,
                client_id=request.client.client_id,
                scope=token.get("scope", ""),
                user=request.user,
                shape=request.shape.name,
                family=family,
                access_expires_at=now + token["expires_in"] if "expires_in" in token else None,
                refresh_expires_at=now + self.settings.refresh_token_ttl if refresh else None,
            )
        )

    def create_oauth2_request(self, request: ShapeRequest) -> ShapeRequest:
        return request  # the routes already built it

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON-body endpoints in this provider")

    def handle_response(self, status_code: int, payload: Any, headers: list) -> CoreResponse:
        return CoreResponse(status_code, payload, list(headers))

    def handle_error_response(self, request: Any, error: OAuth2Error) -> CoreResponse:
        response = super().handle_error_response(request, error)
        response.error = error
        return response

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def _authenticate_device_client_id(self, query_client: Any, request: ShapeRequest) -> Client | None:
        if request.shape.device_flow_without_secret and "client_secret" not in request.form:
            return query_client(request.payload.client_id or "")
        return None

    def _authenticate_token_owner(self, query_client: Any, request: ShapeRequest) -> Client | None:
        value, shape = request.form.get("token", ""), request.shape.name
        token = self.store.by_access(value, shape)
        if token is not None and token.access_live():
            return query_client(token.client_id)
        token = self.store.by_refresh(value, shape)
        if token is not None and token.refresh_live():
            return query_client(token.client_id)
        return None


def seconds(value: float) -> int | float:
    """Seconds as JSON clients expect them: an integer whenever it is one."""
    return int(value) if float(value).is_integer() else value
