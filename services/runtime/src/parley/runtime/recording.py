"""Where a run's events and frames go: its stream, its live subject, or nowhere.

- :class:`StreamRecorder`: appends a turn's events to its session, after the turn's start.
- :class:`DeltaPublisher`: publishes a turn's frames on its subject, keeps the text.
- :class:`NullSink`: drops the frames of runs nobody watches (executions).
"""

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import stamina
from nats.aio.client import Client

from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.runtime import TurnDelta
from parley.contracts.runtime import turn_subject
from parley.eventstore import ANY_VERSION
from parley.eventstore import EventStore
from parley.eventstore import EventStoreUnavailable

RECORD_WAIT_S = 10.0
"""How long a run waits for the store to answer one of its events before it fails."""

__all__ = ["SOURCE", "DeltaPublisher", "NullSink", "StreamRecorder"]

SOURCE = "/parley/runtime"
_encode = msgspec.json.Encoder().encode


class StreamRecorder:
    """Appends a run's events to one stream, in order (at any version: the run does not
    own its session, whose other writers only add files and settings)."""

    def __init__(
        self,
        store: EventStore,
        stream: str,
        *,
        subject: str,
        namespace: str,
        correlation_id: str | None,
        traceparent: str | None,
    ) -> None:
        self.store, self.stream, self.subject = store, stream, subject
        self.namespace, self.correlation_id, self.traceparent = (
            namespace,
            correlation_id,
            traceparent,
        )
        self.position = 0
        self.on_recorded: Callable[[Event], None] | None = None
        """Called with each recorded event (e.g. to keep a cached fold current)."""
        self.gate: asyncio.Future[None] | None = None
        """Nothing is appended before this resolves (a turn started before its start event)."""

    def event(self, type: str, payload: msgspec.Struct | dict[str, Any]) -> NewEvent:
        """The envelope for one of this run's events."""
        data = payload if isinstance(payload, dict) else msgspec.to_builtins(payload)
        return NewEvent(
            type=type,
            subject=self.subject,
            data=data,
            namespace=self.namespace,
            source=SOURCE,
            correlationid=self.correlation_id,
            traceparent=self.traceparent,
        )

    async def record(self, type: str, payload: msgspec.Struct) -> None:
        """Append one event, once the gate (if any) is open.

        A store that does not answer for a moment (a NATS node failing over) is waited out
        for up to :data:`RECORD_WAIT_S`, retrying the same event: the store keeps an event id
        once, so an append that landed before its answer was lost is not recorded twice.
        Raises EventStoreUnavailable when the store stays away longer.
        """
        if self.gate is not None and not self.gate.done():
            await asyncio.shield(self.gate)
        new = self.event(type, payload)
        try:  # the hot path: one try, no retry context
            result = await self.store.append(self.stream, [new], ANY_VERSION)
        except EventStoreUnavailable:
            async for attempt in stamina.retry_context(
                on=EventStoreUnavailable, attempts=None, timeout=RECORD_WAIT_S, wait_max=1.0
            ):
                with attempt:
                    result = await self.store.append(self.stream, [new], ANY_VERSION)
        self.position = result.position
        if self.on_recorded is not None:
            self.on_recorded(
                Event.record(
                    new, stream=self.stream, version=result.version, position=result.position
                )
            )


class DeltaPublisher:
    """Publishes a turn's frames on its subject; keeps the text for a partial answer."""

    def __init__(
        self,
        nc: Client,
        turn_id: str,
        extra: dict[str, Any] | None = None,
        *,
        live: bool = True,
        gate: asyncio.Future[None] | None = None,
    ) -> None:
        self.nc, self.turn_id, self.live, self.gate = nc, turn_id, live, gate
        self._held: list[bytes] = []
        self._flusher: asyncio.Task[None] | None = None
        if gate is not None:
            gate.add_done_callback(self._opened)
        self.subject = turn_subject(turn_id)
        self.seq = 0
        self.text: list[str] = []
        self.extra = extra or {}

    async def emit(self, type: str, data: dict[str, Any]) -> None:
        """Publish one frame (core NATS; the delta stream keeps a copy for resume)."""
        self.seq += 1
        if type == "token":
            self.text.append(data.get("text", ""))
        if not self.live:
            return  # a sync turn: nobody follows its frames
        frame = TurnDelta(
            seq=self.seq,
            type=type,  # type: ignore[arg-type]
            turn_id=self.turn_id,
            data={**self.extra, **data},
        )
        if self.gate is not None and not self.gate.done():
            self._held.append(_encode(frame))  # published once the turn has started
            return
        await self._flush()
        await self.nc.publish(self.subject, _encode(frame))

    def _opened(self, gate: asyncio.Future[None]) -> None:
        if gate.cancelled() or gate.exception() is not None:
            self._held.clear()  # the turn never started: nobody sees its frames
        elif self._held:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        held, self._held = self._held, []
        for frame in held:
            await self.nc.publish(self.subject, frame)


class NullSink:
    """A sink for runs nobody watches live (executions); frames are dropped."""

    async def emit(self, type: str, data: dict[str, Any]) -> None:
        """Drop the frame."""
