"""What an authorization server's device grant may put on the user's screen.

The user code and the verification page are shown as they came, in the console and on
the terminal the CLI writes to. Text with control characters there is not a code but
terminal commands (ESC sequences clear the screen, rewrite the clipboard with OSC 52,
retitle the window): refused before anything shows it, as are codes no person could
type and pages that are not web addresses.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_CODE = 64
"""RFC 8628 §6.1 codes are a handful of characters; providers use 8 to 12."""
MAX_URL = 2048


def _printable(text: str) -> bool:
    return text.isprintable() and not any(ch.isspace() for ch in text)


def check_code(code: str) -> str:
    if not code or len(code) > MAX_CODE or not _printable(code):
        raise ValueError("a user code no one could read or type")
    return code


def check_page(url: str) -> str:
    """An absolute http(s) address, printable and of a sane length."""
    if not url or len(url) > MAX_URL or not _printable(url):
        raise ValueError("a verification page with control characters, spaces or no end")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError("a verification page that is not a web address")
    return url
