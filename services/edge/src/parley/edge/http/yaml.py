"""YAML request bodies, parsed safely: no tags that build objects, no bombs, no deep nesting.

``yaml.safe_load`` alone is not enough for untrusted input: libyaml's composer recurses in C
(100,000 nested brackets crash the process) and aliases make a tree that is tiny in memory
but exponential once walked (the "billion laughs"). So the body is first scanned as events
(an iterative parser) to bound its nesting, then loaded, then walked once with a node budget
that counts shared (aliased) nodes every time they are reached, as a later conversion would.
"""

from typing import Any

import anyio.to_thread
import yaml  # type: ignore[import-untyped]

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = ["MAX_DEPTH", "MAX_NODES", "YAML_TYPES", "load_yaml"]

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
"""Media types decoded as YAML (where the target accepts YAML)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted."""
MAX_NODES = 250_000
"""Most nodes a document may expand to, aliases counted at every use."""

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


async def load_yaml(raw: bytes) -> Any:
    """Parse one YAML document into plain Python data (off the event loop).

    Raises:
        ApiError: ``INVALID_REQUEST`` with ``{"line", "column"}`` (1-based) where the parser
            knows them, for malformed YAML, several documents, nesting deeper than
            :data:`MAX_DEPTH`, or an expansion past :data:`MAX_NODES` nodes.
    """
    return await anyio.to_thread.run_sync(_load, raw)


def _load(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "request body is not valid UTF-8") from None
    try:
        _check_depth(text)
        tree = yaml.load(text, Loader=_Loader)  # a safe loader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        details = {"line": mark.line + 1, "column": mark.column + 1} if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ApiError(
            ErrorCode.INVALID_REQUEST, f"malformed YAML body: {problem}{where}", details
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"malformed YAML body: {exc}") from None
    _check_size(tree)
    return tree


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise ApiError(
                    ErrorCode.INVALID_REQUEST,
                    f"YAML body is nested too deeply (more than {MAX_DEPTH} levels)",
                    {"line": mark.line + 1, "column": mark.column + 1},
                )
        elif isinstance(event, _CLOSE):
            depth -= 1


def _check_size(tree: Any) -> None:
    budget = MAX_NODES
    pending = [tree]
    while pending:
        node = pending.pop()
        budget -= 1
        if budget < 0:
            raise ApiError(
                ErrorCode.INVALID_REQUEST,
                f"YAML body expands to more than {MAX_NODES} nodes (aliases count at every"
                " use); write it out without anchors",
            )
        if isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list | tuple | set):
            pending.extend(node)
