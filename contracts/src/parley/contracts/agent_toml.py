"""Agent definitions written as TOML (Caxton's configuration agents).

The TOML document mirrors :class:`~parley.contracts.registry.AgentSpec` field for field
(``[params]``, ``[[tools]]`` with ``[tools.config]``, ``[strategy]``, ``[trigger]``,
``[memory]``, ``[budget]``, ``[labels]``). Caxton's spellings are mapped where they differ:

* ``documentation`` → ``description`` (Caxton keeps a Markdown description there);
* ``tools = ["name", ...]`` (strings) → ``[{name = "name"}]``;
* ``version = "1.0.0"`` (the config's own version) → the ``version`` label;
* ``memory_enabled`` / ``memory_scope`` → ``[memory]``, with Caxton's ``workspace`` scope as
  ``namespace``.

Errors: a document that is not UTF-8 or not TOML raises :class:`TomlAgentError` with the
line and column. A well-formed document that does not fit the schema raises
``msgspec.ValidationError``, exactly as a JSON body does, so the edge maps both the same way.
"""

import re
import tomllib
from typing import Any

import msgspec

from parley.contracts.registry import AgentSpec

__all__ = ["TomlAgentError", "agent_spec_from_toml"]

_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_CAXTON_SCOPES = {"workspace": "namespace"}


class TomlAgentError(ValueError):
    """The document is not valid UTF-8 TOML.

    Attributes:
        line: 1-based line of the problem, when known.
        column: 1-based column of the problem, when known.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line, self.column = line, column


def agent_spec_from_toml(text: str | bytes) -> AgentSpec:
    """Parse a TOML agent definition.

    Args:
        text: The document; bytes must be UTF-8 (a leading BOM is ignored).

    Returns:
        The definition. Catalogue checks (known provider, tools, …) are the registry's.

    Raises:
        TomlAgentError: Not UTF-8 or not TOML.
        msgspec.ValidationError: Valid TOML that does not describe an agent.
    """
    source = _decode(text) if isinstance(text, bytes) else text
    try:
        document = tomllib.loads(source.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        found = _POSITION.search(str(exc))
        raise TomlAgentError(
            f"invalid agent TOML: {exc}",
            line=int(found[1]) if found else None,
            column=int(found[2]) if found else None,
        ) from None
    return msgspec.convert(_from_caxton(document), AgentSpec)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise TomlAgentError(
            f"agent TOML is not valid UTF-8 at line {line}, column {column} (byte"
            f" {exc.start}); save the file as UTF-8",
            line=line,
            column=column,
        ) from None


def _from_caxton(document: dict[str, Any]) -> dict[str, Any]:
    doc = dict(document)
    if "documentation" in doc:
        if "description" in doc:
            raise msgspec.ValidationError(
                "set `description` or Caxton's `documentation`, not both - at `$`"
            )
        documentation = doc.pop("documentation")
        doc["description"] = (
            documentation.strip() if isinstance(documentation, str) else documentation
        )
    if isinstance(doc.get("tools"), list):
        doc["tools"] = [{"name": t} if isinstance(t, str) else t for t in doc["tools"]]
    if "version" in doc:
        labels = doc.get("labels", {})
        if isinstance(labels, dict) and "version" not in labels:
            version = doc.pop("version")
            # `version = 2` is as common as `version = "2.0.0"`; labels are strings.
            if isinstance(version, int | float) and not isinstance(version, bool):
                version = str(version)
            doc["labels"] = {**labels, "version": version}
    memory = {}
    if "memory_enabled" in doc:
        memory["enabled"] = doc.pop("memory_enabled")
    if "memory_scope" in doc:
        scope = doc.pop("memory_scope")
        memory["scope"] = _CAXTON_SCOPES.get(scope, scope) if isinstance(scope, str) else scope
    if memory:
        table = doc.get("memory", {})
        if not isinstance(table, dict) or table.keys() & memory.keys():
            raise msgspec.ValidationError(
                "set memory in `[memory]` or with Caxton's `memory_enabled`/`memory_scope`,"
                " not both - at `$.memory`"
            )
        doc["memory"] = {**table, **memory}
    return doc
