"""The registry's command table served as the service serves it (fixtures: ``conftest``)."""

from typing import Any

import msgspec

from parley.registry.app import ROUTES
from parley.registry.handlers import Registry
from parley.registry.handlers import reply_for_error

__all__ = ["NS", "send"]

NS = "acme"
"""The namespace every command is sent in unless its body names another."""


async def send(registry: Registry, verb: str, **body: Any) -> Any:
    """Serve one command as the service does; the reply, an error reply on a refusal."""
    command_type, handler = ROUTES[verb]
    try:
        return await handler(registry, msgspec.convert({"namespace": NS, **body}, command_type))
    except Exception as exc:
        return reply_for_error(exc)
