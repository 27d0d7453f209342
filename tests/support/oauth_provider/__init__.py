"""A local OAuth 2.0 / OIDC provider for tests, built on authlib's server components.

See ``LocalOAuthProvider`` for the knobs and ``shapes`` for how GitHub, Google,
Microsoft Entra, Slack and generic OIDC differ.
"""

from .provider import LocalOAuthProvider

__all__ = ["LocalOAuthProvider"]
