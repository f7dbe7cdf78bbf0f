"""The pump that moves the matching events of a store subscription onto a consumer."""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from parley.contracts.envelope import Event
from parley.edge.streams.filters import EventFilter
from parley.edge.streams.hub import Hub
from parley.eventstore.port import EventStore
from parley.eventstore.port import Subscription

__all__ = ["Pump"]


class Pump:
    """Moves the matching events of one store subscription onto a consumer's callback.

    ``store`` is the edge's :class:`~parley.edge.streams.hub.Hub` (one feed for every
    subscriber) or the store itself.

    The subscription runs in its own task; :meth:`close` cancels it and releases the
    store's resources. Closing twice is harmless.
    """

    def __init__(
        self,
        store: EventStore | Hub,
        start: int,
        event_filter: EventFilter,
        deliver: Callable[[Event], Any],
        on_error: Callable[[Exception], Any],
    ) -> None:
        self._subscription: Subscription = store.subscribe(start, event_filter.categories)
        self._filter, self._deliver, self._on_error = event_filter, deliver, on_error
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "Pump":
        """Start delivering."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        matches, deliver = self._filter.matches, self._deliver
        try:
            async for event in self._subscription:
                if matches(event):
                    result = deliver(event)
                    if result is not None:
                        await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the client, never lost silently
            self._on_error(exc)

    async def close(self) -> None:
        """Stop the task and close the store subscription."""
        task, self._task = self._task, None
        # Closing the feed first ends its iteration cleanly. Cancelling alone is not enough:
        # on 3.11 `asyncio.wait_for` inside a feed can swallow a cancellation that races a
        # wake-up, leaving the task parked forever; so cancel until it is really done.
        with contextlib.suppress(Exception):
            await self._subscription.close()
        if task is not None:
            for _ in range(20):
                if task.done():
                    break
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            if task.done() and not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log it as never seen
        with contextlib.suppress(Exception):
            await self._subscription.close()  # a setup racing the first close is undone here
