"""Principals and roles: who is calling, and what each role may do in which namespaces.

Every caller is a :class:`Principal`: an API key, a verified JWT, or the bootstrap admin key.
What it may do is the union of its roles' actions (:data:`ROLE_ACTIONS`), in the namespaces
it is given (``*``: all). One question answers every route: ``principal.can(action,
namespace)``. A namespace the principal cannot read is one it must not learn exists: the edge
answers 404 there, whatever the action.
"""

from collections.abc import Iterable
from enum import StrEnum
from typing import Literal

import msgspec

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.identity import ALL_NAMESPACES
from parley.contracts.identity import Role

__all__ = [
    "ROLE_ACTIONS",
    "Action",
    "AuthenticationError",
    "Principal",
    "PrincipalKind",
    "Role",
]


class Action(StrEnum):
    """What a route does, as far as authorisation is concerned."""

    READ = "read"
    """Get, list, search (views, events, logs)."""
    SUBSCRIBE = "subscribe"
    """Follow a live feed: SSE, WebSocket."""
    CREATE = "create"
    """Create agents, clusters, personas, tasks, sessions."""
    CHANGE = "change"
    """Update a definition, scale, upload files."""
    DELETE = "delete"
    """Delete what it may create."""
    RUN = "run"
    """Start, stop, pause, resume; invoke an agent (this calls models)."""
    MESSAGE = "message"
    """Send messages, chat, publish custom events and webhooks."""
    DEPLOY = "deploy"
    """Apply manifests (clusters) and deployments."""
    MANAGE_KEYS = "manage_keys"
    """Create, list, rotate and revoke API keys; mint nothing it does not hold itself."""


_READ = frozenset({Action.READ, Action.SUBSCRIBE})
_OPERATE = _READ | {
    Action.CREATE,
    Action.CHANGE,
    Action.DELETE,
    Action.RUN,
    Action.MESSAGE,
    Action.DEPLOY,
}

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _READ,
    Role.OPERATOR: _OPERATE,
    Role.ADMIN: frozenset(Action),
}
"""Each role's actions; a principal may do the union of its roles'."""

PrincipalKind = Literal["key", "jwt", "bootstrap"]


class AuthenticationError(ParleyError):
    """A credential that does not authenticate: missing, malformed, unknown, expired, revoked.

    ``reason`` is short and safe to show the caller (it never contains the credential).
    """

    def __init__(self, reason: str, scheme: str = "ApiKey") -> None:
        super().__init__(ErrorCode.UNAUTHORIZED, f"not authenticated: {reason}", {"reason": reason})
        self.reason, self.scheme = reason, scheme


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller."""

    id: str
    """Stable id, recorded as the actor of what it does: ``key:<id>``, ``jwt:<iss>#<sub>``."""
    kind: PrincipalKind
    """How it authenticated."""
    roles: frozenset[Role]
    """Its roles."""
    namespaces: frozenset[str]
    """The namespaces it may act in; ``*`` is all."""
    name: str = ""
    """A label for people (the key's name, the token's subject)."""

    @property
    def everywhere(self) -> bool:
        """Whether it is given every namespace."""
        return ALL_NAMESPACES in self.namespaces

    @property
    def actions(self) -> frozenset[Action]:
        """Everything its roles allow."""
        return frozenset().union(*(ROLE_ACTIONS[role] for role in self.roles))

    def sees(self, namespace: str) -> bool:
        """Whether ``namespace`` is one of its namespaces (else: another's, a 404)."""
        return self.everywhere or namespace in self.namespaces

    def can(self, action: Action, namespace: str) -> bool:
        """Whether it may do ``action`` in ``namespace``."""
        return self.sees(namespace) and any(action in ROLE_ACTIONS[role] for role in self.roles)

    def visible(self, namespaces: Iterable[str]) -> list[str]:
        """The given namespaces it sees, in order (a list or filter narrowed to its walls)."""
        return [namespace for namespace in namespaces if self.sees(namespace)]

    def can_grant(self, namespaces: Iterable[str]) -> bool:
        """Whether it may create a key (of any role) for ``namespaces``: an admin, granting
        only namespaces it holds (``*`` only when it holds ``*``)."""
        if Role.ADMIN not in self.roles:
            return False
        return all(
            self.everywhere or (grant != ALL_NAMESPACES and grant in self.namespaces)
            for grant in namespaces
        )
