"""Event filters shared by SSE and WebSocket, and the events' wire encoding.

A filter is what a client asks for (type globs, agent ids, performatives, streams,
namespace, actors), put inside the principal's walls by the server (:meth:`EventFilter.within`:
its namespaces only; ``apikey.*`` only for key managers). The store can
narrow a subscription only by stream category, so :class:`EventFilter` keeps the categories it
can prove and matches everything else in Python.
"""

import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

import msgspec

from parley.contracts.acl import Performative
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.ids import NAMESPACE_PATTERN
from parley.identity.principal import Action
from parley.identity.principal import Principal

__all__ = [
    "MAX_PATTERNS",
    "POSITIONS_END",
    "EventFilter",
    "FilterError",
    "encode_event",
    "parse_position",
    "split_values",
]

MAX_PATTERNS = 32
"""Most values one filter field may hold."""
POSITIONS_END = 2**64
"""Past the last possible store position (positions are unsigned 64-bit integers)."""

encode_event: Callable[[Event], bytes] = msgspec.json.Encoder().encode

# `*` matches within one dotted segment; a trailing `*` matches the rest (`agent.*`, `*`).
_PATTERN = re.compile(r"^[a-z0-9_*]+(\.[a-z0-9_*]+)*$")
_LITERAL = re.compile(r"^[a-z][a-z0-9_]*$")
_STREAM = re.compile(r"^[a-z][a-z0-9_]{0,31}-[A-Za-z0-9_-]{1,160}$")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,160}$")
_NAMESPACE = re.compile(NAMESPACE_PATTERN)
_ACTOR = re.compile(r"^[\x21-\x7e]{1,256}$")
_KEY_EVENTS = "apikey."
_PERFORMATIVE = re.compile("^(?:" + "|".join(re.escape(p.value) for p in Performative) + ")$")

# Event types whose first segment names their stream's category. Only these narrow a
# subscription by category; any other type is matched in Python over every stream, because
# the convention is not universal (`agent_name.*` lives on `agentname-…` streams).
_TYPE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "agent": ("agent",),
    "agent_name": ("agentname",),
    "custom": ("custom",),
}


class FilterError(ParleyError):
    """A filter or start position the client sent is not valid (``INVALID_REQUEST``); the
    message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_REQUEST, message)


def split_values(values: Iterable[str]) -> list[str]:
    """Repeated and comma-separated query values as one list, blanks dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_position(raw: str | int | None, what: str) -> int | None:
    """A start position (a non-negative integer below 2^64) or None when absent.

    Raises:
        FilterError: not a non-negative integer below 2^64.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise FilterError(f"{what} must be a non-negative integer, got {raw!r}")
    if isinstance(raw, int):
        value = raw
    else:
        text = raw.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            raise FilterError(f"{what} must be a non-negative integer, got {raw!r}")
        value = int(text)
    if value < 0:
        raise FilterError(f"{what} must be a non-negative integer, got {raw!r}")
    if value >= POSITIONS_END:
        raise FilterError(f"{what} must be below 2^64 (the last possible position), got {raw!r}")
    return value


def _glob(pattern: str) -> re.Pattern[str]:
    if len(pattern) > 128 or not _PATTERN.match(pattern):
        raise FilterError(
            f"invalid type pattern {pattern!r}: use dotted lowercase segments with `*` as "
            "a wildcard, e.g. `agent.*` or `agent.state_changed`"
        )
    head, star, tail = pattern.rpartition("*")
    if star and not tail:  # a trailing `*` crosses segments: `agent.*` matches `agent.a.b`
        body = re.escape(head).replace(r"\*", "[a-z0-9_]*") + ".*"
    else:
        body = re.escape(pattern).replace(r"\*", "[a-z0-9_]*")
    return re.compile(f"^{body}$")


def _checked(values: Sequence[str], what: str, rule: re.Pattern[str], hint: str) -> list[str]:
    if len(values) > MAX_PATTERNS:
        raise FilterError(f"at most {MAX_PATTERNS} values of {what} per filter")
    for value in values:
        if not isinstance(value, str) or not rule.match(value):
            raise FilterError(f"invalid {what} {value!r}: {hint}")
    return list(values)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a subscriber wants; every given field must match (values within one
    field are alternatives)."""

    types: tuple[re.Pattern[str], ...] = ()
    agent_ids: frozenset[str] = frozenset()
    streams: frozenset[str] = frozenset()
    namespace: str | None = None
    performatives: frozenset[str] = frozenset()
    """FIPA performatives of a message event (`data.message.performative`)."""
    categories: tuple[str, ...] | None = None
    """Stream categories the store subscription can be narrowed to (None: all)."""
    actors: frozenset[str] = frozenset()
    """Ids of the principals whose acts are wanted (the events' ``actor``): the audit log."""
    walls: frozenset[str] | None = None
    """The namespaces the subscriber sees (None: all). Set by the server from the
    principal (:meth:`within`), never by the client: no filter can widen it."""
    key_events: bool = True
    """Whether ``apikey.*`` events may be delivered (only to those who manage keys)."""

    @classmethod
    def parse(
        cls,
        types: Sequence[str] = (),
        agent_ids: Sequence[str] = (),
        streams: Sequence[str] = (),
        namespace: str | None = None,
        performatives: Sequence[str] = (),
        actors: Sequence[str] = (),
    ) -> "EventFilter":
        """Validate a client's filter.

        Raises:
            FilterError: a pattern, id, stream, performative or namespace is not valid.
        """
        if len(types) > MAX_PATTERNS:
            raise FilterError(f"at most {MAX_PATTERNS} type patterns per filter")
        for t in types:
            if not isinstance(t, str):
                raise FilterError(f"invalid type pattern {t!r}: expected a string")
        globs = tuple(_glob(t) for t in types)
        ids = _checked(agent_ids, "agent_id", _ID, "letters, digits, `_.:-`, up to 160")
        names = _checked(streams, "stream", _STREAM, "use `<category>-<id>`, e.g. `agent-…`")
        acts = _checked(performatives, "performative", _PERFORMATIVE, "a FIPA act, e.g. `request`")
        who = _checked(actors, "actor", _ACTOR, "a principal id, e.g. `key:<key id>`")
        if namespace is not None and (
            not isinstance(namespace, str) or not _NAMESPACE.match(namespace)
        ):
            raise FilterError(f"invalid namespace {namespace!r}")
        return cls(
            types=globs,
            agent_ids=frozenset(ids),
            streams=frozenset(names),
            namespace=namespace,
            performatives=frozenset(acts),
            categories=_categories(types, names, bool(acts)),
            actors=frozenset(who),
        )

    def within(self, principal: Principal) -> "EventFilter":
        """This filter inside ``principal``'s walls: only its namespaces' events, and
        ``apikey.*`` events only when it may manage keys."""
        return replace(
            self,
            walls=None if principal.everywhere else frozenset(principal.namespaces),
            key_events=Action.MANAGE_KEYS in principal.actions,
        )

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes every part of this filter."""
        if self.walls is not None and event.namespace not in self.walls:
            return False
        if not self.key_events and event.type.startswith(_KEY_EVENTS):
            return False
        if self.actors and getattr(event, "actor", None) not in self.actors:
            return False
        if self.namespace is not None and event.namespace != self.namespace:
            return False
        if self.streams and event.stream not in self.streams:
            return False
        if self.types and not any(g.match(event.type) for g in self.types):
            return False
        message = _message_of(event) if self.performatives or self.agent_ids else None
        if self.performatives and (
            message is None or not _one_of(message.get("performative"), self.performatives)
        ):
            return False
        if self.agent_ids and event.subject not in self.agent_ids:
            return self._names_an_agent(event, message)
        return True

    def _names_an_agent(self, event: Event, message: dict[str, Any] | None) -> bool:
        """Whether ``data.agent_id``, ``data.receiver`` or the message's sender or receivers
        is one of the filter's agents."""
        ids, data = self.agent_ids, event.data
        if not isinstance(data, dict):
            return False
        if _one_of(data.get("agent_id"), ids) or _one_of(data.get("receiver"), ids):
            return True
        if message is None:
            return False
        receivers = message.get("receivers")
        return _one_of(message.get("sender"), ids) or (
            isinstance(receivers, list) and any(_one_of(r, ids) for r in receivers)
        )


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    """``value`` is a string in ``allowed`` (event data is untrusted JSON)."""
    return isinstance(value, str) and value in allowed


def _message_of(event: Event) -> dict[str, Any] | None:
    """``data.message`` of a message event, if any."""
    message = event.data.get("message") if isinstance(event.data, dict) else None
    return message if isinstance(message, dict) else None


def _categories(
    types: Sequence[str], streams: Sequence[str], messages_only: bool = False
) -> tuple[str, ...] | None:
    if streams:
        return tuple(sorted({s.partition("-")[0] for s in streams}))
    if messages_only:
        return ("conversation",)  # only message events carry a performative
    if not types:
        return None
    found: set[str] = set()
    for pattern in types:
        first = pattern.split(".", 1)[0]
        if not _LITERAL.match(first) or first not in _TYPE_CATEGORIES:
            return None  # one pattern we cannot narrow means every stream
        found.update(_TYPE_CATEGORIES[first])
    return tuple(sorted(found))
