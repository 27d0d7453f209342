"""OAuth connections: provider definitions, the browser (loopback + PKCE) and device
flows, token refresh and revocation. Plain Python: the CLI, the TUI and the gateway use
it alike, and it never prints or logs a token."""
