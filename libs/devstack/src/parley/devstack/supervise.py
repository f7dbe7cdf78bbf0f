"""Keep the dev stack running: restart any part that exits (a service, an edge, a NATS
node) after an exponential backoff, and say so; the other parts keep running.

A restarted nats-server comes back on the same port and store, so acknowledged data is there;
what it kept in memory only (rate-limit windows, leases, slots, tickets, token deltas) the
services make again themselves once they reconnect (:mod:`parley.kit.needs`), so nothing else
is restarted."""

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from parley.devstack.stack import Stack

__all__ = ["Backoff", "Supervisor", "describe_exit"]


@dataclass(slots=True)
class Backoff:
    """The delay before each restart of one part: ``first``, doubled at each restart up to
    ``cap``; back to ``first`` once the part had run ``stable`` seconds before it exited."""

    first: float = 0.5
    cap: float = 10.0
    stable: float = 30.0
    _next: float = field(default=0.0, init=False)

    def delay(self, ran_for: float) -> float:
        """The delay before restarting a part that ran ``ran_for`` seconds."""
        if ran_for >= self.stable or not self._next:
            self._next = self.first
        delay = self._next
        self._next = min(delay * 2, self.cap)
        return delay


def describe_exit(code: int) -> str:
    """``exit code 1`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Restarts the parts of ``stack`` that exit; call :meth:`tick` every few hundred ms."""

    def __init__(
        self,
        stack: Stack,
        say: Callable[[str], None],
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.stack, self.say, self._new_backoff = stack, say, backoff
        self._backoff: dict[str, Backoff] = {}
        self._due: dict[str, float] = {}
        """When each exited part is restarted (monotonic seconds)."""
        now = time.monotonic()
        self._started: dict[str, float] = {}
        self._since = now

    def tick(self) -> None:
        """Schedule a restart for each part that exited; restart those whose time came."""
        now = time.monotonic()
        for key, code in self.stack.exited().items():
            if key in self._due:
                continue
            ran_for = now - self._started.get(key, self._since)
            delay = self._backoff.setdefault(key, self._new_backoff()).delay(ran_for)
            self._due[key] = now + delay
            self.say(
                f"parley: {key} exited ({describe_exit(code)}) after {ran_for:.1f} s; "
                f"restarting it in {delay:.1f} s"
            )
        for key, due in list(self._due.items()):
            if now >= due:
                del self._due[key]
                pid = self.stack.restart(key)
                self._started[key] = time.monotonic()
                self.say(f"parley: {key} restarted (pid {pid})")
