"""The optional request parameters routes declare alike: a header, and a query filter that
takes one of a few values (listed in the docs, and in the OpenAPI schema as an ``enum``, by
:func:`one_of`, or :func:`many_of` for a repeatable filter; checked by :func:`check_one_of`,
in any case).

Use them inside ``Annotated``: ``status: Annotated[str | None, one_of(_STATUSES)] = None``.
"""

from collections.abc import Collection
from collections.abc import Iterable
from typing import Annotated
from typing import Any

from litestar.params import HeaderParameter
from litestar.params import Parameter
from litestar.params import QueryParameter

from parley.edge.http.errors import invalid

__all__ = [
    "ExactName",
    "Labels",
    "canonical",
    "check_one_of",
    "many_of",
    "one_of",
    "optional_header",
]

Labels = Annotated[
    list[str] | None,
    Parameter(
        required=False,
        description="`key=value`, repeatable.",
        schema_extra={"items": {"type": "string", "pattern": "^[^=]+="}},
    ),
]
"""The `label` filter of a list: every `key=value` must match (see ``parse_labels``)."""
ExactName = Annotated[str | None, Parameter(required=False, description="Exact name.")]
"""The `name` filter of a list."""


def optional_header(name: str, description: str) -> Any:
    """An optional request header ``name``, documented as ``description``."""
    return HeaderParameter(name=name, required=False, description=description)


def one_of(values: Iterable[str], *, query: str | None = None) -> Any:
    """An optional query filter (named ``query`` when not as its argument) taking one of
    ``values``: its description lists them, its schema is their ``enum``."""
    listed = list(values)
    return _query(query, description=", ".join(listed) + ".", schema_extra={"enum": listed})


def many_of(values: Iterable[str], description: str, *, query: str | None = None) -> Any:
    """An optional, repeatable query filter (named ``query`` when not as its argument) whose
    every value is one of ``values``."""
    listed = list(values)
    return _query(
        query,
        description=f"{description} One of: {', '.join(listed)}; repeatable.",
        schema_extra={"items": {"type": "string", "enum": listed}},
    )


def _query(name: str | None, **kwargs: Any) -> Any:
    """An optional query parameter, named ``name`` when not as its argument."""
    if name is None:
        return Parameter(required=False, **kwargs)
    return QueryParameter(name=name, required=False, **kwargs)


def canonical(value: str, values: Collection[str]) -> str | None:
    """The one of ``values`` that ``value`` spells in any case, else ``None``."""
    folded = value.casefold()
    return next((v for v in values if v.casefold() == folded), None)


def check_one_of(name: str, value: str | None, values: Collection[str]) -> str | None:
    """The filter ``name`` as spelled in ``values`` (any case is accepted), or ``None``.

    Raises:
        ParleyError: ``422 VALIDATION_ERROR`` unless ``value`` is absent or one of ``values``.
    """
    if value is None:
        return None
    found = canonical(value, values)
    if found is None:
        raise invalid(f"query.{name}", "expected one of " + ", ".join(values))
    return found
