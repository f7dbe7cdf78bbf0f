"""The clusters projection: every live cluster per namespace, folded from ``cluster-`` streams.

The fold is :func:`parley.aggregates.cluster.evolve`, the registry's own. Other routes (group
runs) ask it for a cluster's agents with :meth:`ClustersProjection.agent_ids`.
"""

from parley.aggregates.cluster import Cluster
from parley.aggregates.cluster import evolve
from parley.contracts.clusters import ClusterView
from parley.contracts.envelope import Event
from parley.contracts.envelope import utcnow
from parley.edge.projections._base import LiveProjection
from parley.edge.views import as_view
from parley.edge.views import iso

__all__ = ["ClustersProjection"]


class ClustersProjection(LiveProjection[Cluster, Cluster]):
    """Live clusters by namespace and name (viewed when read: `scaling` depends on now)."""

    prefix = "cluster-"
    name = "clusters-projection"

    def get(self, namespace: str, name: str) -> ClusterView | None:
        """The live cluster ``name`` of ``namespace``, if any."""
        cluster = self._get(namespace, name)
        return _view(cluster) if cluster is not None else None

    def clusters(self, namespace: str) -> list[ClusterView]:
        """Every live cluster of ``namespace``, by name."""
        return [_view(c) for c in sorted(self._entries(namespace), key=lambda c: c.name)]

    def agent_ids(self, namespace: str, name: str) -> list[str] | None:
        """Ids of the agents of cluster ``name`` in manifest order; None if no such cluster.

        The ids are those the cluster created; an agent deleted on its own since is still
        listed (check the agents projection for the live ones).
        """
        cluster = self._get(namespace, name)
        return list(cluster.agent_ids) if cluster is not None else None

    def _evolve(self, state: Cluster | None, event: Event) -> Cluster | None:
        return evolve(state, event)

    def _entry(self, cluster: Cluster) -> tuple[str, Cluster | None]:
        return cluster.name, cluster if cluster.live else None


def _view(cluster: Cluster) -> ClusterView:
    return as_view(
        ClusterView,
        cluster,
        agent_ids=list(cluster.agent_ids),
        created_at=iso(cluster.created_at),
        updated_at=iso(cluster.updated_at),
        scaling=cluster.scaling_at(utcnow()) is not None,
    )
