"""HTTP calls to flag services: timeouts, bounded retries for idempotent calls, and errors
turned into `FlagError`s an on-call engineer understands. Messages name the service and its
URL and the HTTP status, never a token or a request header."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import requests

from app.flags.base import (
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    Conflict,
    FlagError,
    FlagNotFound,
    Forbidden,
    InvalidValue,
    ServerError,
    TokenRejected,
)
from app.flags.config import Secret, redact_url

RETRY_STATUSES = {429, 502, 503, 504}
BACKOFF_S = (0.2, 0.5)  # two retries at most, only for idempotent calls


class RestClient:
    def __init__(self, service: str, base_url: str, auth: dict[str, str], timeout_s: float):
        self.service = service
        self.base_url = redact_url(base_url.rstrip("/"))  # the one shown in messages
        self._url = base_url.rstrip("/")
        self._auth = auth
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"RestClient({self.service!r}, {self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        not_found: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one call (retried only when idempotent) and return the decoded JSON body."""
        attempts = len(BACKOFF_S) + 1 if idempotent else 1
        for attempt in range(attempts):
            try:
                return self._once(method, path, not_found, json, params, headers)
            except FlagError as exc:
                if not exc.retryable or isinstance(exc, BackendTimeout) or attempt + 1 >= attempts:
                    raise
                time.sleep(BACKOFF_S[attempt])
        raise AssertionError("unreachable")

    def _once(self, method, path, not_found, json, params, headers) -> Any:
        url = f"{self._url}{path}"
        try:
            response = self._session.request(
                method,
                url,
                json=json,
                params=params,
                timeout=self.timeout_s,
                headers={**self._auth, "Accept": "application/json", **(headers or {})},
            )
        except requests.Timeout:
            raise BackendTimeout(
                f"{self.service} at {self.base_url} did not answer within {self.timeout_s:g} s"
            ) from None
        except requests.RequestException:
            raise BackendUnreachable(f"{self.service} at {self.base_url} unreachable") from None
        status = response.status_code
        if status < 300:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                kind = (response.headers.get("Content-Type") or "no type").split(";")[0]
                raise BadResponse(
                    f"{self.service} at {self.base_url} answered {method} {path} "
                    f"with {status} and a body that is not JSON ({kind})"
                ) from None
        detail = _server_message(response)
        if status == 401:
            raise TokenRejected(f"token rejected (401) by {self.service} at {self.base_url}")
        if status == 403:
            raise Forbidden(f"token not allowed to do this (403) at {self.service}: {detail}")
        if status == 404:
            raise FlagNotFound(not_found)
        if status == 409:
            raise Conflict(f"{self.service} reports a conflicting change (409): {detail}")
        if status in (400, 422):
            raise InvalidValue(f"{self.service} refused the change ({status}): {detail}")
        error = ServerError(f"{self.service} at {self.base_url} failed ({status}): {detail}")
        error.retryable = status in RETRY_STATUSES
        raise error


@contextlib.contextmanager
def answer_shape(service: str, what: str) -> Iterator[None]:
    """Turn a KeyError/TypeError while reading a decoded answer into a BadResponse: an
    answer of an unexpected shape is the service's fault, not a traceback."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise BadResponse(
            f"{service} answered {what} in an unexpected shape ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or "no details"
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or response.reason or "no details")[:200]


def token_value(token: Secret | None, service: str) -> str:
    if not token:
        raise TokenRejected(f"no token configured for {service} (token_env or token_secret)")
    return token.reveal()
