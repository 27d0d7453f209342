"""The one seam into python-digitalocean: every library object this program creates
has ``_Wire`` mixed in front, which bounds each request, waits out 429 answers within a
budget, leaves unset fields out of what it posts and turns every other failed answer into
a ``DigitalOceanError``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
from digitalocean import Account, Action, Droplet, Image, Manager, SSHKey
from digitalocean.baseapi import BaseAPI

from console.remote.do_errors import Unreachable, _scrub, error_for, rate_limit_wait

log = logging.getLogger("console.remote.droplets")


@dataclass(frozen=True)
class _WireConfig:
    request_timeout: float
    rate_limit_retries: int
    rate_limit_wait: float
    token: str = field(repr=False)


class _Wire(BaseAPI):
    """Mixed in front of a library class; the library reaches it through ``self.__perform_request``."""

    _tbx: _WireConfig  # set through BaseAPI's keyword arguments

    def get_timeout(self) -> float:
        return self._tbx.request_timeout

    # BaseAPI calls its private ``__perform_request``, mangled to this name; it is the only
    # place that sees the raw response of every call, including the pagination ones.
    def _BaseAPI__perform_request(self, url: str, method: str = "GET", params: Any = None) -> requests.Response:
        cfg = self._tbx
        path = urlparse(urljoin(self.end_point, url)).path  # the library joins relative URLs later
        if method == "POST" and isinstance(params, dict):
            # The library posts every field it knows, null when unset (a droplet's vpc_uuid);
            # the API types them as strings and arrays: unset means left out.
            params = {key: value for key, value in params.items() if value is not None}
        waited = 0.0
        attempt = 0
        while True:
            response = self._send(url, method, params, path)
            if response.status_code == 429 and attempt < cfg.rate_limit_retries:
                delay = rate_limit_wait(response.headers, attempt, now=time.time())
                if waited + delay <= cfg.rate_limit_wait:
                    log.info("DigitalOcean rate limit on %s %s: retrying in %.1fs", method, path, delay)
                    time.sleep(delay)
                    waited += delay
                    attempt += 1
                    continue
            if response.ok:
                return response
            raise error_for(response.status_code, _json_or_empty(response, cfg.token), response.headers, method=method, path=path)

    def _send(self, url: str, method: str, params: Any, path: str) -> requests.Response:
        cfg = self._tbx
        host = urlparse(urljoin(self.end_point, url)).netloc
        try:
            return super()._BaseAPI__perform_request(url, method, params)  # type: ignore[misc]
        except requests.Timeout as exc:
            raise Unreachable(
                f"the DigitalOcean API at {host} did not answer {method} {path} within {cfg.request_timeout:g}s; "
                "check the network and try again"
            ) from exc
        except requests.ConnectionError as exc:
            raise Unreachable(
                f"cannot reach the DigitalOcean API at {host}; check the network (and DIGITALOCEAN_END_POINT "
                "if set) and try again"
            ) from exc
        except requests.RequestException as exc:
            reason = _scrub(type(exc).__name__, [cfg.token])
            raise Unreachable(f"request to the DigitalOcean API at {host} failed ({reason}); try again") from exc


def _json_or_empty(response: requests.Response, token: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: _scrub(v, [token]) if isinstance(v, str) else v for k, v in body.items()}


class _Manager(_Wire, Manager):
    pass


class _Account(_Wire, Account):
    pass


class _Droplet(_Wire, Droplet):
    pass


class _SSHKey(_Wire, SSHKey):
    pass


class _Action(_Wire, Action):
    pass


class _Image(_Wire, Image):
    pass
