"""A2A Agent Cards (https://a2a-protocol.org, v1.0 card shape): what each running agent can
do, where to call it, and how to authenticate — for other agent systems to discover.

- ``GET /.well-known/agent-card.json`` is the platform's card. Its ``skills`` are the running
  agents the caller may see, one skill each (``id`` ``<namespace>/<agent id>``, ``tags`` its
  capabilities and tools), and its ``parley-agent-directory`` extension links each one's own
  card.
- ``GET /a2a/{namespace}/agents/{agent_id}/agent-card.json`` is one running agent's card: its
  capabilities and tools as skills, its chat route as its interface (the URL names the
  namespace, so it works as written), the API key and bearer schemes.

Who sees what: the namespace wall holds. A card names agents, so without credentials only
the namespaces an operator made public (``PARLEY_A2A_PUBLIC_NAMESPACES``) are shown; with a key
or token (the same headers as the API) the caller's own namespaces are shown too. A namespace
the caller does not see, an agent that is not running, an unknown agent: all the same ``404
AGENT_NOT_FOUND``. Bad credentials are ``401``, never a silent anonymous view. Calling an
agent still needs a key with the ``run`` action in its namespace: a public card is discovery,
not access.
"""

import functools
from collections.abc import Iterable
from typing import Annotated
from typing import Any

import msgspec
from litestar import Request
from litestar import Router
from litestar import get
from litestar.params import FromPath
from litestar.params import Parameter

from parley.contracts.registry import AgentState
from parley.contracts.registry import AgentView
from parley.contracts.tools import TOOL_CATALOGUE
from parley.edge.controllers.lookups import agent_not_found
from parley.edge.dependencies import Edge
from parley.edge.http.auth import LOCAL_ADMIN
from parley.edge.http.auth import unauthorized
from parley.edge.http.errors import error_responses
from parley.identity.authn import API_KEY_HEADER
from parley.identity.principal import Action
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal
from parley.kit.settings import from_env

__all__ = [
    "A2A_VERSION",
    "AgentCard",
    "A2ASettings",
    "a2a_router",
    "agent_card",
    "platform_card",
]

A2A_VERSION = "1.0"
"""The A2A protocol version whose Agent Card shape the cards follow."""
CHAT_BINDING = "PARLEY-CHAT+JSON"
"""The protocol binding of an agent's interface: Parley's chat route, `POST` `{"message"}` →
`{"data": {"response", …}}` (not one of A2A's own JSONRPC, GRPC or HTTP+JSON bindings)."""
DIRECTORY_EXTENSION = "https://parley.dev/a2a/extensions/agent-directory/v1"
"""The URI of the platform card's extension listing each agent's own card."""
TEXT = "text/plain"


class A2ASettings(msgspec.Struct, kw_only=True, frozen=True):
    """Who may read agent cards without credentials, and where cards say the edge is."""

    a2a_public_namespaces: str = ""
    """Namespaces whose running agents' cards anyone may read, comma-separated
    (`PARLEY_A2A_PUBLIC_NAMESPACES`); empty: cards need a key or token."""
    a2a_base_url: str = ""
    """The edge's URL as callers reach it (`PARLEY_A2A_BASE_URL`, e.g. behind a proxy
    `https://agents.example.com`); empty: the URL of the request."""

    def public(self) -> frozenset[str]:
        """The public namespaces."""
        return frozenset(n.strip() for n in self.a2a_public_namespaces.split(",") if n.strip())


class _Camel(msgspec.Struct, kw_only=True, rename="camel"):
    """A part of the card, its fields in the protocol's camelCase."""


class AgentInterface(_Camel):
    """Where and how to call the agent."""

    url: str
    """The agent's chat route, namespace included."""
    protocol_binding: str = CHAT_BINDING
    """How to call it: Parley's chat route."""
    tenant: str = ""
    """The agent's namespace."""
    protocol_version: str = A2A_VERSION
    """The A2A version of the card."""


class AgentProvider(_Camel):
    """Who runs the agent."""

    url: str
    """The edge."""
    organization: str = "Parley"


class AgentExtension(_Camel):
    """A protocol extension the card uses."""

    uri: str
    description: str = ""
    required: bool = False
    params: dict[str, Any] = {}


class AgentCapabilities(_Camel):
    """Optional A2A features."""

    streaming: bool = True
    """Turns stream as Server-Sent Events (`/chat/stream`)."""
    push_notifications: bool = False
    extended_agent_card: bool = False
    """The platform card: credentials show the caller's namespaces too."""
    extensions: list[AgentExtension] = []


class AgentSkill(_Camel):
    """One thing the agent does: a capability, a tool, or (platform card) an agent."""

    id: str
    name: str
    description: str
    tags: list[str]
    examples: list[str] = []


class ApiKeyScheme(_Camel):
    """An API key in a header."""

    location: str = "header"
    name: str = API_KEY_HEADER
    description: str = "A Parley API key (POST /api/v1/keys)."


class HttpAuthScheme(_Camel):
    """A bearer token: an API key, or a JWT of the operator's identity provider."""

    scheme: str = "Bearer"
    bearer_format: str = "JWT"
    description: str = "Authorization: Bearer <API key or JWT>."


class SecurityScheme(_Camel, omit_defaults=True):
    """One of the ways to authenticate (exactly one member set)."""

    api_key_security_scheme: ApiKeyScheme | None = None
    http_auth_security_scheme: HttpAuthScheme | None = None


class StringList(msgspec.Struct, kw_only=True):
    """Scopes a scheme needs (none here)."""

    scopes: list[str] = msgspec.field(default_factory=list, name="list")


class SecurityRequirement(_Camel):
    """A set of schemes that together authenticate."""

    schemes: dict[str, StringList]


class AgentCard(_Camel):
    """An A2A Agent Card (v1.0): identity, interfaces, capabilities, skills, security."""

    name: str
    description: str
    supported_interfaces: list[AgentInterface]
    """Where to call it; the first is preferred."""
    provider: AgentProvider
    version: str
    """The agent's definition version (the platform card: the A2A version)."""
    documentation_url: str
    capabilities: AgentCapabilities
    security_schemes: dict[str, SecurityScheme]
    security_requirements: list[SecurityRequirement]
    default_input_modes: list[str]
    default_output_modes: list[str]
    skills: list[AgentSkill]


_SCHEMES = {
    "apiKey": SecurityScheme(api_key_security_scheme=ApiKeyScheme()),
    "bearer": SecurityScheme(http_auth_security_scheme=HttpAuthScheme()),
}
_REQUIREMENTS = [SecurityRequirement(schemes={name: StringList()}) for name in _SCHEMES]


def _card(base: str, **fields: Any) -> AgentCard:
    """A card with ``fields`` and what every card of this edge says: provider, docs, the
    security schemes, text in and out."""
    return AgentCard(
        provider=AgentProvider(url=base),
        documentation_url=f"{base}/schema",
        security_schemes=_SCHEMES,
        security_requirements=_REQUIREMENTS,
        default_input_modes=[TEXT],
        default_output_modes=[TEXT],
        **fields,
    )


def _card_url(base: str, namespace: str, agent_id: str) -> str:
    return f"{base}/a2a/{namespace}/agents/{agent_id}/agent-card.json"


def _skills_of(view: AgentView) -> list[AgentSkill]:
    """The agent's capabilities, then its tools; a plain chat skill when it has neither."""
    skills = [
        AgentSkill(
            id=capability,
            name=capability,
            description=f"{view.name} offers {capability!r} (tasks and messages route by it)",
            tags=[capability, "capability"],
        )
        for capability in view.spec.capabilities
    ]
    for tool in view.spec.tools:
        known = TOOL_CATALOGUE.get(tool.name)
        skills.append(
            AgentSkill(
                id=f"tool:{tool.name}",
                name=tool.name,
                description=known.description if known else f"the {tool.name} tool",
                tags=[tool.name, "tool", *([known.category] if known else [])],
            )
        )
    return skills or [
        AgentSkill(id="chat", name="chat", description=f"Chat with {view.name}", tags=["chat"])
    ]


def agent_card(view: AgentView, base: str) -> AgentCard:
    """The card of the running agent ``view``, with URLs under ``base``."""
    chat = f"{base}/api/v1/agents/{view.id}/chat?namespace={view.namespace}"
    return _card(
        base,
        name=view.name,
        description=view.spec.description or f"{view.name}, a Parley agent ({view.spec.model})",
        supported_interfaces=[AgentInterface(url=chat, tenant=view.namespace)],
        version=str(view.version),
        capabilities=AgentCapabilities(),
        skills=_skills_of(view),
    )


def platform_card(views: Iterable[AgentView], base: str) -> AgentCard:
    """The platform's card: one skill per agent of ``views``, each linked to its own card."""
    agents = sorted(views, key=lambda v: (v.namespace, v.name))
    skills = [
        AgentSkill(
            id=f"{view.namespace}/{view.id}",
            name=view.name,
            description=view.spec.description or f"Chat with {view.name}",
            tags=[*view.spec.capabilities, *(tool.name for tool in view.spec.tools)],
        )
        for view in agents
    ]
    directory = [
        {
            "namespace": v.namespace,
            "id": v.id,
            "name": v.name,
            "card": _card_url(base, v.namespace, v.id),
        }
        for v in agents
    ]
    return _card(
        base,
        name="Parley",
        description="An event-sourced platform for fleets of LLM agents. Each skill is a running"
        " agent; its own card (the agent-directory extension) says how to call it.",
        supported_interfaces=[
            AgentInterface(url=f"{base}/api/v1/messages", protocol_binding="PARLEY-ACL+JSON")
        ],
        version=A2A_VERSION,
        capabilities=AgentCapabilities(
            streaming=False,
            extended_agent_card=True,
            extensions=[
                AgentExtension(
                    uri=DIRECTORY_EXTENSION,
                    description="The running agents this card lists, each with its card's URL.",
                    params={"agents": directory},
                )
            ],
        ),
        skills=skills,
    )


class _Cards:
    """What one request may see: the caller (if any) and the namespaces open to it."""

    def __init__(self, edge: Edge, settings: A2ASettings, caller: Principal | None) -> None:
        self.edge, self.caller, self.public = edge, caller, settings.public()

    def sees(self, namespace: str) -> bool:
        who = self.caller
        return namespace in self.public or (
            who is not None and who.sees(namespace) and who.can(Action.READ, namespace)
        )

    def namespaces(self) -> list[str]:
        """Every namespace with agents this caller may see cards of."""
        known = self.edge.agents.namespaces()
        return sorted(n for n in known if self.sees(n))

    def running(self, namespace: str) -> list[AgentView]:
        return [v for v in self.edge.agents.agents(namespace) if v.state == AgentState.RUNNING]

    def one(self, namespace: str, agent_id: str) -> AgentView:
        view = self.edge.agents.get(namespace, agent_id) if self.sees(namespace) else None
        if view is None or view.state != AgentState.RUNNING:
            raise agent_not_found(agent_id, namespace)
        return view


async def _caller(request: Request[Any, Any, Any], edge: Edge) -> Principal | None:
    """The caller's principal, ``None`` without credentials; ``401`` for bad ones."""
    if edge.settings.auth == "off":
        return LOCAL_ADMIN
    api_key, authorization = (
        request.headers.get(API_KEY_HEADER),
        request.headers.get("authorization"),
    )
    if not api_key and not authorization:
        return None
    try:
        found: Principal = await edge.authenticator.authenticate(api_key, authorization)
    except AuthenticationError as exc:
        raise unauthorized(exc) from None
    return found


async def _cards(request: Request[Any, Any, Any]) -> tuple[_Cards, str]:
    edge = Edge.of(request.app.state)
    settings = a2a_settings()
    base = settings.a2a_base_url.rstrip("/") or str(request.base_url).rstrip("/")
    return _Cards(edge, settings, await _caller(request, edge)), base


_NAMESPACE = Parameter(
    required=False,
    pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    description="List only this namespace's agents (one the caller sees, or a public one).",
)


@get(
    "/.well-known/agent-card.json",
    summary="The platform's A2A Agent Card",
    description="One skill per running agent the caller sees (public namespaces without"
    " credentials; with `X-API-Key` or a bearer token, the caller's namespaces too), each"
    " linked to its own card in the `agent-directory` extension.",
    responses=error_responses(401, 422),
)
async def well_known_card(
    request: Request[Any, Any, Any], namespace: Annotated[str | None, _NAMESPACE] = None
) -> AgentCard:
    """The platform's Agent Card."""
    cards, base = await _cards(request)
    if namespace is not None:
        shown = [namespace] if cards.sees(namespace) else []
    else:
        shown = cards.namespaces()
    return platform_card((v for ns in shown for v in cards.running(ns)), base)


@get(
    "/a2a/{card_namespace:str}/agents/{agent_id:str}/agent-card.json",
    summary="A running agent's A2A Agent Card",
    description="Its capabilities and tools as skills, its chat route as its interface, the"
    " API key and bearer schemes. `404 AGENT_NOT_FOUND` for an agent that is not running, or"
    " of a namespace the caller does not see.",
    responses=error_responses(401, 404),
)
async def agent_card_route(
    request: Request[Any, Any, Any], card_namespace: FromPath[str], agent_id: FromPath[str]
) -> AgentCard:
    """One running agent's Agent Card."""
    cards, base = await _cards(request)
    return agent_card(cards.one(card_namespace, agent_id), base)


a2a_router = Router(path="/", route_handlers=[well_known_card, agent_card_route], tags=["a2a"])
"""The A2A card routes (public to the auth guard: they check the caller themselves)."""


@functools.cache
def a2a_settings() -> A2ASettings:
    """The A2A settings from the environment."""
    return from_env(A2ASettings)
