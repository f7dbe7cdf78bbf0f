"""The clusters projection: every live cluster per namespace, folded from ``cluster-`` streams.

The fold is :func:`parley.aggregates.cluster.evolve`, the registry's own. Other routes (group
runs) ask it for a cluster's agents with :meth:`ClustersProjection.agent_ids`.
"""

from parley.aggregates.cluster import Cluster, evolve
from parley.contracts.clusters import ClusterView
from parley.contracts.envelope import Event, utcnow
from parley.edge.projections._base import FoldingProjection
from parley.edge.projections.agents import iso
from parley.eventstore import EventStore

__all__ = ["ClustersProjection"]


class ClustersProjection(FoldingProjection):
    """Live clusters by namespace and name."""

    prefix = "cluster-"
    name = "clusters-projection"

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._clusters: dict[str, Cluster] = {}
        self._by_ns: dict[str, dict[str, Cluster]] = {}

    def get(self, namespace: str, name: str) -> ClusterView | None:
        """The live cluster ``name`` of ``namespace``, if any."""
        cluster = self._by_ns.get(namespace, {}).get(name)
        return _view(cluster) if cluster is not None else None

    def clusters(self, namespace: str) -> list[ClusterView]:
        """Every live cluster of ``namespace``, by name."""
        found = self._by_ns.get(namespace, {})
        return [_view(found[name]) for name in sorted(found)]

    def agent_ids(self, namespace: str, name: str) -> list[str] | None:
        """Ids of the agents of cluster ``name`` in manifest order; None if no such cluster.

        The ids are those the cluster created; an agent deleted on its own since is still
        listed (check the agents projection for the live ones).
        """
        cluster = self._by_ns.get(namespace, {}).get(name)
        return list(cluster.agent_ids) if cluster is not None else None

    def _fold(self, event: Event) -> None:
        cluster = evolve(self._clusters.get(event.stream), event)
        if cluster is None:
            return
        self._clusters[event.stream] = cluster
        live = self._by_ns.setdefault(cluster.namespace, {})
        if cluster.live:
            live[cluster.name] = cluster
        else:
            live.pop(cluster.name, None)


def _view(cluster: Cluster) -> ClusterView:
    return ClusterView(
        name=cluster.name,
        namespace=cluster.namespace,
        manifest=cluster.manifest,
        agent_ids=list(cluster.agent_ids),
        state=cluster.state,
        version=cluster.version,
        created_at=iso(cluster.created_at),
        updated_at=iso(cluster.updated_at),
        scaling=cluster.scaling_at(utcnow()) is not None,
    )
