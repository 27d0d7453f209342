"""How an app proves who it is at the token endpoint (RFC 6749 §2.3, OIDC Core §9).

A provider accepts the methods its discovery document lists, and each app registration
is usually bound to exactly one of them: strict providers refuse the others with
``invalid_client``. tbx therefore uses the method the user chose for the app, or else
the first one the provider lists that the app can do — ``client_secret_basic`` (RFC
6749's default, which every provider must take) before ``client_secret_post``,
``private_key_jwt`` when the app has a key, ``none`` for a public app (PKCE only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from console.errors import UsageError
from console.oauth.providers import AUTH_METHODS, ProviderSpec

if TYPE_CHECKING:
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def usable_methods(has_secret: bool, has_key: bool) -> tuple[str, ...]:
    """The methods an app with these credentials can use, in the order tbx prefers them."""
    if has_key:
        return ("private_key_jwt",)
    if has_secret:
        return SECRET_METHODS
    return ("none",)


def choose_method(spec: ProviderSpec, *, has_secret: bool, has_key: bool, wanted: str | None = None) -> str:
    """The client authentication to use, or a UsageError saying what would work."""
    usable = usable_methods(has_secret, has_key)
    if wanted is not None:
        if wanted not in AUTH_METHODS:
            raise UsageError(f"unknown client authentication {wanted!r}: use one of {', '.join(AUTH_METHODS)}")
        if wanted not in usable:
            need = {"private_key_jwt": "a private key (--private-key FILE)", "none": "no secret (--public)"}
            raise UsageError(f"{wanted} needs {need.get(wanted, 'a client secret')} in the app registration")
        if wanted not in spec.auth_methods:
            raise UsageError(
                f"{spec.title} does not take {wanted} at its token endpoint; it takes {', '.join(spec.auth_methods)}"
            )
        return wanted
    for method in usable:
        if method in spec.auth_methods:
            return method
    offered = ", ".join(spec.auth_methods) or "nothing tbx can do"
    kind = {"private_key_jwt": "a private key", "none": "no secret"}.get(usable[0], "a client secret")
    raise UsageError(f"{spec.title} does not take an app with {kind} (it takes {offered}); register the app accordingly")


def read_private_key(path: str) -> str:
    """The PEM text of a key file the user named, checked to be a private key."""
    from pathlib import Path

    file = Path(path).expanduser()
    try:
        pem = file.read_text(errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read the private key file {file} ({exc.strerror or type(exc).__name__})") from None
    load_private_key(pem)
    return pem


def load_private_key(pem: str) -> Any:
    """A joserfc key from a PEM private key (RSA or EC), or a UsageError."""
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey, RSAKey

    for kind in (RSAKey, ECKey):
        try:
            key = kind.import_key(pem)
        except (JoseError, ValueError, TypeError):
            continue
        if key.is_private:
            return key
    raise UsageError("the private key is not an RSA or EC private key in PEM form; export it with 'openssl pkey'")


def public_jwk(pem: str) -> dict[str, Any]:
    """The public half of the app's key as a JWK (``kid`` = its RFC 7638 thumbprint), to
    register at the provider."""
    key = load_private_key(pem)
    public = key.as_dict(private=False)
    public["kid"] = key.thumbprint()
    public["use"] = "sig"
    return public


def signing_alg(spec: ProviderSpec, pem: str) -> str:
    key = load_private_key(pem)
    wanted = "RS256" if key.key_type == "RSA" else {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(
        key.as_dict().get("crv", ""), "ES256")
    if wanted not in spec.key_algs:
        raise UsageError(
            f"{spec.title} does not take {wanted} client assertions (it takes {', '.join(spec.key_algs)}); use another key"
        )
    return wanted


def private_key_jwt(spec: ProviderSpec, pem: str, token_url: str) -> PrivateKeyJWT:
    """authlib's RFC 7523 client assertion, audience the issuer where there is one."""
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

    key = load_private_key(pem)
    # The first argument is the assertion's audience: RFC 7523bis asks for the issuer.
    return PrivateKeyJWT(spec.issuer or token_url, headers={"kid": key.thumbprint()}, alg=signing_alg(spec, pem))
