"""Task, group-run and conversation streams are scoped by namespace; `default` keeps its names."""

import pytest

from parley.contracts.acl import conversation_stream
from parley.contracts.ids import scoped, unscoped
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


@pytest.mark.parametrize(
    ("namespace", "ident"),
    [("default", "t1"), ("default", "acme_t1"), ("acme", "t1"), ("a-b", "x_y-z"), ("acme", "_")],
)
def test_unscoped_inverts_scoped_given_the_namespace(namespace: str, ident: str) -> None:
    assert unscoped(namespace, scoped(namespace, ident)) == ident


def test_a_key_not_made_in_a_namespace_is_none_there() -> None:
    assert unscoped("acme", "t1") is None
    assert unscoped("acme", "other_t1") is None
    assert unscoped("acme", "acme_") is None
