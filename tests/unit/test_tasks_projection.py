"""The tasks projection serves the views it served before it folded with the aggregates.

The events below have the shapes the tasks service has always stored; the expected views are
what the edge's own fold (before the projection moved onto ``parley.aggregates.task`` and
``grouprun``) showed for them. A stack started on an old store must show the same.
"""

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import msgspec
from _builders import stored

from parley.contracts.envelope import Event
from parley.edge.projections.tasks import TasksProjection

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
P = {"estimated_time_s": 2.0, "cost": 3.0, "confidence": 0.5}
Q = {"estimated_time_s": 1.0, "cost": 5.0, "confidence": 0.9}
TASK = [
    (
        "task.created",
        {
            "task_id": "t1",
            "spec": {
                "name": "job",
                "description": "d",
                "data": {"n": 1},
                "requirements": {"capabilities": ["x"]},
                "timeout_seconds": 30,
            },
        },
    ),
    (
        "task.cfp_sent",
        {
            "task_id": "t1",
            "candidates": ["a", "b", "c", "d"],
            "strategy": "best_bid",
            "reply_by": "2026-01-01T12:00:05Z",
            "message_id": "m1",
        },
    ),
    (
        "task.proposal_received",
        {
            "task_id": "t1",
            "agent_id": "a",
            "proposal": P,
            "message_id": "p-a",
            "reply_with": "rw-a",
        },
    ),
    (
        "task.proposal_received",
        {"task_id": "t1", "agent_id": "b", "proposal": Q, "message_id": "p-b", "reply_with": None},
    ),
    ("task.refused", {"task_id": "t1", "agent_id": "c", "reason": "busy"}),
    ("task.rejected", {"task_id": "t1", "agent_id": "d", "reason": "late", "message_id": "m2"}),
    (
        "task.awarded",
        {
            "task_id": "t1",
            "agent_id": "a",
            "proposal": P,
            "score": 0.75,
            "round": 1,
            "message_id": "m3",
        },
    ),
    ("task.rejected", {"task_id": "t1", "agent_id": "b", "reason": "lost", "message_id": "m4"}),
    ("task.progress", {"task_id": "t1", "agent_id": "a", "percent": 40.0, "note": "halfway"}),
    (
        "task.awarded",
        {
            "task_id": "t1",
            "agent_id": "b",
            "proposal": Q,
            "score": 0.6,
            "round": 2,
            "message_id": "m5",
            "previous_failure": "no result within 30s",
        },
    ),
    ("task.progress", {"task_id": "t1", "agent_id": "b", "percent": None, "note": "thinking"}),
    ("task.completed", {"task_id": "t1", "agent_id": "b", "result": {"answer": 42}}),
]
FAILED = [
    ("task.created", {"task_id": "t2", "spec": {"name": "other", "participants": ["a", "b"]}}),
    (
        "task.cfp_sent",
        {
            "task_id": "t2",
            "candidates": ["a", "b"],
            "strategy": "fastest",
            "reply_by": "2026-01-01T12:00:01Z",
            "message_id": "n1",
        },
    ),
    (
        "task.proposal_received",
        {"task_id": "t2", "agent_id": "a", "proposal": P, "message_id": "q-a", "reply_with": "q-a"},
    ),
    ("task.refused", {"task_id": "t2", "agent_id": "b", "reason": "not delivered: gone"}),
    (
        "task.awarded",
        {
            "task_id": "t2",
            "agent_id": "a",
            "proposal": P,
            "score": 0.333333,
            "round": 1,
            "message_id": "n2",
        },
    ),
    (
        "task.failed",
        {
            "task_id": "t2",
            "reason": "every awarded agent failed",
            "failures": {"a": "crashed"},
            "refusals": {"b": "not delivered: gone"},
        },
    ),
]
CANCELLED = [
    ("task.created", {"task_id": "t3", "spec": {"name": "third"}}),
    ("task.cancelled", {"task_id": "t3", "reason": "changed my mind"}),
]
RUN = [
    (
        "grouprun.started",
        {
            "run_id": "r1",
            "cluster": "c",
            "strategy": "map-reduce",
            "agent_ids": ["a", "b", "c"],
            "input": [1, 2],
            "budget": {"max_tokens": 100},
            "timeout_seconds": 60,
        },
    ),
    (
        "grouprun.requested",
        {"run_id": "r1", "agent_id": "a", "stage": "map", "message_id": "k1", "input": [1]},
    ),
    (
        "grouprun.requested",
        {"run_id": "r1", "agent_id": "b", "stage": "map", "message_id": "k2", "input": [2]},
    ),
    (
        "grouprun.agent_result",
        {
            "run_id": "r1",
            "agent_id": "a",
            "stage": "map",
            "ok": True,
            "output": "A",
            "usage": {"tokens": 85},
        },
    ),
    (
        "grouprun.budget_warning",
        {"run_id": "r1", "kind": "tokens", "used": 85, "limit": 100, "ratio": 0.85},
    ),
    (
        "grouprun.agent_result",
        {"run_id": "r1", "agent_id": "b", "stage": "map", "ok": False, "error": "no"},
    ),
    (
        "grouprun.requested",
        {"run_id": "r1", "agent_id": "c", "stage": "reduce", "message_id": "k3", "input": ["A"]},
    ),
    ("grouprun.failed", {"run_id": "r1", "cancelled": ["c"], "error": "timed out after 60s"}),
]
STREAMS = {"task-t1": TASK, "task-t2": FAILED, "task-t3": CANCELLED, "grouprun-r1": RUN}


def _recorded() -> list[Event]:
    events, position = [], 0
    for stream, history in STREAMS.items():
        for version, (kind, data) in enumerate(history, start=1):
            position += 1
            events.append(
                stored(
                    kind,
                    data,
                    id=f"e{position}",
                    source="/parley/tasks",
                    time=T0 + timedelta(seconds=position),
                    namespace="ns",
                    stream=stream,
                    version=version,
                    position=position,
                )
            )
    return events


def _log(first_second: int, *entries: tuple[str, str | None]) -> list[dict[str, Any]]:
    """A view's expected event log: ``(type, agent_id)`` entries from version 1, one a
    second from 12:00:``first_second`` (an entry names its agent only when it has one)."""
    return [
        {
            "type": kind,
            "time": f"2026-01-01T12:00:{first_second + offset:02d}.000000Z",
            "version": offset + 1,
            **({"agent_id": agent} if agent is not None else {}),
        }
        for offset, (kind, agent) in enumerate(entries)
    ]


EXPECTED: dict[str, Any] = {
    "t1": {
        "task_id": "t1",
        "namespace": "ns",
        "name": "job",
        "description": "d",
        "data": {"n": 1},
        "participants": [],
        "requirements": {"capabilities": ["x"], "min_performance_score": 0.0},
        "timeout_seconds": 30.0,
        "status": "completed",
        "strategy": "best_bid",
        "candidates": ["a", "b", "c", "d"],
        "reply_by": "2026-01-01T12:00:05.000000Z",
        "assigned_to": "b",
        "round": 2,
        "proposals_received": 2,
        "proposals": [
            {
                "agent_id": "a",
                "estimated_time_s": 2.0,
                "cost": 3.0,
                "confidence": 0.5,
                "received_at": "2026-01-01T12:00:03.000000Z",
                "status": "failed",
                "reason": "no result within 30s",
            },
            {
                "agent_id": "b",
                "estimated_time_s": 1.0,
                "cost": 5.0,
                "confidence": 0.9,
                "received_at": "2026-01-01T12:00:04.000000Z",
                "status": "accepted",
                "reason": None,
            },
        ],
        "refusals": {"c": "busy"},
        "winning_bid": {
            "agent_id": "b",
            "estimated_time_s": 1.0,
            "cost": 5.0,
            "confidence": 0.9,
            "score": 0.6,
        },
        "progress": 100.0,
        "progress_note": "thinking",
        "result": {"answer": 42},
        "failure_reason": None,
        "failures": {"a": "no result within 30s"},
        "subtasks": [],
        "events": _log(
            1,
            ("task.created", None),
            ("task.cfp_sent", None),
            ("task.proposal_received", "a"),
            ("task.proposal_received", "b"),
            ("task.refused", "c"),
            ("task.rejected", "d"),
            ("task.awarded", "a"),
            ("task.rejected", "b"),
            ("task.progress", "a"),
            ("task.awarded", "b"),
            ("task.progress", "b"),
            ("task.completed", "b"),
        ),
        "created_at": "2026-01-01T12:00:01.000000Z",
        "updated_at": "2026-01-01T12:00:12.000000Z",
        "awarded_at": "2026-01-01T12:00:10.000000Z",
        "finished_at": "2026-01-01T12:00:12.000000Z",
        "version": 12,
    },
    "t2": {
        "task_id": "t2",
        "namespace": "ns",
        "name": "other",
        "description": "",
        "data": None,
        "participants": ["a", "b"],
        "requirements": None,
        "timeout_seconds": 300,
        "status": "failed",
        "strategy": "fastest",
        "candidates": ["a", "b"],
        "reply_by": "2026-01-01T12:00:01.000000Z",
        "assigned_to": "a",
        "round": 1,
        "proposals_received": 1,
        "proposals": [
            {
                "agent_id": "a",
                "estimated_time_s": 2.0,
                "cost": 3.0,
                "confidence": 0.5,
                "received_at": "2026-01-01T12:00:15.000000Z",
                "status": "failed",
                "reason": "crashed",
            }
        ],
        "refusals": {"b": "not delivered: gone"},
        "winning_bid": {
            "agent_id": "a",
            "estimated_time_s": 2.0,
            "cost": 3.0,
            "confidence": 0.5,
            "score": 0.333333,
        },
        "progress": None,
        "progress_note": None,
        "result": None,
        "failure_reason": "every awarded agent failed",
        "failures": {"a": "crashed"},
        "subtasks": [],
        "events": _log(
            13,
            ("task.created", None),
            ("task.cfp_sent", None),
            ("task.proposal_received", "a"),
            ("task.refused", "b"),
            ("task.awarded", "a"),
            ("task.failed", None),
        ),
        "created_at": "2026-01-01T12:00:13.000000Z",
        "updated_at": "2026-01-01T12:00:18.000000Z",
        "awarded_at": "2026-01-01T12:00:17.000000Z",
        "finished_at": "2026-01-01T12:00:18.000000Z",
        "version": 6,
    },
    "t3": {
        "task_id": "t3",
        "namespace": "ns",
        "name": "third",
        "description": "",
        "data": None,
        "participants": [],
        "requirements": None,
        "timeout_seconds": 300,
        "status": "cancelled",
        "strategy": None,
        "candidates": [],
        "reply_by": None,
        "assigned_to": None,
        "round": 0,
        "proposals_received": 0,
        "proposals": [],
        "refusals": {},
        "winning_bid": None,
        "progress": None,
        "progress_note": None,
        "result": None,
        "failure_reason": "changed my mind",
        "failures": {},
        "subtasks": [],
        "events": _log(19, ("task.created", None), ("task.cancelled", None)),
        "created_at": "2026-01-01T12:00:19.000000Z",
        "updated_at": "2026-01-01T12:00:20.000000Z",
        "awarded_at": None,
        "finished_at": "2026-01-01T12:00:20.000000Z",
        "version": 2,
    },
    "r1": {
        "run_id": "r1",
        "namespace": "ns",
        "cluster": "c",
        "strategy": "map-reduce",
        "agent_ids": ["a", "b", "c"],
        "input": [1, 2],
        "status": "failed",
        "results": [
            {"agent_id": "a", "stage": "map", "status": "completed", "input": [1], "output": "A"},
            {"agent_id": "b", "stage": "map", "status": "failed", "input": [2], "error": "no"},
            {"agent_id": "c", "stage": "reduce", "status": "cancelled", "input": ["A"]},
        ],
        "result": None,
        "winner": None,
        "cancelled": ["c"],
        "error": "timed out after 60s",
        "budget": {"max_tokens": 100, "max_cost_usd": None, "period": "total"},
        "created_at": "2026-01-01T12:00:21.000000Z",
        "updated_at": "2026-01-01T12:00:28.000000Z",
        "finished_at": "2026-01-01T12:00:28.000000Z",
        "version": 8,
    },
}


def _views(projection: TasksProjection) -> dict[str, Any]:
    views: dict[str, Any] = {t: projection.task("ns", t) for t in ("t1", "t2", "t3")}
    views["r1"] = projection.run("ns", "c", "r1")
    return msgspec.to_builtins(views)  # type: ignore[no-any-return]


def test_old_streams_fold_into_the_views_the_edge_always_showed() -> None:
    projection = TasksProjection(None)  # type: ignore[arg-type]  # fold needs no store
    for event in _recorded():
        projection.fold(event)
    assert _views(projection) == EXPECTED


def test_views_are_scoped_to_their_namespace_and_cluster() -> None:
    projection = TasksProjection(None)  # type: ignore[arg-type]
    for event in _recorded():
        projection.fold(event)
    assert projection.task("other", "t1") is None
    assert projection.run("ns", "other", "r1") is None
    assert [v.task_id for v in projection.tasks("ns")] == ["t1", "t2", "t3"]


def test_one_task_id_in_two_namespaces_is_two_tasks() -> None:
    projection = TasksProjection(None)  # type: ignore[arg-type]
    recorded = _recorded()
    for event in recorded:
        projection.fold(event)
    last = recorded[-1].position
    theirs = [e for e in recorded if e.stream == "task-t1"][:1]  # created, nothing more
    for i, event in enumerate(theirs, start=1):
        projection.fold(
            msgspec.structs.replace(
                event, namespace="other", stream="task-other_t1", position=last + i
            )
        )
    assert _views(projection) == EXPECTED  # the first namespace's t1 is untouched
    other = projection.task("other", "t1")
    assert other is not None and (other.namespace, other.status, other.version) == (
        "other",
        "created",
        1,
    )
    assert [v.task_id for v in projection.tasks("other")] == ["t1"]
