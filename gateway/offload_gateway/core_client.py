"""The HTTP call behind /sync: POST the body to the core's /work and wait for its answer."""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter


class CoreUnreachable(Exception):
    """The core refused or dropped the connection, or answered with an error (-> 502)."""


class CoreTimeout(Exception):
    """The core did not answer in time (-> 504)."""


class CoreFailed(CoreUnreachable):
    """The core answered a 5xx: it failed the task (a transient or permanent failure, or it was
    too busy). The message is the gateway's answer, `core failed the task: <the core's error>`
    (-> 502)."""


# the core's error is carried into the answer, cut to this many characters
MAX_CORE_ERROR_CHARS = 200


@dataclass(frozen=True)
class CoreAnswer:
    body: bytes
    content_type: str


class CoreClient:
    def __init__(self, core_url: str, timeout_s: float, connect_timeout_s: float, pool_size: int):
        self._work_url = core_url.rstrip("/") + "/work"
        self._timeouts = (min(connect_timeout_s, timeout_s), timeout_s)
        self._session = requests.Session()
        # one pooled connection per concurrent request, or urllib3 opens and discards extras
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def work(self, body: bytes) -> CoreAnswer:
        try:
            response = self._session.post(
                self._work_url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self._timeouts,
            )
        except requests.Timeout as exc:
            raise CoreTimeout(f"core did not answer within {self._timeouts[1]:g} s") from exc
        except requests.RequestException as exc:
            raise CoreUnreachable(f"core unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise CoreFailed(f"core failed the task: {core_error(response)}")
        if response.status_code != 200:
            raise CoreUnreachable(f"core answered {response.status_code}")
        return CoreAnswer(
            body=response.content,
            content_type=response.headers.get("Content-Type", "application/json"),
        )

    def close(self) -> None:
        self._session.close()


def core_error(response: requests.Response) -> str:
    """The `error` of the core's JSON answer, else `HTTP <status>`."""
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, str) or not error.strip():
        return f"HTTP {response.status_code}"
    return error.strip()[:MAX_CORE_ERROR_CHARS]
