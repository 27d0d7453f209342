"""DigitalOcean's failed answers as errors that say what to do, without the token."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Any

from console.errors import TbxError

TOKEN_PAGE = "cloud.digitalocean.com/account/api/tokens"
DROPLETS_PAGE = "cloud.digitalocean.com/droplets"


# -- errors -----------------------------------------------------------------------------


class DigitalOceanError(TbxError):
    """DigitalOcean refused or failed a request; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, api_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.api_id = api_id


class TokenRejected(DigitalOceanError):
    """401/403: the token is wrong, expired, revoked, or lacks a scope."""


class QuotaExceeded(DigitalOceanError):
    """422: the account's droplet limit (or another quota) is reached."""


class RateLimited(DigitalOceanError):
    """429 that did not clear within the retry budget."""


class InvalidChoice(DigitalOceanError):
    """Unknown or unavailable region/size, or a name DigitalOcean would refuse."""

    exit_code = 2


class ResourceGone(DigitalOceanError):
    """404: the droplet or key does not exist (any more)."""


class ProvisionTimeout(DigitalOceanError):
    """The droplet did not become active with a public address in time."""


class ProvisionFailed(DigitalOceanError):
    """DigitalOcean gave up creating the droplet (errored create action, droplet off)."""


class Unreachable(DigitalOceanError):
    """No answer from the API: DNS, connection refused, timeout."""


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[token]")
    return text


def error_for(status: int, body: Mapping[str, Any], headers: Mapping[str, str], *, method: str, path: str) -> DigitalOceanError:
    """The error for a non-2xx answer (pure; ``body`` is the decoded JSON or ``{}``)."""
    api_id = str(body.get("id") or "") or None
    message = str(body.get("message") or "").strip().rstrip(".")
    said = f" ({message})" if message else ""
    if status == 401:
        return TokenRejected(
            f"DigitalOcean refused the API token; create a new one at {TOKEN_PAGE} and run "
            "`tbx toolbox add NAME --droplet` again",
            status=status,
            api_id=api_id,
        )
    if status == 403:
        return TokenRejected(
            f"the DigitalOcean API token may not {method} {path}{said}; create a token with read and write "
            f"access at {TOKEN_PAGE} and try again",
            status=status,
            api_id=api_id,
        )
    if status == 404:
        return ResourceGone(f"DigitalOcean has nothing at {path} (deleted already?)", status=status, api_id=api_id)
    if status == 422 and "limit" in message.lower():
        return QuotaExceeded(
            f"DigitalOcean refused to create more{said}; delete droplets you no longer need at {DROPLETS_PAGE} "
            "or ask DigitalOcean for a higher droplet limit",
            status=status,
            api_id=api_id,
        )
    if status == 422:
        return DigitalOceanError(f"DigitalOcean rejected {method} {path}{said}", status=status, api_id=api_id)
    if status == 429:
        delay = retry_delay(headers, now=time.time())
        when = f"about {delay:.0f}s" if delay is not None else "a minute"
        return RateLimited(
            f"DigitalOcean is rate-limiting this API token; wait {when} and try again",
            status=status,
            api_id=api_id,
        )
    if status >= 500:
        return DigitalOceanError(
            f"DigitalOcean's API failed with {status}{said}; try again in a few minutes (status.digitalocean.com)",
            status=status,
            api_id=api_id,
        )
    return DigitalOceanError(f"DigitalOcean answered {status} to {method} {path}{said}", status=status, api_id=api_id)


def retry_delay(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP date), else ``ratelimit-reset`` (epoch)."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        with suppress(ValueError):
            return max(0.0, float(retry_after))
        with suppress(TypeError, ValueError):
            return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - now)
    reset = headers.get("ratelimit-reset")
    if reset:
        with suppress(ValueError):
            return max(0.0, float(reset) - now)
    return None


# -- the seam into python-digitalocean --------------------------------------------------
