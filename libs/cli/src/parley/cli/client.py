"""The HTTP client every API command uses: one ``httpx.Client`` holding the key and the
namespace, answers unwrapped from ``{"data": …}``, errors turned into :class:`CliFailure`
with the server's code and message, lists followed across pages, SSE streams read with
``httpx-sse``."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from httpx_sse import ServerSentEvent
from httpx_sse import connect_sse

from parley.cli.config import Target
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit
from parley.cli.exits import exit_for_status

__all__ = ["Api", "failure_of", "given"]

_PAGE = 200
_RETRIES = 4
_LONGEST_WAIT = 5.0


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds the server asks to wait before trying again, if that is short."""
    try:
        wait = float(response.headers.get("retry-after", "1"))
    except ValueError:
        return None
    return wait if 0 <= wait <= _LONGEST_WAIT else None


def given(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without those not given (``None``): a body or query as a command sends it."""
    return {k: v for k, v in fields.items() if v is not None}


def failure_of(response: httpx.Response) -> CliFailure:
    """The error envelope of ``response`` as a failure (any body: a proxy's HTML too)."""
    status = response.status_code
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = (
            f"HTTP_{status}",
            response.text[:200] or response.reason_phrase,
            None,
        )
    if status == 401:
        message += " (check PARLEY_API_KEY or run `parley login`)"
    return CliFailure(code, message, exit_for_status(status), details)


class Api:
    """The edge at ``target.url``, as the key and namespace of ``target``."""

    def __init__(self, target: Target, timeout: float = 30.0) -> None:
        headers = {"User-Agent": "parley-cli"}
        if target.api_key:
            headers["X-API-Key"] = target.api_key
        if target.namespace:
            headers["X-Parley-Namespace"] = target.namespace
        self.url = target.url
        self.http = httpx.Client(base_url=target.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request; a non-2xx answer, a timeout or no connection raises a failure.

        A `429` (nothing was done) is tried again after its `Retry-After`, and so is a `503`
        of a `GET`, up to :data:`_RETRIES` times, when the wait is short.
        """
        for attempt in range(1, _RETRIES + 1):
            response = self._once(method, path, options)
            wait = _retry_after(response)
            retryable = response.status_code == 429 or (
                response.status_code == 503 and method == "GET"
            )
            if not retryable or wait is None or attempt == _RETRIES:
                break
            time.sleep(wait)
        if response.status_code >= 400:
            raise failure_of(response)
        return response

    def _once(self, method: str, path: str, options: dict[str, Any]) -> httpx.Response:
        try:
            return self.http.request(method, path, **options)
        except httpx.TimeoutException:
            raise CliFailure(
                "TIMEOUT", f"{self.url} did not answer in time", Exit.TIMEOUT
            ) from None
        except httpx.HTTPError as exc:
            raise CliFailure(
                "UNREACHABLE",
                f"cannot reach {self.url}: {exc} (PARLEY_URL or `parley login` name another)",
                Exit.FAILED,
            ) from None

    def data(self, method: str, path: str, **options: Any) -> Any:
        """The ``data`` of the answer (``None`` for an empty one)."""
        response = self.call(method, path, **options)
        return response.json()["data"] if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` with query ``params`` (``None`` values left out)."""
        return self.data("GET", path, params=given(params))

    def post(self, path: str, body: Any = None, **options: Any) -> Any:
        """``POST path`` with a JSON ``body`` (or none)."""
        return self.data("POST", path, json=body, **options)

    def act(self, path: str, **fields: Any) -> Any:
        """``POST path`` (an action) with those of ``fields`` that are set; no body when none is."""
        return self.post(path, {k: v for k, v in fields.items() if v} or None)

    def upload(self, path: str, text: str, media_type: str, **options: Any) -> Any:
        """``POST path`` with a document as it was written (TOML, JSON or YAML)."""
        headers = {"Content-Type": media_type}
        return self.data("POST", path, content=text.encode(), headers=headers, **options)

    def items(self, path: str, params: dict[str, Any], limit: int | None = None) -> list[Any]:
        """Every item of a paginated list (at most ``limit``), following ``next_cursor``."""
        query = {k: v for k, v in params.items() if v is not None and v != []}
        found: list[Any] = []
        while True:
            query["limit"] = min(_PAGE, limit - len(found)) if limit else _PAGE
            page = self.call("GET", path, params=query).json()
            found += page["data"]
            pagination = page.get("pagination") or {}
            if (limit and len(found) >= limit) or not pagination.get("has_more"):
                return found
            query["cursor"] = pagination["next_cursor"]

    @contextmanager
    def sse(self, method: str, path: str, **options: Any) -> Iterator[Iterator[ServerSentEvent]]:
        """The events of a Server-Sent Events answer; an error answer raises first."""
        options.setdefault("timeout", httpx.Timeout(30.0, read=None))
        try:
            with connect_sse(self.http, method, path, **options) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise failure_of(source.response)
                yield source.iter_sse()
        except httpx.TimeoutException:
            raise CliFailure(
                "TIMEOUT", f"{self.url} did not answer in time", Exit.TIMEOUT
            ) from None
        except httpx.HTTPError as exc:
            raise CliFailure("UNREACHABLE", f"lost {self.url}: {exc}", Exit.FAILED) from None
