"""Task, group-run and conversation streams are scoped by namespace; `default` keeps its names."""

from datetime import UTC
from datetime import datetime

import msgspec

from parley.contracts.acl import AclMessage
from parley.contracts.acl import MessageSent
from parley.contracts.acl import Performative
from parley.contracts.acl import conversation_stream
from parley.contracts.envelope import Event
from parley.contracts.tasks import run_stream
from parley.contracts.tasks import task_stream
from parley.messaging.directory import Directory
from parley.tasks.domain import Streams


def test_the_default_namespace_keeps_the_stored_stream_names() -> None:
    assert task_stream("default", "t1") == "task-t1"
    assert run_stream("default", "r_1") == "grouprun-r_1"
    assert conversation_stream("default", "c-1") == "conversation-c-1"


def test_another_namespace_prefixes_the_id() -> None:
    assert task_stream("acme", "t1") == "task-acme_t1"
    assert run_stream("acme-2", "r_1") == "grouprun-acme-2_r_1"
    assert conversation_stream("acme", "c-1") == "conversation-acme_c-1"
    assert task_stream("a", "t1") != task_stream("b", "t1")


def _event(stream: str, namespace: str, subject: str, version: int = 1) -> Event:
    return Event(
        id=f"{stream}-{version}",
        type="task.created",
        source="/test",
        data={},
        subject=subject,
        time=datetime(2026, 1, 1, tzinfo=UTC),
        namespace=namespace,
        stream=stream,
        version=version,
        position=version,
    )


def test_the_tasks_service_finds_a_task_another_namespace_stored_before_scoping() -> None:
    streams = Streams()
    streams.note("task", _event("task-old", "history", "old"))  # stored before
    streams.note("task", _event("task-history_new", "history", "new"))
    streams.note("run", _event("grouprun-r", "default", "r"))
    assert streams.of("task", "history", "old") == "task-old"
    assert streams.conversation("task", "history", "old") == "conversation-old"
    assert streams.of("task", "history", "new") == "task-history_new"
    assert streams.conversation("task", "history", "new") == "conversation-history_new"
    assert streams.of("task", "other", "old") == "task-other_old"
    assert streams.of("run", "default", "r") == "grouprun-r"


def test_messaging_finds_a_conversation_another_namespace_stored_before_scoping() -> None:
    directory = Directory(None)  # type: ignore[arg-type]  # the fold needs no store
    for stream, namespace in (("conversation-old", "history"), ("conversation-x_new", "x")):
        conversation_id = stream.partition("-")[2].removeprefix(f"{namespace}_")
        message = AclMessage(
            message_id=f"m-{namespace}",
            performative=Performative.INFORM,
            sender="user:a",
            receivers=["user:b"],
            conversation_id=conversation_id,
            namespace=namespace,
        )
        event = msgspec.structs.replace(
            _event(stream, namespace, conversation_id),
            type="message.sent",
            data=msgspec.to_builtins(MessageSent(message=message)),
        )
        directory.fold(event)
    assert directory.conversation_stream("history", "old") == "conversation-old"
    assert directory.conversation_stream("x", "new") == "conversation-x_new"
    assert directory.conversation_stream("y", "old") == "conversation-y_old"
