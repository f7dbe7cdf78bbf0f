"""Chat turns: a user message becomes a recorded run, streamed live as deltas.

- :mod:`.chat`: the chat commands (:class:`Turns`);
- :mod:`.start`: starting a turn by the session's concurrency policy;
- :mod:`.run`: running it and recording how it ended;
- :mod:`.control`: ping, cancel and orphaned turns, across runtimes.
"""

from parley.runtime.turns.chat import Turns

__all__ = ["Turns"]
