"""A run's recorded steps, read back from its events, so a resumed run replays them.

Every model answer and tool result is recorded before the run moves on: an answer that
called no tool with the run's next event, or its end (``RunFinished.last_step``). Steps are numbered
in the order the run takes them; given the same recorded answers a strategy takes the same
path, so step *n* of a resumed run is step *n* of the first attempt.
"""

from collections.abc import Iterable

import msgspec

from parley.contracts.envelope import Event
from parley.contracts.runtime import ExecutionInputReceived
from parley.contracts.runtime import StepRecorded
from parley.contracts.runtime import ToolCalled
from parley.contracts.runtime import ToolCompleted
from parley.contracts.runtime import ToolFailed

__all__ = ["Journal"]

_STEP_TYPES = ("turn.step_recorded", "execution.step_recorded")


class Journal:
    """What a run already did: model answers, tool calls and results, human answers."""

    def __init__(self) -> None:
        self.models: dict[int, StepRecorded] = {}
        self.plan_steps: dict[int, StepRecorded] = {}
        self.called: dict[tuple[int, str], ToolCalled] = {}
        self.results: dict[tuple[int, str], ToolCompleted | ToolFailed] = {}
        self.inputs: dict[str, ExecutionInputReceived] = {}

    @classmethod
    def of(cls, events: Iterable[Event], run_id: str) -> "Journal":
        """The journal of run ``run_id`` among ``events`` (a session or execution stream)."""
        journal = cls()
        for event in events:
            journal.add(event, run_id)
        return journal

    def add(self, event: Event, run_id: str) -> None:
        """Fold one event in, if it belongs to run ``run_id``."""
        data = event.data
        if data.get("run_id", data.get("execution_id")) != run_id:
            return
        if event.type in _STEP_TYPES or data.get("last_step"):
            step = msgspec.convert(data.get("last_step") or data, StepRecorded)
            if step.kind == "plan_step" and step.index is not None:
                self.plan_steps[step.index] = step
            else:
                self.models[step.step] = step
        elif event.type == "tool.called":
            called = msgspec.convert(data, ToolCalled)
            self.called[(called.step, called.call_id)] = called
        elif event.type == "tool.completed":
            done = msgspec.convert(data, ToolCompleted)
            self.results[(done.step, done.call_id)] = done
        elif event.type == "tool.failed":
            failed = msgspec.convert(data, ToolFailed)
            self.results[(failed.step, failed.call_id)] = failed
        elif event.type == "execution.input_received":
            answer = msgspec.convert(data, ExecutionInputReceived)
            self.inputs[answer.call_id] = answer

    @property
    def empty(self) -> bool:
        """Whether nothing was recorded yet."""
        return not (self.models or self.called or self.results)
