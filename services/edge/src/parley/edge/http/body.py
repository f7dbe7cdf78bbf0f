"""Safe request body decoding: every way a body can be bad maps to one error, here.

Bodies are read as raw bytes (capped at the app's body limit, streamed or not), parsed as
JSON without a type first (so malformed, non-UTF-8 or absurdly nested input is always
``400 INVALID_REQUEST``), then converted to the target Struct (so wrong types, unknown and
missing fields are ``422 VALIDATION_ERROR`` with field paths).
"""

from collections.abc import Iterable
from typing import Any
from typing import TypeVar

import msgspec
from litestar import Request

from parley.contracts.agent_toml import TomlAgentError
from parley.contracts.agent_toml import agent_spec_from_toml
from parley.contracts.clusters import ClusterManifest
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentSpec
from parley.edge.http.errors import ApiError
from parley.edge.http.errors import invalid_fields
from parley.edge.http.yaml import YAML_TYPES
from parley.edge.http.yaml import load_yaml

__all__ = [
    "JSON_TYPES",
    "MAX_DEPTH",
    "TOML_TYPES",
    "YAML_TYPES",
    "BodyError",
    "decode_body",
    "decode_json",
]

T = TypeVar("T")

JSON_TYPES = frozenset({"application/json", "application/merge-patch+json"})
"""Media types decoded as JSON (a missing `Content-Type` counts as JSON)."""
TOML_TYPES = frozenset({"application/toml", "text/toml"})
"""Media types decoded as a TOML agent definition (only where the target is `AgentSpec`)."""
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a WebSocket frame may have."""
_OTHER_TYPES: dict[type[Any], frozenset[str]] = {AgentSpec: TOML_TYPES, ClusterManifest: YAML_TYPES}


class BodyError(ParleyError):
    """A frame that is not acceptable JSON (``INVALID_REQUEST``); the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_REQUEST, message)


async def decode_body(
    request: Request[Any, Any, Any], target: type[T], *, optional: bool = False
) -> T:
    """Read and decode the body of ``request`` as ``target``.

    Args:
        request: The request.
        target: A msgspec Struct type.
        optional: An empty body decodes as ``target()`` instead of an error, whatever its
            Content-Type.

    Raises:
        ApiError: ``PAYLOAD_TOO_LARGE`` (via the body limit), ``UNSUPPORTED_MEDIA_TYPE``,
            ``INVALID_REQUEST`` (empty, malformed, not UTF-8, nested too deeply) or
            ``VALIDATION_ERROR`` (wrong types, unknown or missing fields).
    """
    raw = await request.body()  # enforces the body limit on announced and streamed bytes
    if optional and not raw.strip():
        return target()  # no body: its Content-Type (clients often send one anyway) is moot
    media_type, options = request.content_type
    media_type = media_type.lower() if request.headers.get("content-type") else "application/json"
    toml = target is AgentSpec and media_type in TOML_TYPES
    yaml = target is ClusterManifest and media_type in YAML_TYPES
    if not (toml or yaml) and media_type not in JSON_TYPES:
        extra = _OTHER_TYPES.get(target, frozenset())
        accepted = sorted(JSON_TYPES | extra)
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"unsupported Content-Type {media_type!r}; send one of {', '.join(accepted)}",
            {"accepted": accepted},
        )
    charset = options.get("charset", "utf-8").lower().replace("_", "-")
    if charset not in ("utf-8", "utf8"):
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"unsupported charset {charset!r}; send UTF-8"
        )
    if not raw.strip():
        raise ApiError(ErrorCode.INVALID_REQUEST, "the request needs a body")
    if toml:
        return _from_toml(raw)  # type: ignore[return-value]
    if yaml:
        return _convert(await load_yaml(raw), target)
    try:
        tree = msgspec.json.decode(raw)
    except RecursionError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "JSON body is nested too deeply") from None
    except UnicodeDecodeError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "request body is not valid UTF-8") from None
    except msgspec.DecodeError as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"malformed JSON body: {exc}") from None
    return _convert(tree, target)


def _convert(tree: Any, target: type[T]) -> T:
    try:
        return msgspec.convert(tree, target)
    except msgspec.ValidationError as exc:
        raise invalid_fields(exc, "body") from None
    except RecursionError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "body is nested too deeply") from None


def _from_toml(raw: bytes) -> AgentSpec:
    try:
        return agent_spec_from_toml(raw)
    except msgspec.ValidationError as exc:
        raise invalid_fields(exc, "body", "agent definition") from None
    except TomlAgentError as exc:
        details = {"line": exc.line, "column": exc.column} if exc.line else None
        raise ApiError(ErrorCode.INVALID_REQUEST, f"malformed TOML body: {exc}", details) from None
    except (RecursionError, ValueError) as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"malformed TOML body: {exc}") from None


def decode_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Decode a JSON frame without ever raising anything but :class:`BodyError`.

    msgspec raises UnicodeDecodeError on invalid UTF-8 and RecursionError on deep nesting;
    both would be a 500 if they escaped.
    """
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise BodyError(f"JSON nested deeper than {max_depth} levels") from None
    except (msgspec.DecodeError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise BodyError(f"malformed JSON: {exc}") from None
    if _depth(value, max_depth) > max_depth:
        raise BodyError(f"JSON nested deeper than {max_depth} levels")
    return value


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, iteratively; stops counting past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
