"""Task, group-run and conversation streams are scoped by namespace; `default` keeps its names."""

from parley.contracts.acl import conversation_stream
from parley.contracts.tasks import run_stream, task_stream


def test_the_default_namespace_keeps_the_stored_stream_names() -> None:
    assert task_stream("default", "t1") == "task-t1"
    assert run_stream("default", "r_1") == "grouprun-r_1"
    assert conversation_stream("default", "c-1") == "conversation-c-1"


def test_another_namespace_prefixes_the_id() -> None:
    assert task_stream("acme", "t1") == "task-acme_t1"
    assert run_stream("acme-2", "r_1") == "grouprun-acme-2_r_1"
    assert conversation_stream("acme", "c-1") == "conversation-acme_c-1"
    assert task_stream("a", "t1") != task_stream("b", "t1")
