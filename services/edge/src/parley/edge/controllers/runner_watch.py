"""A sync chat whose runtime dies mid-turn is answered then, not at its timeout.

While a chat waits for its turn's answer (from :data:`WATCH_AFTER_S` on, so a short turn
costs one timer), the edge pings the turn's control subject (``parley.ctl.turn.<turn id>``),
which the runtime running the turn answers from just before it records the start until the
turn ends. Once a ping was answered, a ping with no responders means that runtime is gone,
or that the turn has just ended and its answer is on the way: a second ping :data:`GRACE_S`
later tells the two apart. The chat then stops waiting; the turn is ended as an orphan
(``cancel_turn``, which records ``turn.failed`` when no runtime runs the turn; tried for
:data:`END_WITHIN_S` while a runtime restarts) and the caller gets ``503
SERVICE_UNAVAILABLE`` naming the conversation and the turn, to send the message again.
A turn that never answered a ping (still waiting for a slot, say) is left to the timeout.
"""

import asyncio
import time

import nats.errors

from parley.contracts import subjects
from parley.contracts.errors import ErrorCode
from parley.contracts.runtime import CancelTurn
from parley.contracts.runtime import Chat
from parley.edge.dependencies import Writes
from parley.edge.http.errors import ApiError

__all__ = ["END_WITHIN_S", "GRACE_S", "PING_EVERY_S", "WATCH_AFTER_S", "RunnerWatch"]

WATCH_AFTER_S = 1.0
"""How long a chat waits before its turn's runtime is first pinged."""
PING_EVERY_S = 1.0
"""Seconds between two pings of a turn's runtime."""
GRACE_S = 2.0
"""How long a turn whose runtime stopped answering has to deliver its answer anyway."""
END_WITHIN_S = 10.0
"""How long the edge tries to have the orphaned turn recorded as ended (a runtime may be
restarting meanwhile)."""


class RunnerWatch:
    """Watches the runtime running ``command``'s turn while the current task waits for it;
    cancels that task when the runtime is gone (then :attr:`gone` is true)."""

    def __init__(self, writes: Writes, command: Chat) -> None:
        self.writes, self.command = writes, command
        self.gone = False
        self._waiter = asyncio.current_task()
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._start)

    def stop(self) -> None:
        """Stop watching (the wait is over)."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()

    def _start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name=f"watch-{self.command.turn_id}")

    async def _watch(self) -> None:
        answered = False
        while True:
            alive = await self._alive()
            if alive:
                answered = True
            elif alive is False and answered:
                await asyncio.sleep(GRACE_S)
                if await self._alive() is False:
                    self.gone = True
                    if self._waiter is not None:
                        self._waiter.cancel()
                    return
            await asyncio.sleep(PING_EVERY_S)

    async def _alive(self) -> bool | None:
        """Whether a runtime answers for the turn (None: no answer in time, busy)."""
        subject = subjects.control("turn", self.command.turn_id)
        try:
            await self.writes.edge.nc.request(subject, b"ping", timeout=PING_EVERY_S)
        except nats.errors.NoRespondersError:
            return False
        except (nats.errors.TimeoutError, TimeoutError):
            return None
        return True

    async def orphaned(self) -> ApiError:
        """End the orphaned turn (as far as a runtime can be reached); the caller's error."""
        command = self.command
        conversation = command.session_id or self._conversation()
        ended = conversation is not None and await self._end(conversation)
        what = "it is recorded as failed" if ended else "the conversation's next message ends it"
        return ApiError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"the runtime running this turn stopped before the turn ended; {what}:"
            " send the message again",
            {"conversation_id": conversation, "turn_id": command.turn_id},
        )

    def _conversation(self) -> str | None:
        """The session a new conversation's turn started in, as the edge has seen it."""
        command = self.command
        for session in self.writes.edge.runtime.sessions(command.namespace, command.agent_id):
            active = session.active_turn
            if active is not None and active.turn_id == command.turn_id:
                return session.id
        return None

    async def _end(self, conversation: str) -> bool:
        command = self.command
        cancel = CancelTurn(
            namespace=command.namespace,
            session_id=conversation,
            agent_id=command.agent_id,
            turn_id=command.turn_id,
        )
        deadline = time.monotonic() + END_WITHIN_S
        while True:
            try:
                await self.writes.runtime("cancel_turn", cancel, strict=False)
            except ApiError as exc:
                if exc.code == ErrorCode.SERVICE_UNAVAILABLE and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)  # no runtime yet: one is restarting
                    continue
                return exc.code == ErrorCode.NO_ACTIVE_TURN  # ended meanwhile
            return True
