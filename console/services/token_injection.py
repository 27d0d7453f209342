"""How a connection's token gets into a container for servers that read it from a file.

The container's root is read-only, so the token file is written into its /tmp tmpfs at
start by a two-line shell launcher, from an env variable, before the server is exec'd.
The token is thus exactly as exposed as an env token (visible to root through
``docker inspect``), and never touches the host's disk.
"""

from __future__ import annotations

import json
import time

from console.oauth.tokens import TokenSet

TOKEN_FILE_ENV = "TBX_OAUTH_TOKEN_FILE_CONTENT"

_LAUNCHER = (
    'umask 077; mkdir -p "$(dirname "$0")" && printf "%s" "$TBX_OAUTH_TOKEN_FILE_CONTENT" > "$0" '
    '&& unset TBX_OAUTH_TOKEN_FILE_CONTENT && exec "$@"'
)


def token_file_launcher(path: str, command: list[str]) -> list[str]:
    return ["/bin/sh", "-c", _LAUNCHER, path, *command]


def google_credentials(tokens: TokenSet) -> str:
    """The token set as google-auth-library's authorized-user credentials file."""
    body: dict[str, object] = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "scope": " ".join(tokens.scopes),
    }
    if tokens.expires_at is not None:
        body["expiry_date"] = int(tokens.expires_at * 1000)
    else:
        body["expiry_date"] = int((time.time() + 3600) * 1000)
    return json.dumps(body)
