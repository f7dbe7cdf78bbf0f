"""Limits on what one caller may consume: rate limits per principal, per-namespace quotas.

:class:`Limits` is one app-level guard (guards run after every middleware, so the
authentication middleware has already put the caller's principal in ``scope["user"]``):

- **Rate limits.** Every request counts against its caller's window: the principal when the
  request is authenticated, else the client address. Requests to the routes that call models
  (:data:`MODEL_ROUTES`: chat and its streams, webhooks, agent actions, execution input,
  messages, task distribution, cluster runs) count against a separate, lower limit
  (``PARLEY_MODEL_RATE_LIMIT``) instead of the general one (``PARLEY_RATE_LIMIT``). The
  windows live in NATS KV (:mod:`parley.edge.http.ratelimit`), so the limits hold across
  every edge process. Each limited response carries ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds until the window ends); a
  request over the limit is ``429 RATE_LIMITED`` with ``Retry-After``. Health, readiness and
  the docs are never limited. A chat WebSocket's handshake counts against the general limit
  and each message it carries against the model limit (:func:`count_model_use`).
- **Agents per namespace** (``PARLEY_QUOTA_MAX_AGENTS``): creating an agent, or deploying a
  cluster whose manifest expands to agents, in a namespace that would then hold more than
  that many is ``403 QUOTA_EXCEEDED``, checked against the agents projection before any
  command is sent. It is a soft limit: creates in flight at the same moment may each see
  room (the registry's decide is where an exact one would live).
"""

import logging
import re
from typing import Any

import nats.errors
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Message
from litestar.types import Scope

from parley.aggregates.cluster import agent_specs
from parley.contracts.clusters import ClusterManifest
from parley.contracts.errors import ErrorCode
from parley.edge.dependencies import Edge
from parley.edge.dependencies import provide_namespace
from parley.edge.http.body import decode_body
from parley.edge.http.errors import ApiError
from parley.edge.http.ratelimit import Rate
from parley.edge.http.ratelimit import Verdict
from parley.edge.http.ratelimit import WindowCounter
from parley.edge.http.ratelimit import caller_key
from parley.edge.http.security import DOCS_PREFIX
from parley.edge.settings import EdgeSettings

__all__ = [
    "MODEL_ROUTES",
    "UNLIMITED",
    "Limits",
    "add_rate_limit_headers",
    "caller",
    "check_agents_quota",
    "count_model_use",
]

log = logging.getLogger(__name__)

MODEL_ROUTES = re.compile(
    r"^/api/v1/(?:"
    r"(?:agents|sessions)/[^/]+/(?:chat(?:/stream)?|webhook|actions)"
    r"|agents/[^/]+/executions/[^/]+/input"
    r"|messages"
    r"|tasks/[^/]+/distribute"
    r"|clusters/[^/]+/runs"
    r")/?$"
)
"""Paths whose ``POST`` calls a model (or starts work that does)."""

UNLIMITED = ("/health", "/livez", "/ready", "/readyz", "/metrics", DOCS_PREFIX)
"""Paths (and, for the docs, everything below) that are never rate limited."""

_CREATES_AGENTS = re.compile(r"^/api/v1/(?:agents|clusters)/?$")
_SCOPE_KEY = "parley_rate_limit"
_LIMITS_KEY = "parley_limits"


def caller(scope: Scope) -> str:
    """The KV key of the caller: its principal's id, else the client's address."""
    user = scope.get("user")
    ident = getattr(user, "id", None)
    if isinstance(ident, str) and ident:
        return caller_key("p", ident)
    client = scope.get("client")
    return caller_key("ip", client[0] if client else "unknown")


def _unlimited(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in UNLIMITED)


class Limits:
    """The app's limits guard (see the module doc); :meth:`guard` is the Litestar guard."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.rate = Rate.parse(settings.rate_limit)
        self.model_rate = Rate.parse(settings.model_rate_limit)
        self.max_agents = settings.quota_max_agents
        periods = [r.period for r in (self.rate, self.model_rate) if r is not None]
        self.ttl = max([60.0, *(2 * p for p in periods)])
        self._counter: WindowCounter | None = None

    async def guard(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        """Count the request; refuse it over its rate limit or its namespace's quota.

        Raises:
            ApiError: ``429 RATE_LIMITED``, ``403 QUOTA_EXCEEDED``, or ``503
                SERVICE_UNAVAILABLE`` when the shared counters cannot be reached.
        """
        path = connection.scope["path"]
        if _unlimited(path):
            return
        connection.scope[_LIMITS_KEY] = self  # type: ignore[literal-required]
        method = connection.scope.get("method", "GET")
        model = method == "POST" and MODEL_ROUTES.match(path) is not None
        rate = self.model_rate if model else self.rate
        if rate is not None:
            verdict = await self._count(connection, "model" if model else "api", rate)
            connection.scope[_SCOPE_KEY] = verdict  # type: ignore[literal-required]
            if not verdict.allowed:
                raise _limited(verdict, rate, " to model-calling routes" if model else "")
        if self.max_agents and method == "POST" and _CREATES_AGENTS.match(path):
            await self._check_agents_quota(connection)

    async def count_model_use(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Count one model call started within an open connection (a chat socket's message)
        against the caller's model limit.

        Raises:
            ApiError: ``429 RATE_LIMITED`` (``details.retry_after_s``: when to try again),
                or ``503 SERVICE_UNAVAILABLE`` when the shared counters cannot be reached.
        """
        if self.model_rate is not None:
            verdict = await self._count(connection, "model", self.model_rate)
            if not verdict.allowed:
                raise _limited(verdict, self.model_rate, " to models")

    async def _count(
        self, connection: ASGIConnection[Any, Any, Any, Any], kind: str, rate: Rate
    ) -> Verdict:
        try:
            counter = await self._counter_of(connection)
            return await counter.hit(f"{kind}.{caller(connection.scope)}", rate)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("rate-limit counters unreachable: %r", exc)
            raise ApiError(
                ErrorCode.SERVICE_UNAVAILABLE,
                "rate limits cannot be checked right now; retry shortly",
                headers={"Retry-After": "1"},
            ) from None

    async def _counter_of(self, connection: ASGIConnection[Any, Any, Any, Any]) -> WindowCounter:
        if self._counter is None:
            edge = Edge.of(connection.app.state)
            counter = WindowCounter(
                edge.nc.jetstream(), ttl=self.ttl, replicas=edge.settings.nats_replicas
            )
            await counter.start()
            self._counter = self._counter or counter
        return self._counter

    async def _check_agents_quota(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        namespace, wanted = await _agents_wanted(connection)
        held = sum(1 for _ in Edge.of(connection.app.state).agents.agents(namespace))
        check_agents_quota(namespace, held, wanted, self.max_agents)


def check_agents_quota(namespace: str, held: int, wanted: int, limit: int) -> None:
    """Refuse ``wanted`` more agents in ``namespace``, which holds ``held``, past its quota
    ``limit`` (0: no limit).

    Raises:
        ApiError: ``403 QUOTA_EXCEEDED`` naming the figures.
    """
    if limit and wanted > 0 and held + wanted > limit:
        raise ApiError(
            ErrorCode.QUOTA_EXCEEDED,
            f"namespace {namespace} holds {held} agents and its quota is {limit};"
            f" {wanted} more would exceed it (PARLEY_QUOTA_MAX_AGENTS)",
            {"quota": "agents", "limit": limit, "namespace": namespace},
        )


async def count_model_use(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """:meth:`Limits.count_model_use` with the app's limits (none: nothing to count).

    Raises:
        ApiError: ``429 RATE_LIMITED`` or ``503 SERVICE_UNAVAILABLE``.
    """
    limits = connection.scope.get(_LIMITS_KEY)
    if isinstance(limits, Limits):
        await limits.count_model_use(connection)


def _limited(verdict: Verdict, rate: Rate, what: str) -> ApiError:
    headers = verdict.headers()
    return ApiError(
        ErrorCode.RATE_LIMITED,
        f"rate limit exceeded: {verdict.limit} requests per {rate.period:g} s{what};"
        " retry after the Retry-After seconds",
        {
            "limit": verdict.limit,
            "period_s": rate.period,
            "retry_after_s": int(headers["X-RateLimit-Reset"]),
        },
        headers=headers,
    )


async def _agents_wanted(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, int]:
    """The namespace a create is for, and how many agents it would add."""
    explicit = connection.headers.get("x-parley-namespace")
    query = connection.query_params.get("namespace")
    if not connection.scope["path"].startswith("/api/v1/clusters") or not isinstance(
        connection, Request
    ):
        return await provide_namespace(explicit, query), 1
    # A cluster's namespace is the request's, else its manifest's (as create_cluster reads
    # it); the body is cached in the scope, so the handler decodes the same bytes again.
    manifest = await decode_body(connection, ClusterManifest)
    namespace = (explicit or query) and await provide_namespace(explicit, query)
    return namespace or manifest.metadata.namespace, len(agent_specs(manifest))


async def add_rate_limit_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: the request's ``X-RateLimit-*`` headers on its response."""
    verdict = scope.get(_SCOPE_KEY)
    if message["type"] != "http.response.start" or not isinstance(verdict, Verdict):
        return
    headers = list(message.get("headers") or [])
    present = {key.lower() for key, _ in headers}
    for name, value in verdict.headers().items():
        if name.lower().encode() not in present:
            headers.append((name.lower().encode(), value.encode()))
    message["headers"] = headers
