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
    """DigitalOcean refused or failed a request; ``status`` is the HTTP status when there was one,
    ``request_id`` what DigitalOcean's support asks for (also at the end of the message)."""

    def __init__(self, message: str, *, status: int | None = None, api_id: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.api_id = api_id
        self.request_id = request_id

    def again(self, message: str) -> DigitalOceanError:
        """The same error with another message (what happened next appended)."""
        return type(self)(message, status=self.status, api_id=self.api_id, request_id=self.request_id)


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


class DropletBusy(DigitalOceanError):
    """422 "Droplet already has a pending event": another action (its create) still runs."""


class NotDestroyed(DigitalOceanError):
    """A droplet is still there after every attempt to delete it within the budget."""


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
    """The error for a non-2xx answer (pure; ``body`` is the decoded JSON or ``{}``), its
    message ending with DigitalOcean's request id when the answer had one."""
    request_id = str(body.get("request_id") or headers.get("x-request-id") or "") or None
    error = _error_for(status, body, headers, method=method, path=path)
    error.request_id = request_id
    if request_id:
        error.args = (f"{error} (DigitalOcean request {request_id})",)
    return error


def _error_for(status: int, body: Mapping[str, Any], headers: Mapping[str, str], *, method: str,
               path: str) -> DigitalOceanError:
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
    if status == 422 and "pending event" in message.lower():
        return DropletBusy(f"DigitalOcean refused {method} {path}{said}: another action on it still runs",
                           status=status, api_id=api_id)
    if status == 422:
        return DigitalOceanError(f"DigitalOcean rejected {method} {path}{said}", status=status, api_id=api_id)
    if status == 429:
        delay = retry_delay(headers, now=time.time())
        when = f"wait {about(delay)}" if delay is not None else "wait a minute"
        # Without Retry-After, the 429 is the hourly limit's (the burst limit sends one).
        which = "has used up its hourly request limit" if "Retry-After" not in headers else "is being rate-limited"
        return RateLimited(f"this DigitalOcean API token {which}; {when} and try again", status=status, api_id=api_id)
    if status >= 500:
        return DigitalOceanError(
            f"DigitalOcean's API failed with {status}{said}; try again in a few minutes (status.digitalocean.com)",
            status=status,
            api_id=api_id,
        )
    return DigitalOceanError(f"DigitalOcean answered {status} to {method} {path}{said}", status=status, api_id=api_id)


def about(seconds: float) -> str:
    """A wait in words: "a few seconds", "about 40s", "about 20 min"."""
    if seconds < 5:
        return "a few seconds"
    if seconds < 90:
        return f"about {seconds:.0f}s"
    return f"about {round(seconds / 60)} min"


def retry_delay(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP date), else
    ``ratelimit-reset``, an epoch second of the API's clock: measured from the answer's
    ``Date`` when it has one (ours may be a minute off), else from ``now``."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        with suppress(ValueError):
            return max(0.0, float(retry_after))
        with suppress(TypeError, ValueError):
            return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - now)
    reset = headers.get("ratelimit-reset")
    if reset:
        with suppress(TypeError, ValueError):
            now = email.utils.parsedate_to_datetime(headers.get("Date", "")).timestamp()
        with suppress(ValueError):
            return max(0.0, float(reset) - now)
    return None


BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Seconds between attempts when the API does not say how long (capped at the last)."""


def backoff(attempt: int, scale: float = 1.0) -> float:
    return BACKOFF[min(attempt, len(BACKOFF) - 1)] * scale


def rate_limit_wait(headers: Mapping[str, str], attempt: int, *, now: float) -> float:
    """How long to wait before retrying after the ``attempt``-th 429 in a row. Retry-After
    is followed as given; a reset time only as a lower bound of the backoff, since the
    hourly window's oldest request may expire at once and the next one be refused again."""
    delay = retry_delay(headers, now=now)
    if headers.get("Retry-After") and delay is not None:
        return delay
    return max(delay or 0.0, backoff(attempt))
