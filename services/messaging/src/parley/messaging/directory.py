"""The messaging service's view: agents (the directory facilitator) and their message load.

It follows the agent and conversation streams from position 0 (a ``min_position`` from the
edge is waited for with :meth:`~parley.eventstore.follower.Follower.wait_for`, which asks the
store where its next event is): agent streams give each agent's definition and state, conversation
streams give each agent's *load* — deliveries it has not answered yet — and the deliveries
no runtime has taken yet (re-published at start, see :mod:`parley.messaging.workers.delivery`),
and where each conversation is stored (:meth:`Directory.conversation_stream`).
"""

from collections.abc import Callable
from dataclasses import dataclass

from parley.aggregates.agent import Agent
from parley.aggregates.agent import evolve
from parley.aggregates.conversation import is_agent
from parley.aggregates.conversation import payload
from parley.contracts.acl import PROTOCOL_REPLIES
from parley.contracts.acl import VIEWED
from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageDelivered
from parley.contracts.acl import MessageFailed
from parley.contracts.acl import MessageSent
from parley.contracts.acl import conversation_stream
from parley.contracts.envelope import Event
from parley.contracts.ids import DEFAULT_NAMESPACE
from parley.eventstore.follower import Follower
from parley.eventstore.port import EventStore

__all__ = ["Directory", "Pending"]


@dataclass(frozen=True, slots=True)
class Pending:
    """A delivery an agent has not answered yet."""

    conversation_id: str
    reply_with: str | None
    expects_reply: bool


class Directory(Follower):
    """Agents by id, their unanswered deliveries, and deliveries not yet taken."""

    name = "messaging-directory"
    categories = VIEWED

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._agents: dict[str, Agent] = {}
        self._pending: dict[str, dict[str, Pending]] = {}
        self._total: dict[str, int] = {}
        self._untaken: dict[tuple[str, str], tuple[str, str]] = {}
        self._by_message: dict[tuple[str, str], str] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._unscoped: set[tuple[str, str]] = set()
        self.observers: list[Callable[[Event], None]] = []
        """Called with every conversation event folded (e.g. to keep a cache current)."""

    # --- reads -------------------------------------------------------------------------

    def get(self, agent_id: str, namespace: str) -> Agent | None:
        """The agent, unless unknown, deleted or of another namespace."""
        agent = self._agents.get(agent_id)
        if agent is None or agent.deleted or agent.namespace != namespace:
            return None
        return agent

    def with_capability(self, namespace: str, capability: str) -> list[Agent]:
        """Live agents of ``namespace`` that have ``capability``, in any state."""
        return [
            a
            for a in self._agents.values()
            if not a.deleted and a.namespace == namespace and capability in a.spec.capabilities
        ]

    def load(self, agent_id: str) -> tuple[int, int]:
        """(deliveries not answered yet, deliveries ever) — lower is less loaded."""
        return len(self._pending.get(agent_id, ())), self._total.get(agent_id, 0)

    def conversation_of_message(self, namespace: str, message_id: str) -> str | None:
        """The conversation a message id was recorded in (de-duplication by message id)."""
        return self._by_message.get((namespace, message_id))

    def conversation_of(self, namespace: str, key: str) -> str | None:
        """The conversation of the message an ``in-reply-to`` names (its id or
        ``reply-with``; the newest message with that ``reply-with`` wins)."""
        return self._by_message.get((namespace, key)) or self._by_key.get((namespace, key))

    def conversation_stream(self, namespace: str, conversation_id: str) -> str:
        """The stream of a conversation: :func:`~parley.contracts.acl.conversation_stream`,
        or ``conversation-<id>`` for one of another namespace than ``default`` stored before
        streams were scoped by namespace."""
        if (namespace, conversation_id) in self._unscoped:
            namespace = DEFAULT_NAMESPACE
        return conversation_stream(namespace, conversation_id)

    def untaken(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(message id, receiver) → (namespace, conversation id), for deliveries no runtime
        has taken."""
        return dict(self._untaken)

    # --- the fold ----------------------------------------------------------------------

    def fold(self, event: Event) -> None:
        """Fold agent and conversation events; skip the rest."""
        if event.stream.startswith("agent-"):
            agent = evolve(self._agents.get(event.subject), event)
            if agent is not None:
                self._agents[agent.id] = agent
        elif event.stream.startswith("conversation-"):
            self._fold_message(event)
            for observe in self.observers:
                observe(event)

    def _fold_message(self, event: Event) -> None:
        match payload(event):
            case MessageSent(message=message, receipt=receipt):
                if receipt is not None:
                    self._untaken.pop((receipt.message_id, receipt.receiver), None)
                self._locate(event, message)
                self.queued(message, message.receivers)
                self._by_message[(event.namespace, message.message_id)] = message.conversation_id
                if message.reply_with:
                    self._by_key[(event.namespace, message.reply_with)] = message.conversation_id
                if message.in_reply_to and is_agent(message.sender):
                    self.answered(message.sender, message.conversation_id, message.in_reply_to)
            case MessageDelivered() as taken:
                self._untaken.pop((taken.message_id, taken.receiver), None)
                pending = self._pending.get(taken.receiver, {})
                entry = pending.get(taken.message_id)
                if entry is not None and not entry.expects_reply:
                    del pending[taken.message_id]
            case MessageFailed() as failure:
                self._untaken.pop((failure.message_id, failure.receiver), None)
                self._pending.get(failure.receiver, {}).pop(failure.message_id, None)

    def _locate(self, event: Event, message: AclMessage) -> None:
        namespace, conversation_id = event.namespace, message.conversation_id
        if event.version == 1 and namespace != DEFAULT_NAMESPACE:
            if event.stream == conversation_stream(DEFAULT_NAMESPACE, conversation_id):
                self._unscoped.add((namespace, conversation_id))

    def queued(self, message: AclMessage, receivers: list[str]) -> None:
        """Count deliveries of ``message`` to ``receivers`` (idempotent): from its event, or
        at once on sending, so that capability routing sees them before the event is back."""
        message_id, conversation_id = message.message_id, message.conversation_id
        expects = message.performative in PROTOCOL_REPLIES
        for receiver in receivers:
            if receiver.startswith("user:"):
                continue
            self._untaken.setdefault((message_id, receiver), (message.namespace, conversation_id))
            if not is_agent(receiver):
                continue
            pending = self._pending.setdefault(receiver, {})
            if message_id not in pending:
                pending[message_id] = Pending(conversation_id, message.reply_with, expects)
                self._total[receiver] = self._total.get(receiver, 0) + 1

    def answered(self, agent_id: str, conversation_id: str, in_reply_to: str) -> None:
        """``agent_id`` answered the message ``in_reply_to`` names: it no longer loads it."""
        pending = self._pending.get(agent_id)
        if not pending:
            return
        for message_id, entry in list(pending.items()):
            if entry.conversation_id == conversation_id and in_reply_to in (
                message_id,
                entry.reply_with,
            ):
                del pending[message_id]
