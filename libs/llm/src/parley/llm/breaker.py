"""A per-provider circuit breaker: closed → open after N failures → half-open after a cooldown."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from parley.llm.errors import ProviderUnavailable

__all__ = ["CircuitBreaker"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Fails calls fast while a provider keeps failing.

    Args:
        provider: Provider name, used in the ``circuit open`` error.
        threshold: Consecutive failed calls that open the circuit.
        cooldown: Seconds the circuit stays open before one trial call is let through.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        provider: str,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        """``closed``, ``open`` or ``half_open`` (cooldown over, a trial call may pass)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Let a call through or raise.

        Raises:
            ProviderUnavailable: The circuit is open, or half-open with a trial already running.
        """
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._probing:
            self._probing = True
            return
        raise ProviderUnavailable(self.provider, "circuit open", retryable=False)

    def record_success(self) -> None:
        """Close the circuit and forget past failures."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def release(self) -> None:
        """End a call without a verdict (the caller cancelled it); a trial may run again."""
        self._probing = False

    def record_failure(self) -> None:
        """Count a failed call; open (or re-open) the circuit at the threshold."""
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            self._opened_at = self._clock()
        self._probing = False
