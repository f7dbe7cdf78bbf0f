"""msgspec validation errors as readable, field-level problems; inlined JSON Schemas.

msgspec reports one problem per conversion as ``"Expected `int` >= 1 - at `$.a[0]`"``; this
turns that into ``{"field": "<prefix>.a[0]", "code": "VALIDATION_ERROR", "message": "must be
an integer >= 1"}``, the shape every validation error of the API has.
"""

import re
from typing import Any
from typing import TypeVar

import msgspec

__all__ = ["FieldError", "convert_strict", "field_error", "inline_schema", "readable"]

T = TypeVar("T")

FieldError = dict[str, str]
"""``{"field", "code", "message"}``."""

_TYPE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_GOT_NAMES = {**_TYPE_NAMES, "bool": "a boolean", "float": "a decimal number"}
_EXPECTED = re.compile(r"^Expected `(\w+)`")
_GOT = re.compile(r", got `(\w+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(.+)`$")
_MISSING = re.compile(r"^Object missing required field `(.+)`$")


def readable(message: str) -> str:
    """Rephrase a msgspec message (without its ``- at `$...``` suffix) for a person."""
    message = _EXPECTED.sub(lambda m: "must be " + _TYPE_NAMES.get(m[1], m[1]), message)
    message = _GOT.sub(lambda m: ", got " + _GOT_NAMES.get(m[1], m[1]), message)
    if message.startswith("Invalid enum value "):
        return message.replace("Invalid enum value ", "", 1) + " is not one of the allowed values"
    return message


def field_error(field: str, message: str) -> FieldError:
    """One problem, in the API's ``{"field", "code", "message"}`` shape."""
    return {"field": field, "code": "VALIDATION_ERROR", "message": message}


def _problem(exc: msgspec.ValidationError, prefix: str) -> FieldError:
    text = str(exc)
    message, sep, path = text.rpartition(" - at `")
    if not sep:
        message, path = text, "$`"
    field = prefix + path.rstrip("`").removeprefix("$")
    if match := _UNKNOWN.match(message):
        return field_error(f"{field}.{match[1]}", "unknown field; remove it")
    if match := _MISSING.match(message):
        return field_error(f"{field}.{match[1]}", "required field is missing")
    return field_error(field, readable(message))


def convert_strict(value: Any, tp: type[T], prefix: str) -> tuple[T | None, list[FieldError]]:
    """``msgspec.convert`` (strict: no ``"5"`` for 5, no ``true`` for 1) without raising.

    Args:
        value: Decoded JSON (dicts, lists, scalars).
        tp: The type to convert to.
        prefix: Field path of ``value`` in the request, e.g. ``"config"``.

    Returns:
        ``(converted, [])``, or ``(None, [problem])`` when ``value`` does not fit ``tp``.
    """
    try:
        return msgspec.convert(value, tp), []
    except msgspec.ValidationError as exc:
        return None, [_problem(exc, prefix)]


def inline_schema(tp: type[Any]) -> dict[str, Any]:
    """The JSON Schema of a Struct, its nested Structs written in place: no `$ref`/`$defs`
    and no titles (what a model is given as a tool's parameters)."""
    schema = msgspec.json.schema(tp)
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
        return {k: resolve(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}

    resolved: dict[str, Any] = resolve(schema)
    return resolved
