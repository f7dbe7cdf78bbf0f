"""Each event type is folded in exactly one place: its stream's aggregate in libs/aggregates.

Two state machines for one stream drift, and then the views lie. Every aggregate module
declares the stream category it folds and the event types its ``evolve`` folds; these tests
check that every event type of the contracts has exactly one such fold per category, that the
folds accept a real recorded history, and that no module outside ``libs/aggregates`` folds
the events of tasks, executions, sessions and turns, or messages itself.
"""

import ast
import importlib
import json
import pkgutil
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

import parley.aggregates
from parley.contracts import acl
from parley.contracts import clusters
from parley.contracts import deployments
from parley.contracts import identity
from parley.contracts import memory
from parley.contracts import personas
from parley.contracts import registry
from parley.contracts import runtime
from parley.contracts import tasks
from parley.contracts.envelope import Event

CONTEXTS = (acl, clusters, deployments, identity, memory, personas, registry, runtime, tasks)
"""The contracts modules whose events are folded."""
ROOT = Path(__file__).resolve().parents[2]
HISTORY = ROOT / "tests" / "data" / "history-v1.ndjson"

RECORDS_WITHOUT_STATE = {"instance.started", "instance.stopped"}
"""Events that only record that something happened; no aggregate decides on them (an
agent's instance starts and stops are shown as they are). Anything else must have a fold."""

GUARDED = ("task.", "execution.", "session.", "turn.", "tool.", "message.", "grouprun.")
"""Categories whose events no module outside libs/aggregates may fold (issue 8)."""

VIEW_MAPPINGS = {
    "services/edge/src/parley/edge/projections/runtime.py": "log lines and run counts per "
    "agent: each event mapped to its activity record, no state machine",
    "services/messaging/src/parley/messaging/events.py": "decodes a recorded event into the "
    "payload type handed to the conversation fold",
    "services/runtime/src/parley/runtime/workers/inbox.py": "recognises the reply it sent "
    "(idempotency), no state",
    "libs/cli/src/parley/cli/tasks.py": "`tasks distribute --watch` prints each event of the "
    "round and stops at its end: no state",
}
"""Modules that read guarded event types without folding them, and why."""


def _catalogue() -> set[str]:
    types: set[str] = set()
    for module in CONTEXTS:
        types |= set(module.EVENT_TYPES)
    return types | set(tasks.RUN_EVENT_TYPES)


def _aggregates() -> list[ModuleType]:
    found = []
    for info in pkgutil.iter_modules(parley.aggregates.__path__):
        module = importlib.import_module(f"parley.aggregates.{info.name}")
        if hasattr(module, "evolve"):
            found.append(module)
    return found


def test_every_aggregate_declares_its_category_and_the_types_it_folds() -> None:
    for module in _aggregates():
        assert isinstance(getattr(module, "CATEGORY", None), str), module.__name__
        assert isinstance(getattr(module, "FOLDS", None), frozenset), module.__name__


def test_every_event_type_is_folded_by_exactly_one_aggregate_per_category() -> None:
    folders: dict[tuple[str, str], list[str]] = defaultdict(list)
    categories: dict[str, list[str]] = defaultdict(list)
    for module in _aggregates():
        categories[module.CATEGORY].append(module.__name__)
        for event_type in module.FOLDS:
            folders[(module.CATEGORY, event_type)].append(module.__name__)
    assert {c: m for c, m in categories.items() if len(m) > 1} == {}
    assert {k: m for k, m in folders.items() if len(m) > 1} == {}
    folded = {event_type for _, event_type in folders}
    assert _catalogue() - RECORDS_WITHOUT_STATE - folded == set()
    assert folded - _catalogue() == set()


def _history() -> dict[str, list[Event]]:
    streams: dict[str, list[Event]] = defaultdict(list)
    for line in HISTORY.read_text().splitlines():
        raw = json.loads(line)
        raw.pop("actor", None)
        streams[raw["stream"]].append(Event(**{k: v for k, v in raw.items()}))
    return streams


def test_a_recorded_history_folds_with_the_aggregate_of_each_stream_s_category() -> None:
    by_category = {module.CATEGORY: module for module in _aggregates()}
    folded_types: set[str] = set()
    for stream, events in _history().items():
        module = by_category.get(stream.split("-", 1)[0])
        if module is None:
            assert {e.type for e in events} <= RECORDS_WITHOUT_STATE | {"history.noted"}, stream
            continue
        state = None
        for event in sorted(events, key=lambda e: e.version):
            assert event.type in module.FOLDS | RECORDS_WITHOUT_STATE, (stream, event.type)
            state = module.evolve(state, event)
            folded_types.add(event.type)
        assert state is not None, stream
    assert len(folded_types) > 25  # the history covers most of the catalogue


def _guarded_literals(path: Path) -> list[tuple[int, str]]:
    catalogue = _catalogue()
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "evolve":
            hits.append((node.lineno, "def evolve"))
        values: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
        elif isinstance(node, ast.MatchValue):
            values = [node.value]
        for value in values:
            for sub in ast.walk(value):
                text = sub.value if isinstance(sub, ast.Constant) else None
                if isinstance(text, str) and text in catalogue and text.startswith(GUARDED):
                    hits.append((node.lineno, text))
    return hits


@pytest.mark.parametrize("top", ["services", "libs"])
def test_no_module_outside_libs_aggregates_folds_tasks_runs_sessions_or_messages(
    top: str,
) -> None:
    offenders = {}
    for path in sorted((ROOT / top).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if "/aggregates/" in relative or relative in VIEW_MAPPINGS:
            continue
        if hits := _guarded_literals(path):
            offenders[relative] = hits
    assert offenders == {}
