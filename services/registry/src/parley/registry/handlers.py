"""The registry's command handlers: decode → load → decide → append → reply.

Each handler takes a decoded command and returns a :class:`CommandReply`; the app turns
errors into error replies in one place (:func:`reply_for_error`).
"""

import logging
from datetime import timedelta

import msgspec

from parley.contracts.envelope import Event, NewEvent, utcnow
from parley.contracts.errors import ErrorCode
from parley.contracts.ids import new_id
from parley.contracts.registry import (
    AgentActionCommand,
    CommandReply,
    CreateAgent,
    DeleteAgent,
    RegistryCommand,
    UpdateAgent,
    agent_stream,
    name_stream,
)
from parley.eventstore import (
    NO_STREAM,
    ConcurrencyConflict,
    EventStore,
)
from parley.eventstore.kernel import Loaded, Outcome, execute, load
from parley.kit.errors import error_body_for
from parley.kit.telemetry import current_traceparent
from parley.registry.domain import (
    Agent,
    DomainError,
    NameClaim,
    as_new_events,
    decide,
    decide_claim,
    decide_release,
    evolve,
    evolve_claim,
    name_change,
)
from parley.registry.personas import check_persona

__all__ = ["CLAIM_GRACE", "Registry", "reply_for_error"]

log = logging.getLogger(__name__)

CLAIM_GRACE = timedelta(seconds=30)
"""A name claimed this recently by an agent not yet created is in flight, not abandoned."""


AGENTS_CACHED = 100_000
"""Agents whose folded state the registry keeps between commands."""


class Registry:
    """Agent commands over an event store.

    It keeps each agent's folded state between commands, so a command costs one append, not a
    read of the whole stream and an append. Another registry instance may have moved the
    agent on since: the append's expected version catches that and the kernel reads again.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._agents: dict[str, Loaded[Agent]] = {}

    async def _agent(self, agent_id: str) -> Loaded[Agent]:
        stream = agent_stream(agent_id)
        cached = self._agents.get(stream)
        return cached if cached is not None else await load(self.store, stream, evolve)

    def _keep(self, agent_id: str, outcome: Outcome[Agent]) -> None:
        stream = agent_stream(agent_id)
        self._agents.pop(stream, None)
        self._agents[stream] = Loaded(outcome.state, outcome.version, outcome.position)
        if len(self._agents) > AGENTS_CACHED:
            del self._agents[next(iter(self._agents))]  # the least recently changed

    async def _run(
        self, command: RegistryCommand, agent_id: str, current: Loaded[Agent] | None = None
    ) -> Outcome[Agent]:
        """Decide ``command`` on the agent and append; keep the new state."""
        outcome = await execute(
            self.store,
            agent_stream(agent_id),
            self._decider(command, agent_id),
            evolve,
            expected_version=getattr(command, "expected_version", None),
            loaded=current or await self._agent(agent_id),
        )
        self._keep(agent_id, outcome)
        return outcome

    async def create_agent(self, command: CreateAgent) -> CommandReply:
        """Register an agent; a retry with the same id and definition succeeds once."""
        agent_id = command.agent_id or new_id()
        command = msgspec.structs.replace(command, agent_id=agent_id)
        existing = await self._agent(agent_id)
        if (agent := existing.state) is not None:
            if not agent.deleted and agent.spec == command.spec:
                return _ok(agent_id, existing.version, existing.position)
            raise DomainError(
                ErrorCode.AGENT_ALREADY_EXISTS,
                f"agent {agent_id} already exists with another definition",
                {"agent_id": agent_id},
            )
        decide(command, None, now=utcnow())  # validate before claiming the name
        await check_persona(self.store, command.namespace, command.spec.persona)
        await self._claim(command.namespace, command.spec.name, agent_id)
        outcome = await self._run(command, agent_id, existing)
        return _ok(agent_id, outcome.version, outcome.position)

    async def update_agent(self, command: UpdateAgent) -> CommandReply:
        """Change an agent's definition; a rename claims the new name, then frees the old."""
        current = await self._agent(command.agent_id)
        rename = None
        if current.state is not None:
            rename = name_change(current.state, decide(command, current.state, now=utcnow()))
            await check_persona(self.store, command.namespace, command.patch.persona)
        if rename:
            await self._claim(command.namespace, rename[1], command.agent_id)
        outcome = await self._run(command, command.agent_id, current)
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

    def _decider(self, command: RegistryCommand, agent_id: str):  # noqa: ANN202
        traceparent = current_traceparent()

        def decider(state: Agent | None) -> list[NewEvent]:
            now = utcnow()
            return as_new_events(
                decide(command, state, now=now),
                subject=agent_id,
                namespace=command.namespace,
                now=now,
                correlationid=command.request_id,
                traceparent=traceparent,
            )

        return decider

    async def _claim(self, namespace: str, name: str, agent_id: str, retries: int = 5) -> None:
        stream = name_stream(namespace, name)
        for attempt in range(retries + 1):
            events = await self.store.read(stream)
            claim = _fold_claim(events)
            holder = claim.state.holder if claim.state else None
            holder_live = False
            if holder is not None and holder != agent_id:
                holder_live = await self._holds_name(holder, events[-1])
            decided = decide_claim(
                claim.state, agent_id, name=name, namespace=namespace, agent_exists=holder_live
            )
            if not decided:
                return
            new = as_new_events(decided, subject=agent_id, namespace=namespace, now=utcnow())
            try:
                await self.store.append(stream, new, claim.version or NO_STREAM)
                return
            except ConcurrencyConflict:
                if attempt == retries:
                    raise

    async def _holds_name(self, holder: str, claimed: Event) -> bool:
        """Whether ``holder`` still holds its claim: it is live, or its create is in flight."""
        agent = (await load(self.store, agent_stream(holder), evolve)).state
        if agent is None:
            return utcnow() - claimed.time < CLAIM_GRACE
        return not agent.deleted

    async def _release(self, namespace: str, name: str, agent_id: str) -> None:
        stream = name_stream(namespace, name)
        await execute(
            self.store,
            stream,
            lambda state: as_new_events(
                decide_release(state, agent_id, name=name),
                subject=agent_id,
                namespace=namespace,
                now=utcnow(),
            ),
            evolve_claim,
        )


def _fold_claim(events: list[Event]) -> Loaded[NameClaim]:
    state: NameClaim | None = None
    for event in events:
        state = evolve_claim(state, event)
    last = events[-1] if events else None
    return Loaded(state, last.version if last else 0, last.position if last else 0)


def _ok(agent_id: str, version: int, position: int) -> CommandReply:
    return CommandReply(ok=True, agent_id=agent_id, version=version, position=position)


def reply_for_error(exc: Exception) -> CommandReply:
    """The error reply for an exception raised while handling a command."""
    if isinstance(exc, DomainError):
        return CommandReply(ok=False, error=exc.to_body())
    body = error_body_for(
        exc,
        conflict_message="the agent is at version {actual}, not {expected}: read it again"
        " and retry",
        log=log,
    )
    return CommandReply(ok=False, error=body)
