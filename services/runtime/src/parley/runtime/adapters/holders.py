"""Whether a slot's holder still holds it, asked of the holder itself.

The slot bucket names each slot's holder (a runtime process's worker name, unique per
process: host and pid). Every runtime answers on ``parley.ctl.slots.<worker, hex>`` whether
it holds the slot key it is asked about. A take that finds a slot held asks its holder: no
process of that name (NATS answers "no responders" at once) means the holder died, and its
slots are taken over there and then instead of after their lease (``lease_ttl``) runs out;
a holder that says it does not hold the key (its release was lost) gives it up the same way.
A holder that does not answer in time is taken to be busy, and to hold it.

A holder cut off from NATS (its node died and it has not reconnected yet) cannot answer
either, and counts as dead: its slots may then be taken while its turns still run, so an
agent's instance limit can be exceeded for that moment. The holder's release writes the slot
free only at the revision it took it at, so it never frees a slot someone has taken over.
"""

import contextlib
import time
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from parley.contracts import subjects

__all__ = ["ALIVE_S", "ASK_TIMEOUT_S", "Holders"]

ASK_TIMEOUT_S = 0.25
"""How long a take waits for a holder's answer before it counts the holder as busy."""
ALIVE_S = 1.0
"""How long a holder that said it holds a slot is believed alive without being asked again
(a queued request polls every slot every 0.1 s at most)."""


def _subject(worker: str) -> str:
    return subjects.control("slots", worker.encode().hex())


class Holders:
    """This process's answers about the slots it holds, and its questions to other holders."""

    def __init__(self, nc: Client, worker: str, holds: Callable[[str], bool]) -> None:
        self.nc, self.worker, self._holds = nc, worker, holds
        self._sub: Subscription | None = None
        self._alive: dict[bytes, float] = {}
        """Holders that said they hold a slot, and when."""

    async def start(self) -> None:
        """Answer other runtimes' questions about this process's slots."""
        self._sub = await self.nc.subscribe(_subject(self.worker), cb=self._answer)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _answer(self, msg: Msg) -> None:
        if msg.reply:
            await msg.respond(b"held" if self._holds(msg.data.decode()) else b"free")

    async def holds(self, holder: bytes, key: str) -> bool:
        """Whether ``holder`` (a slot value) still holds ``key``."""
        if holder == self.worker.encode():
            return False  # asked only of keys this process does not hold: a lost release
        if time.monotonic() - self._alive.get(holder, -ALIVE_S) < ALIVE_S:
            return True
        try:
            answer = await self.nc.request(
                _subject(holder.decode()), key.encode(), timeout=ASK_TIMEOUT_S
            )
        except nats.errors.NoRespondersError:
            self._alive.pop(holder, None)
            return False  # no process of that name: it died
        except (TimeoutError, nats.errors.TimeoutError):
            return True  # busy, not dead
        except Exception:
            return True  # NATS itself unreachable: nothing is known, so nothing is taken
        if answer.data == b"free":
            return False
        self._alive[holder] = time.monotonic()
        return True
