"""Personas: named, reusable system prompts, owned by the registry.

A persona lives in a namespace on stream ``persona_stream(namespace, name)``; built-in
personas ship with this package (``data/personas/*.md``), are visible in every namespace and
cannot be created over or deleted. An agent's ``persona`` names one of either kind.
"""

import tomllib
from functools import cache
from importlib.resources import files
from typing import Annotated

import msgspec
from msgspec import Meta

from parley.contracts.commands import Command
from parley.contracts.ids import NameStream

__all__ = [
    "EVENT_TYPES",
    "CreatePersona",
    "DeletePersona",
    "PersonaCreated",
    "PersonaDeleted",
    "PersonaName",
    "PersonaSpec",
    "PersonaView",
    "load_builtin_personas",
    "persona_stream",
]

PersonaName = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="1–64 lowercase letters, digits, `-` and `_`; starts with a letter or digit.",
    ),
]
Tag = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class PersonaSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A persona as a user defines it."""

    name: PersonaName
    """Unique per namespace, and distinct from every built-in persona's."""
    description: Annotated[str, Meta(max_length=4096)] = ""
    """What the persona is for."""
    content: Annotated[str, Meta(min_length=1, max_length=100_000)]
    """The system prompt, as markdown."""
    tags: Annotated[list[Tag], Meta(max_length=32)] = []
    """Free-form tags."""


# --- commands (request bodies on parley.cmd.registry.<verb>) ---------------------------


class CreatePersona(Command, kw_only=True):
    """Create a persona; a live persona of the same name is `PERSONA_EXISTS`."""

    spec: PersonaSpec
    """The definition."""


class DeletePersona(Command, kw_only=True):
    """Delete a persona; its name can then be used again. Built-ins cannot be deleted."""

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    """The persona's name."""
    reason: Annotated[str, Meta(max_length=1024)] | None = None
    """Why; recorded in the event."""
    expected_version: int | None = None
    """Refuse with `CONCURRENCY_CONFLICT` unless the persona is at this version."""


# --- events (data of persona.* events) --------------------------------------------------


class _PersonaEvent(msgspec.Struct, kw_only=True):
    """The field every ``persona.*`` event starts with: which persona."""

    name: str


class PersonaCreated(_PersonaEvent, kw_only=True):
    """A persona was created (or created again after a delete)."""

    spec: PersonaSpec


class PersonaDeleted(_PersonaEvent, kw_only=True):
    """A persona was deleted; agents naming it keep their definition, but no create or
    update may name it again until it is re-created."""

    reason: str | None = None


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "persona.created": PersonaCreated,
    "persona.deleted": PersonaDeleted,
}
"""Event type name → payload type, for every persona event."""


class PersonaView(msgspec.Struct, kw_only=True):
    """A persona as the API shows it."""

    name: str
    """The persona's name."""
    description: str
    """What the persona is for."""
    content: str
    """The system prompt, as markdown."""
    tags: list[str]
    """Free-form tags."""
    builtin: bool
    """Shipped with Parley: in every namespace, read-only."""
    namespace: str | None = None
    """Tenant of a created persona; null for a built-in."""
    version: int = 0
    """Stream version (0 for a built-in)."""
    created_at: str | None = None
    """When it was created (null for a built-in)."""


persona_stream = NameStream("persona")
"""Stream name of a persona's events (the name hashed, as in ``name_stream``)."""


@cache
def load_builtin_personas() -> dict[str, PersonaSpec]:
    """The built-in personas by name, from ``data/personas/<name>.md``.

    Each file starts with TOML front matter between ``+++`` lines (``description``,
    ``tags``); the rest is the content. The file name is the persona's name.
    """
    personas: dict[str, PersonaSpec] = {}
    folder = files("parley.contracts") / "data" / "personas"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        name = entry.name.removesuffix(".md")
        _, front, content = entry.read_text(encoding="utf-8").split("+++\n", 2)
        meta = tomllib.loads(front)
        personas[name] = msgspec.convert(
            {"name": name, "content": content.strip() + "\n", **meta}, PersonaSpec
        )
    return personas
