"""The body and results of `POST /clusters/{name}/scale`, and the agent-count scale (resize).

The one route has two meanings, told apart by the body:

- `{"agent_name": …, "instances": N}` sets one agent's concurrency slots (GoAgents' scale);
- `{"target_agents": N}` (also spelled `targetAgents`, Godel's, or `replicas`, as in the
  manifest's template) sets how many agents the cluster holds: new replicas come from its
  template, and scaling down stops and deletes the newest.
"""

from typing import Annotated
from typing import Never

import msgspec
from msgspec import Meta

from parley.contracts.clusters import MAX_AGENTS
from parley.contracts.clusters import ClusterView
from parley.contracts.clusters import ResizeCluster
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.edge.http.limits import check_agents_quota

__all__ = ["ResizeResult", "ScaleRequest", "ScaleResult", "check_quota", "resize_command"]

AgentCount = Annotated[int, Meta(ge=1, le=MAX_AGENTS)]
_COUNT_FIELDS = ("target_agents", "targetAgents", "replicas")


class ScaleRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /clusters/{name}/scale`: `agent_name` with `instances`, or
    `target_agents` (alone)."""

    agent_name: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    """The agent's name in the cluster (template replicas: `<name>-<k>`)."""
    instances: Annotated[int, Meta(ge=0, le=1024)] | None = None
    """Concurrency slots to give that agent."""
    target_agents: AgentCount | None = None
    """How many agents the cluster is to hold (1–1000)."""
    targetAgents: AgentCount | None = None  # noqa: N815 - Godel's spelling
    """`target_agents`, as Godel spells it."""
    replicas: AgentCount | None = None
    """`target_agents`, as a template's `replicas` (GoAgents)."""

    def agent_count(self) -> int | None:
        """The number of agents asked for, or None for an instances scale.

        Raises:
            ParleyError: ``VALIDATION_ERROR`` for a body mixing or missing the two forms.
        """
        given: dict[str, int] = {
            f: getattr(self, f) for f in _COUNT_FIELDS if getattr(self, f) is not None
        }
        if len(set(given.values())) > 1:
            _refuse(next(iter(given)), f"{' and '.join(given)} disagree; give one of them")
        if given and (self.agent_name is not None or self.instances is not None):
            _refuse(
                next(iter(given)),
                "sets the number of agents; agent_name with instances sets one agent's"
                " instances; give one or the other",
            )
        if given:
            return next(iter(given.values()))
        for field in ("agent_name", "instances"):
            if getattr(self, field) is None:
                _refuse(field, "required (or give target_agents to set the number of agents)")
        return None


class ScaleResult(msgspec.Struct, kw_only=True):
    """What an instances scale did."""

    agent_name: str
    agent_id: str
    current_instances: int
    target_instances: int


class ResizeResult(msgspec.Struct, kw_only=True):
    """What an agent-count scale did."""

    name: str
    from_agents: int
    """How many agents the cluster held before."""
    to_agents: int
    """How many it holds now."""
    agent_ids: list[str]
    """Its agents now, oldest first."""


def resize_command(namespace: str, request_id: str, name: str, count: int) -> ResizeCluster:
    """The registry command of a resize."""
    return ResizeCluster(namespace=namespace, request_id=request_id, name=name, target_agents=count)


def check_quota(view: ClusterView, count: int, held: int, limit: int) -> None:
    """Refuse a resize adding more agents than the namespace's quota leaves (0: no limit).

    Raises:
        ApiError: ``403 QUOTA_EXCEEDED``, as a create over the quota.
    """
    check_agents_quota(view.namespace, held, count - len(view.agent_ids), limit)


def _refuse(field: str, message: str) -> Never:
    raise ParleyError(
        ErrorCode.VALIDATION_ERROR,
        f"{field}: {message}",
        {
            "errors": [
                {"field": f"body.{field}", "code": ErrorCode.VALIDATION_ERROR, "message": message}
            ]
        },
    )
