"""Wiring: the edge's Litestar app. No connections at import time.

On start-up the app connects to NATS, opens the event store on that connection, and starts
its projections (agents, personas, runtime, clusters, messages, tasks) on one shared
subscription; on shutdown it stops them, then the store. ``app.state.edge`` holds them all
(:class:`~parley.edge.dependencies.Edge`); handlers get its parts as typed dependencies.
``app.state.keeper`` (:class:`~parley.kit.needs.Keeper`) keeps the edge's KV buckets (tickets,
rate-limit counters) on NATS across server restarts and tells ``/ready`` what works.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State

from parley.contracts import subjects
from parley.edge.commands import CommandClient
from parley.edge.console import console_routes
from parley.edge.controllers.a2a import a2a_router
from parley.edge.controllers.agent_actions import agent_action_router
from parley.edge.controllers.agents import agent_router
from parley.edge.controllers.catalogue import model_router
from parley.edge.controllers.catalogue import strategy_router
from parley.edge.controllers.catalogue import tool_router
from parley.edge.controllers.chat import chat_router
from parley.edge.controllers.clusters import cluster_router
from parley.edge.controllers.deployments import deployment_router
from parley.edge.controllers.deployments import reload_router
from parley.edge.controllers.events import publish_event
from parley.edge.controllers.executions import execution_router
from parley.edge.controllers.files import file_router
from parley.edge.controllers.health import health_routes
from parley.edge.controllers.keys import identity_routes
from parley.edge.controllers.keys import record_key_use
from parley.edge.controllers.memory import MemoryPlugin
from parley.edge.controllers.messages import message_router
from parley.edge.controllers.metrics import platform_metrics_router
from parley.edge.controllers.observability import metrics_router
from parley.edge.controllers.observability import output_router
from parley.edge.controllers.personas import persona_router
from parley.edge.controllers.prometheus import metrics_registry
from parley.edge.controllers.prometheus import prometheus_metrics
from parley.edge.controllers.replay_agentc import replay_routes
from parley.edge.controllers.runs import run_router
from parley.edge.controllers.session_chat import session_chat_router
from parley.edge.controllers.sessions import session_router
from parley.edge.controllers.tasks import task_router
from parley.edge.controllers.versions import version_router
from parley.edge.dependencies import DEPENDENCIES
from parley.edge.dependencies import Edge
from parley.edge.http.agent_names import agent_by_name
from parley.edge.http.allow import fix_allow
from parley.edge.http.auth import auth_middleware
from parley.edge.http.auth import authorize
from parley.edge.http.bodytimeout import BodyTimeout
from parley.edge.http.errors import exception_handlers
from parley.edge.http.guards import in_order
from parley.edge.http.limits import Limits
from parley.edge.http.limits import add_rate_limit_headers
from parley.edge.http.openapi import document_bodies
from parley.edge.http.openapi import document_responses
from parley.edge.http.openapi import document_security
from parley.edge.http.openapi import openapi_config
from parley.edge.http.query import refuse_unknown_query
from parley.edge.http.ratelimit import WindowCounter
from parley.edge.http.request_ids import add_request_id_header
from parley.edge.http.security import HostPolicy
from parley.edge.http.security import add_security_headers
from parley.edge.http.security import cors_config
from parley.edge.http.tracing import TraceContext
from parley.edge.http.tracing import tracing_plugin
from parley.edge.projections.agents import AgentsProjection
from parley.edge.projections.clusters import ClustersProjection
from parley.edge.projections.messages import MessagesProjection
from parley.edge.projections.metrics import PlatformMetrics
from parley.edge.projections.personas import PersonasProjection
from parley.edge.projections.positions import SeenPositions
from parley.edge.projections.runtime import RuntimeProjection
from parley.edge.projections.tasks import TasksProjection
from parley.edge.settings import EdgeSettings
from parley.edge.settings import check_auth
from parley.edge.streams.chat_ws import chat_ws_routes
from parley.edge.streams.hub import Hub
from parley.edge.streams.sse import event_routes
from parley.edge.streams.ws import ws_routes
from parley.eventstore.follower import FollowerGroup
from parley.identity.authn import Authenticator
from parley.identity.bearer import BearerVerifier
from parley.identity.bearer import JwtSettings
from parley.identity.keyindex import KeyIndex
from parley.identity.tickets import TicketStore
from parley.kit.connect import connect_nats
from parley.kit.connect import open_service_store
from parley.kit.needs import Keeper
from parley.kit.needs import Need
from parley.kit.settings import from_env

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: EdgeSettings) -> Litestar:
    """The edge: REST, SSE and WebSocket over the platform's commands and projections.

    Raises:
        SettingsError: authentication off on an address that is not loopback.
    """
    check_auth(settings)
    recording = settings.otlp_endpoint is not None  # spans exported: the full instrumentation

    limits = Limits(settings)  # rate limits per principal, quotas per namespace
    keeper = Keeper(check_every=1.0)

    @asynccontextmanager
    async def connections(app: Litestar) -> AsyncIterator[None]:
        nc = await connect_nats(settings, "parley-edge", keeper, connect_timeout=5)
        try:
            store = await open_service_store(settings, nc)
            commands = CommandClient(nc, settings.command_timeout)
            keys, tickets = (
                KeyIndex(store),
                TicketStore(nc.jetstream(), replicas=settings.nats_replicas),
            )
            keeper.open(nc, store)
            await keeper.need(Need.key_value(subjects.TICKETS_BUCKET, tickets.start))
            if limits.rate is not None or limits.model_rate is not None:
                counter = WindowCounter(
                    nc.jetstream(), ttl=limits.ttl, replicas=settings.nats_replicas
                )
                await keeper.need(Need.key_value(subjects.RATE_BUCKET, counter.start))
            authenticator = Authenticator(
                keys,
                await BearerVerifier.start(from_env(JwtSettings)),
                on_key_use=lambda key_id: record_key_use(commands, keys, key_id),
            )
            edge = Edge(
                settings=settings,
                nc=nc,
                store=store,
                commands=commands,
                agents=AgentsProjection(store),
                personas=PersonasProjection(store),
                runtime=RuntimeProjection(store),
                clusters=ClustersProjection(store),
                messages=MessagesProjection(store),
                tasks=TasksProjection(store),
                keys=keys,
                authenticator=authenticator,
                tickets=tickets,
                hub=Hub(store),
                positions=SeenPositions(store),
            )
            metrics = PlatformMetrics(store, nc.jetstream(), edge.agents, edge.clusters)
            app.state.metrics, app.state.metrics_registry = (
                metrics,
                metrics_registry(metrics, edge.hub),
            )
            views = FollowerGroup(
                store,
                [
                    edge.agents,
                    edge.personas,
                    edge.runtime,
                    edge.clusters,
                    edge.messages,
                    edge.tasks,
                    edge.keys,
                    metrics.counts,
                    edge.positions,
                ],
                name="edge-views",
            )
            app.state.edge = edge
            app.state.keeper = keeper
            await views.start()  # one subscription feeds every projection
            await metrics.queues.start()
            keeper.start()
            try:
                yield
            finally:
                keeper.stopping()
                await keeper.stop()
                await metrics.queues.stop()
                await views.stop()
                await edge.hub.stop()
                await authenticator.close()
                await store.close()
        finally:
            if not nc.is_closed:
                await nc.drain()

    return Litestar(
        route_handlers=[
            *health_routes,
            agent_router,
            agent_action_router,
            model_router,
            tool_router,
            strategy_router,
            persona_router,
            cluster_router,
            chat_router,
            *chat_ws_routes,
            execution_router,
            output_router,
            metrics_router,
            platform_metrics_router,
            prometheus_metrics,
            session_router,
            session_chat_router,
            file_router,
            *replay_routes,  # session events, JSONL, replays (and Agent C's spellings)
            message_router,
            task_router,
            run_router,
            version_router,
            deployment_router,
            reload_router,
            *event_routes,
            publish_event,
            *ws_routes,
            *identity_routes,
            a2a_router,  # A2A agent cards: /.well-known/agent-card.json, /a2a/…
            *console_routes(),  # the live console: /console pages, /api/v1/console views
        ],
        dependencies=DEPENDENCIES,
        guards=[  # roles, namespaces, query, counters
            in_order(
                authorize,
                agent_by_name,  # `/agents/{name}/...` is the agent of that name
                refuse_unknown_query,
                limits.guard,
            )
        ],
        lifespan=[connections],
        on_startup=[fix_allow, document_bodies, document_security, document_responses],
        state=State({"settings": settings}),
        exception_handlers=exception_handlers,
        before_send=[add_request_id_header, add_security_headers, add_rate_limit_headers],
        cors_config=cors_config(settings.cors_origins),  # closed unless origins are listed
        middleware=[
            *([] if recording else [TraceContext()]),  # else the plugin's span, below
            BodyTimeout(settings.body_timeout_s, settings.body_idle_timeout_s),
            HostPolicy(settings.hosts()),  # ports included
            auth_middleware(),  # the principal in scope["user"]: for the guards below
        ],
        # the request's server span, the root of its trace; agents' memory
        plugins=[*([tracing_plugin()] if recording else []), MemoryPlugin()],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        logging_config=None,
    )
