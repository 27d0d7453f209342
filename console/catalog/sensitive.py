"""Which environment values of an imported server are secrets.

Errs on the side of secrecy: a value that is wrongly treated as secret only ends up
in the vault instead of the plain environment; a secret treated as plain would be
printed by a dry run.
"""

from __future__ import annotations

import re

# Whole words of a variable name (split on _ and -) that mark it secret. Word matching
# keeps MEMORY_FILE_PATH (PATH, not PAT) and KEYBOARD_LAYOUT plain.
SECRET_WORDS = {"TOKEN", "SECRET", "KEY", "APIKEY", "PASSWORD", "PASSWD", "PASS", "PAT", "CREDENTIAL",
                "AUTH", "AUTHORIZATION", "COOKIE"}
# Fragments that mark a name secret wherever they appear (ACCESSTOKEN, CLIENTSECRET).
SECRET_FRAGMENTS = ("TOKEN", "SECRET", "PASSWORD", "APIKEY", "API_KEY", "PRIVATE_KEY")

TOKEN_FORMATS = [
    re.compile(r"^gh[pousr]_[A-Za-z0-9]{20,}$"),  # GitHub classic and app tokens
    re.compile(r"^github_pat_[A-Za-z0-9_]{20,}$"),  # GitHub fine-grained PAT
    re.compile(r"^xox[abposre]-[A-Za-z0-9-]{10,}$"),  # Slack bot/user/app tokens
    re.compile(r"^xapp-[A-Za-z0-9-]{10,}$"),  # Slack app-level token
    re.compile(r"^sk-[A-Za-z0-9_-]{16,}$"),  # OpenAI / Anthropic (sk-ant-...) / Stripe-style keys
    re.compile(r"^(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}$"),  # Stripe
    re.compile(r"^(?:AKIA|ASIA)[0-9A-Z]{16}$"),  # AWS access key id
    re.compile(r"^glpat-[A-Za-z0-9_-]{20,}$"),  # GitLab PAT
    re.compile(r"^AIza[0-9A-Za-z_-]{35}$"),  # Google API key
    re.compile(r"^eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*$"),  # JWT
    re.compile(r"^(?:Bearer|Basic|token)\s+\S{8,}$", re.IGNORECASE),  # a whole Authorization header
    re.compile(r"^-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]
FLAG_WORDS = {"TOKEN", "SECRET", "KEY", "APIKEY", "PASSWORD", "PASSWD", "PAT"}

URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if any(fragment in upper for fragment in SECRET_FRAGMENTS):
        return True
    return any(word in SECRET_WORDS for word in re.split(r"[_\-.]+", upper))


def looks_like_secret(value: str) -> bool:
    value = value.strip()
    return any(p.match(value) for p in TOKEN_FORMATS) or bool(URL_WITH_PASSWORD.match(value))


def is_secret(name: str, value: str) -> bool:
    return is_secret_name(name) or looks_like_secret(value)


def secret_flag(arg: str) -> bool:
    """A command-line option that announces a secret value: ``--api-key``, ``--token=...``."""
    if not arg.startswith("-"):
        return False
    words = arg.lstrip("-").split("=", 1)[0].replace("-", "_").upper()
    # --password-file /run/x names where a secret is, not the secret itself.
    if words.endswith(("_FILE", "_PATH", "_DIR")):
        return False
    # Narrower than env names: --no-auth or --auth-mode are switches, not secrets.
    return any(f in words for f in SECRET_FRAGMENTS) or any(w in FLAG_WORDS for w in words.split("_"))
