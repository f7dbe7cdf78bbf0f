"""The body most commands share: ask the API one thing and print its answer with a table's
columns — a read (:func:`show`), a list across its pages (:func:`show_list`) or an action
(:func:`show_action`)."""

from collections.abc import Sequence
from typing import Any

from parley.cli.app import api
from parley.cli.output import Column
from parley.cli.output import Format
from parley.cli.output import emit

__all__ = ["show", "show_action", "show_list"]


def show(path: str, output: Format, columns: Sequence[Column]) -> None:
    """Print what ``GET path`` answers."""
    with api() as client:
        answer = client.get(path)
    emit(answer, output, columns)


def show_list(
    path: str,
    params: dict[str, Any],
    output: Format,
    columns: Sequence[Column],
    limit: int | None = None,
) -> None:
    """Print every item of the list at ``path`` (at most ``limit``) matching ``params``."""
    with api() as client:
        found = client.items(path, params, limit)
    emit(found, output, columns)


def show_action(path: str, output: Format, columns: Sequence[Column], /, **fields: Any) -> None:
    """Print what the action at ``path`` answers, sent with those of ``fields`` that are set."""
    with api() as client:
        answer = client.act(path, **fields)
    emit(answer, output, columns)
