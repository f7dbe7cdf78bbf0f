"""The registry's agent and persona handlers: decode → repository.execute(decide) → reply.

Each handler takes a decoded command and returns a reply; the app turns errors into error
replies in one place (:func:`reply_for_error`). The deciders are the aggregates'
(:mod:`parley.aggregates`); every load, append and retry goes through a
:class:`~parley.eventstore.repository.Repository`, whose cache keeps each agent's folded
state between commands.
"""

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from typing import TypeVar

import msgspec

from parley.aggregates import agent
from parley.aggregates import apikey
from parley.aggregates import cluster
from parley.aggregates import memory
from parley.aggregates import name_claim
from parley.aggregates import persona
from parley.aggregates.agent import Agent
from parley.aggregates.agent import name_change
from parley.aggregates.apikey import ApiKey
from parley.aggregates.cluster import Cluster
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.aggregates.decision import to_new_events
from parley.aggregates.memory import Memory
from parley.aggregates.name_claim import Claim
from parley.aggregates.name_claim import NameClaim
from parley.aggregates.name_claim import Release
from parley.aggregates.persona import Persona
from parley.contracts.envelope import NewEvent
from parley.contracts.envelope import utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import new_id
from parley.contracts.personas import CreatePersona
from parley.contracts.personas import DeletePersona
from parley.contracts.personas import load_builtin_personas
from parley.contracts.personas import persona_stream
from parley.contracts.registry import AgentActionCommand
from parley.contracts.registry import CommandReply
from parley.contracts.registry import CreateAgent
from parley.contracts.registry import DeleteAgent
from parley.contracts.registry import RegistryCommand
from parley.contracts.registry import UpdateAgent
from parley.contracts.registry import agent_stream
from parley.contracts.registry import name_stream
from parley.eventstore import EventStore
from parley.eventstore.repository import Loaded
from parley.eventstore.repository import Outcome
from parley.eventstore.repository import Repository
from parley.kit.errors import error_body_for
from parley.kit.telemetry import current_traceparent
from parley.registry.domain import SOURCE
from parley.registry.domain import claim_in_flight

__all__ = ["Registry", "execute", "reply_for_error"]

log = logging.getLogger(__name__)

S = TypeVar("S")
C = TypeVar("C")

AGENTS_CACHED = 100_000
"""Agents whose folded state the registry keeps between commands."""


class Origin(Protocol):
    """What caused a command: its namespace and the edge's request id (every wire command)."""

    @property
    def namespace(self) -> str: ...

    @property
    def request_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Untraced:
    """The origin of a name claim's events: a namespace, no correlation id, no trace."""

    namespace: str
    request_id: None = None


async def execute(
    repository: Repository[S],
    stream: str,
    decide: Callable[[S | None, C, Context], Decision[Any]],
    command: C,
    *,
    subject: str,
    origin: Origin,
) -> Outcome[S]:
    """Decide ``command`` on ``stream`` with the aggregate's ``decide`` and append.

    Each try decides at its own time; the events carry ``subject``, the origin's namespace
    and request id (as correlation id) and, unless :class:`Untraced`, the trace context.
    The origin's ``expected_version`` (a client's ``If-Match``), when it has one, is checked.
    """
    traceparent = None if isinstance(origin, Untraced) else current_traceparent()

    def decider(state: S | None) -> list[NewEvent]:
        ctx = Context()
        return to_new_events(
            decide(state, command, ctx).events,
            subject=subject,
            namespace=origin.namespace,
            source=SOURCE,
            now=ctx.now,
            correlationid=origin.request_id,
            traceparent=traceparent,
        )

    expected_version: int | None = getattr(origin, "expected_version", None)
    return await repository.execute(stream, decider, expected_version=expected_version)


class _Held(Exception):
    """A name's claim has a holder (see :meth:`Registry._claim_unheld`)."""


class Registry:
    """Agent, name and persona commands over an event store (clusters: :mod:`.clusters`,
    API keys: :mod:`.keys`)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.agents = Repository[Agent](store, agent.evolve, cache_size=AGENTS_CACHED)
        self.names = Repository[NameClaim](store, name_claim.evolve)
        self.personas = Repository[Persona](store, persona.evolve)
        self.clusters = Repository[Cluster](store, cluster.evolve)
        self.keys = Repository[ApiKey](store, apikey.evolve)
        self.memories = Repository[Memory](store, memory.evolve)

    # --- agents --------------------------------------------------------------------------

    async def create_agent(self, command: CreateAgent) -> CommandReply:
        """Register an agent; a retry with the same id and definition succeeds once."""
        new = command.agent_id is None  # else from an idempotency key: maybe done already
        agent_id = command.agent_id or new_id()
        command = msgspec.structs.replace(command, agent_id=agent_id)
        if not new and (done := await self._created(command, agent_id)) is not None:
            return done
        agent.decide(None, command, Context())  # validate before claiming the name
        await self.check_persona(command.namespace, command.spec.persona)
        await self._claim(command.namespace, command.spec.name, agent_id)
        if new:  # a new id has no stream to read first: its append would say otherwise
            self.agents.remember(agent_stream(agent_id), Loaded(None, 0, 0))
        try:
            outcome = await self._run(command, agent_id)
        except ParleyError as exc:  # a concurrent retry created it first: the same success
            lost = exc.code == ErrorCode.AGENT_ALREADY_EXISTS
            done = await self._created(command, agent_id, fresh=True) if lost else None
            if done is None:
                raise
            return done
        return _ok(agent_id, outcome.version, outcome.position)

    async def _created(
        self, command: CreateAgent, agent_id: str, *, fresh: bool = False
    ) -> CommandReply | None:
        """The success of an earlier create of this agent with this definition, if any.

        Raises:
            ParleyError: ``AGENT_ALREADY_EXISTS`` if the id holds another definition.
        """
        existing = await self.agents.load(agent_stream(agent_id), fresh=fresh)
        if (found := existing.state) is None:
            return None
        if not found.deleted and found.spec == command.spec:
            return _ok(agent_id, existing.version, existing.position)
        raise ParleyError(
            ErrorCode.AGENT_ALREADY_EXISTS,
            f"agent {agent_id} already exists with another definition",
            {"agent_id": agent_id},
        )

    async def update_agent(self, command: UpdateAgent) -> CommandReply:
        """Change an agent's definition; a rename claims the new name, then frees the old."""
        current = await self.agents.load(agent_stream(command.agent_id))
        rename = None
        if current.state is not None:
            decided = agent.decide(current.state, command, Context()).events
            rename = name_change(current.state, decided)
            await self.check_persona(command.namespace, command.patch.persona)
        took = rename is not None and await self._claim(
            command.namespace, rename[1], command.agent_id
        )
        try:
            outcome = await self._run(command, command.agent_id)
        except Exception:
            if rename and took:  # a rename that lost its append gives its new name back
                await self._release_unless_named(command, rename[1])
            raise
        if rename and outcome.state is not None:
            kept = rename[1] if outcome.state.spec.name == rename[0] else rename[0]
            await self._release(command.namespace, kept, command.agent_id)
        return _ok(command.agent_id, outcome.version, outcome.position)

    async def agent_action(self, command: AgentActionCommand) -> CommandReply:
        """Drive the agent's lifecycle."""
        outcome = await self._run(command, command.agent_id)
        return _ok(command.agent_id, outcome.version, outcome.position)

    async def delete_agent(self, command: DeleteAgent) -> CommandReply:
        """Tombstone the agent and free its name."""
        outcome = await self._run(command, command.agent_id)
        if outcome.state is not None:
            await self._release(command.namespace, outcome.state.spec.name, command.agent_id)
        return _ok(command.agent_id, outcome.version, outcome.position)

    async def live_agent(self, agent_id: str) -> Agent | None:
        """The agent as stored now (None when deleted or never created)."""
        found = (await self.agents.load(agent_stream(agent_id), fresh=True)).state
        return found if found is not None and not found.deleted else None

    async def _run(self, command: RegistryCommand, agent_id: str) -> Outcome[Agent]:
        """Decide ``command`` on the agent and append."""
        return await execute(
            self.agents,
            agent_stream(agent_id),
            agent.decide,
            command,
            subject=agent_id,
            origin=command,
        )

    # --- names ---------------------------------------------------------------------------

    async def name_holder(self, namespace: str, name: str) -> Agent | None:
        """The live agent holding ``name`` in ``namespace``, if any."""
        claim = (await self.names.load(name_stream(namespace, name), fresh=True)).state
        if claim is None or claim.holder is None:
            return None
        return await self.live_agent(claim.holder)

    async def _claim(self, namespace: str, name: str, agent_id: str) -> bool:
        """Claim ``name`` for ``agent_id``; whether this took it (False: it held it already).

        Raises:
            ParleyError: ``AGENT_ALREADY_EXISTS`` if a live agent holds the name.
        """
        stream = name_stream(namespace, name)
        if self.names.cached(stream) is None:
            with contextlib.suppress(_Held):
                return await self._claim_unheld(stream, namespace, name, agent_id)
        seen = await self.names.load(stream, fresh=True)
        checked = seen.state.holder if seen.state is not None else None
        live = await self._holds_name(stream, seen, agent_id, name)

        def claim(state: NameClaim | None, command: Claim, ctx: Context) -> Decision[Any]:
            holder = state.holder if state is not None else None
            # A holder that claimed after the check is a create in flight: it holds the name.
            exists = live if holder == checked else True
            command = msgspec.structs.replace(command, agent_exists=exists)
            return name_claim.decide(state, command, ctx)

        command = Claim(agent_id=agent_id, name=name, namespace=namespace, agent_exists=live)
        origin = Untraced(namespace)
        outcome = await execute(self.names, stream, claim, command, subject=agent_id, origin=origin)
        return outcome.appended > 0

    async def _claim_unheld(self, stream: str, namespace: str, name: str, agent_id: str) -> bool:
        """Claim a name this process knows nothing of as if nobody held it (most names are
        new): no read first; the append's expected version finds out otherwise.

        Raises:
            _Held: Someone holds the name: its holder must be looked at first.
        """

        def claim(state: NameClaim | None, command: Claim, ctx: Context) -> Decision[Any]:
            if state is not None and state.holder not in (None, agent_id):
                raise _Held
            return name_claim.decide(state, command, ctx)

        self.names.remember(stream, Loaded(None, 0, 0))
        command = Claim(agent_id=agent_id, name=name, namespace=namespace, agent_exists=False)
        origin = Untraced(namespace)
        outcome = await execute(self.names, stream, claim, command, subject=agent_id, origin=origin)
        return outcome.appended > 0

    async def _holds_name(
        self, stream: str, claim: Loaded[NameClaim], agent_id: str, name: str
    ) -> bool:
        """Whether the claim's holder (not ``agent_id``) is a live agent of that ``name``, or
        its create or rename is in flight (a claim left behind by a rename that failed
        before its release is taken over)."""
        holder = claim.state.holder if claim.state is not None else None
        if holder is None or holder == agent_id:
            return False
        found = (await self.agents.load(agent_stream(holder), fresh=True)).state
        if found is not None and found.deleted:
            return False
        if found is None or found.spec.name != name:
            last = (await self.store.read(stream, claim.version))[0]
            return claim_in_flight(last.time, utcnow())
        return True

    async def _release_unless_named(self, command: UpdateAgent, name: str) -> None:
        """Free ``name`` after a rename to it failed, unless the agent is named so by now
        (another rename to the same name won the race)."""
        found = await self.live_agent(command.agent_id)
        if found is None or found.spec.name != name:
            await self._release(command.namespace, name, command.agent_id)

    async def _release(self, namespace: str, name: str, agent_id: str) -> None:
        await execute(
            self.names,
            name_stream(namespace, name),
            name_claim.decide,
            Release(agent_id=agent_id, name=name),
            subject=agent_id,
            origin=Untraced(namespace),
        )

    # --- personas ------------------------------------------------------------------------

    async def create_persona(self, command: CreatePersona) -> CommandReply:
        """Create a persona in the command's namespace."""
        return await self._persona(command, command.spec.name)

    async def delete_persona(self, command: DeletePersona) -> CommandReply:
        """Delete a created persona."""
        return await self._persona(command, command.name)

    async def persona_exists(self, namespace: str, name: str) -> bool:
        """Whether ``name`` is a built-in persona or a live one of ``namespace``."""
        if name in load_builtin_personas():
            return True
        found = (await self.personas.load(persona_stream(namespace, name), fresh=True)).state
        return found is not None and not found.deleted

    async def check_persona(self, namespace: str, name: str | None) -> None:
        """Refuse an agent definition that names a persona that does not exist.

        Raises:
            ParleyError: ``VALIDATION_ERROR`` with a ``persona`` field error.
        """
        if name is None or await self.persona_exists(namespace, name):
            return
        message = (
            f"no persona {name!r} in namespace {namespace}; use a built-in or a created one"
            " (see GET /api/v1/personas)"
        )
        raise ParleyError(
            ErrorCode.VALIDATION_ERROR,
            f"persona: {message}",
            {"errors": [{"field": "persona", "code": "VALIDATION_ERROR", "message": message}]},
        )

    async def _persona(self, command: CreatePersona | DeletePersona, name: str) -> CommandReply:
        stream = persona_stream(command.namespace, name)
        outcome = await execute(
            self.personas, stream, persona.decide, command, subject=name, origin=command
        )
        return CommandReply(ok=True, version=outcome.version, position=outcome.position)


def _ok(agent_id: str, version: int, position: int) -> CommandReply:
    return CommandReply(ok=True, agent_id=agent_id, version=version, position=position)


def reply_for_error(exc: Exception) -> CommandReply:
    """The error reply for an exception raised while handling a command."""
    body = error_body_for(
        exc,
        conflict_message="the agent is at version {actual}, not {expected}: read it again"
        " and retry",
        log=log,
    )
    return CommandReply(ok=False, error=body)
