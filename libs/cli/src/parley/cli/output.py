"""How answers are printed: ``-o table`` (Rich, the default), ``-o json`` or ``-o yaml``.

Tables show chosen columns; JSON and YAML show the server's answer whole, so scripts read
the same fields as the API documents. Streams print one JSON document per line (NDJSON) or
one YAML document each.
"""

import json
import sys
from collections.abc import Callable
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated
from typing import Any

import typer
import yaml  # type: ignore[import-untyped]
from rich.console import Console
from rich.table import Table

__all__ = ["Column", "Format", "Output", "cell", "columns", "emit", "emit_item", "field", "out"]

out = Console(highlight=False, width=None if sys.stdout.isatty() else 400)
"""stdout, for tables and live views (piped: wide, so no cell is cut)."""


class Format(StrEnum):
    """What ``-o`` takes."""

    table = "table"
    json = "json"
    yaml = "yaml"


Output = Annotated[
    Format,
    typer.Option("--output", "-o", help="table, json or yaml", case_sensitive=False),
]

Column = tuple[str, Callable[[Any], Any]]
"""A table column: its header and how a cell is read from an item."""


def field(path: str) -> Callable[[Any], Any]:
    """A reader of the dotted ``path`` (``spec.name``) of an item; missing is ``None``."""

    def read(item: Any) -> Any:
        for part in path.split("."):
            item = item.get(part) if isinstance(item, dict) else None
        return item

    return read


def columns(spec: str) -> list[Column]:
    """A table's columns, written compactly: comma-separated ``HEADER=path`` entries, or a
    bare ``path`` headed by its last part in capitals (``spec.model`` → ``MODEL``,
    ``assigned_to`` → ``ASSIGNED TO``).

    ``columns("ID=key_id, name, LAST USED=last_used_at")`` is
    ``[("ID", field("key_id")), ("NAME", field("name")), ("LAST USED", field("last_used_at"))]``.
    """
    table: list[Column] = []
    for entry in spec.split(","):
        header, _, path = entry.strip().rpartition("=")
        default = path.rpartition(".")[2].replace("_", " ").upper()
        table.append((header or default, field(path)))
    return table


def cell(value: Any) -> str:
    """A value as a table shows it: nothing for ``None``, compact JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _document(value: Any, fmt: Format, compact: bool) -> str:
    if fmt is Format.yaml:
        text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
        return ("---\n" + text) if compact else text.rstrip("\n")
    return json.dumps(value, ensure_ascii=False, indent=None if compact else 2)


def emit(value: Any, fmt: Format, columns: Sequence[Column] = ()) -> None:
    """Print an answer: a list as rows, an object as ``field value`` lines (the ``columns``
    when given)."""
    if fmt is not Format.table:
        sys.stdout.write(_document(value, fmt, compact=False) + "\n")
        return
    if isinstance(value, list):
        table = Table(box=None, header_style="bold", pad_edge=False)
        for header, _ in columns:
            table.add_column(header)
        for item in value:
            table.add_row(*(cell(read(item)) for _, read in columns))
        out.print(table)
        return
    rows = columns or [(key, field(key)) for key in (value or {})]
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for header, read in rows:
        table.add_row(header, cell(read(value)))
    out.print(table)


def emit_item(value: Any, fmt: Format, text: str) -> None:
    """Print one item of a stream: a JSON line, a YAML document, or ``text`` for tables."""
    if fmt is Format.table:
        out.print(text)
    else:
        sys.stdout.write(_document(value, fmt, compact=True) + "\n")
    sys.stdout.flush()
