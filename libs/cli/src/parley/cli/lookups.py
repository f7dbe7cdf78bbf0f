"""Names to ids: commands take an agent by its name or its id; the shell completes names."""

import re

from parley.cli.client import Api
from parley.cli.config import target
from parley.cli.exits import CliFailure
from parley.cli.exits import Exit

__all__ = ["agent_id", "agent_names"]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def agent_id(api: Api, ref: str) -> str:
    """The id of the agent ``ref`` names (an id is taken as it is)."""
    if _UUID.match(ref):
        return ref
    found = api.get("/api/v1/agents", name=ref, limit=1)
    if not found:
        raise CliFailure("AGENT_NOT_FOUND", f"no agent named {ref!r}", Exit.NOT_FOUND)
    return str(found[0]["id"])


def agent_names(incomplete: str) -> list[str]:
    """The namespace's agent names starting with ``incomplete``, for shell completion (none
    when the edge cannot be asked: completion never fails)."""
    try:
        client = Api(target(None, None, None), timeout=2)
        try:
            names = [a["spec"]["name"] for a in client.items("/api/v1/agents", {}, limit=200)]
        finally:
            client.close()
    except (CliFailure, KeyError, TypeError, ValueError):
        return []
    return sorted(n for n in names if n.startswith(incomplete))
