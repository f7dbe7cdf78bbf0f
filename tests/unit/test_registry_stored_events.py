"""Events stored before issue 8 still fold, and the moved deciders decide the same events.

``registry_events_before_issue8.json`` was written by the registry's deciders as they were
before they moved to :mod:`parley.aggregates` (``registry/domain.py``, ``personas.py`` and
the old ``cluster.decide``), over the scenario :func:`scenario` replays: an agent's whole
life, a name claimed, taken over and released, a persona deleted and created again, and a
cluster created, paused, resumed, scaled (once well, once failing) and deleted. Its
``final`` states are what the old folds made of those events.
"""

import json
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from parley.aggregates import agent
from parley.aggregates import cluster
from parley.aggregates import name_claim
from parley.aggregates import persona
from parley.aggregates.cluster import CreateWithAgents
from parley.aggregates.cluster import EndScale
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.contracts.clusters import ClusterManifest
from parley.contracts.clusters import ClusterScaleStarted
from parley.contracts.clusters import CreateCluster
from parley.contracts.clusters import DeleteCluster
from parley.contracts.clusters import ScaleCluster
from parley.contracts.clusters import UpdateCluster
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorBody
from parley.contracts.errors import ErrorCode
from parley.contracts.personas import CreatePersona
from parley.contracts.personas import DeletePersona
from parley.contracts.personas import PersonaSpec
from parley.contracts.registry import AgentAction
from parley.contracts.registry import AgentActionCommand
from parley.contracts.registry import AgentPatch
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import CreateAgent
from parley.contracts.registry import DeleteAgent
from parley.contracts.registry import UpdateAgent

GOLDEN = json.loads(Path(__file__).with_name("registry_events_before_issue8.json").read_text())
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
NS = "acme"
CTX = Context(NOW)

Evolve = Callable[[Any, Event], Any]
EVOLVE: dict[str, Evolve] = {
    "agent": agent.evolve,
    "agentname": name_claim.evolve,
    "persona": persona.evolve,
    "cluster": cluster.evolve,
}
"""The fold of each stream category of the scenario."""


def record(stream: str, version: int, event_type: str, data: Any) -> Event:
    new = NewEvent(
        type=event_type, subject="s", data=data, namespace=NS, time=NOW, source="/parley/registry"
    )
    return Event.record(new, stream=stream, version=version)


class Streams:
    """The scenario's streams: decide on each one's state, record and fold what is decided."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}
        self.versions: dict[str, int] = {}
        self.decided: list[dict[str, Any]] = []

    def run(self, stream: str, decision: Callable[[Any], Decision[Any]]) -> list[Any]:
        evolve = EVOLVE[stream.split("-", 1)[0]]
        events = decision(self.states.get(stream)).events
        for event_type, payload in events:
            data = msgspec.to_builtins(payload)
            self.decided.append({"stream": stream, "type": event_type, "data": data})
            self.versions[stream] = self.versions.get(stream, 0) + 1
            event = record(stream, self.versions[stream], event_type, data)
            self.states[stream] = evolve(self.states.get(stream), event)
        return [payload for _, payload in events]


def scenario() -> Streams:
    """The commands the golden file was written with, through the moved deciders."""
    streams = Streams()

    def on_agent(command: Any) -> None:
        streams.run("agent-a1", lambda state: agent.decide(state, command, CTX))

    spec = AgentSpec(name="helper", description="d", labels={"tier": "gold"})
    on_agent(CreateAgent(namespace=NS, agent_id="a1", spec=spec))
    patch = AgentPatch(name="helper2", instances=2, labels={"tier": None, "env": "prod"})
    on_agent(UpdateAgent(namespace=NS, agent_id="a1", patch=patch))
    on_agent(AgentActionCommand(namespace=NS, agent_id="a1", action=AgentAction.START, reason="go"))
    on_agent(AgentActionCommand(namespace=NS, agent_id="a1", action=AgentAction.PAUSE))
    on_agent(AgentActionCommand(namespace=NS, agent_id="a1", action=AgentAction.FAIL))
    on_agent(AgentActionCommand(namespace=NS, agent_id="a1", action=AgentAction.STOP, force=True))
    on_agent(DeleteAgent(namespace=NS, agent_id="a1", reason="bye"))

    def on_name(command: name_claim.NameCommand) -> None:
        streams.run("agentname-x", lambda state: name_claim.decide(state, command, CTX))

    on_name(name_claim.Claim(agent_id="a1", name="helper", namespace=NS, agent_exists=True))
    on_name(name_claim.Claim(agent_id="a2", name="helper", namespace=NS, agent_exists=False))
    on_name(name_claim.Release(agent_id="a2", name="helper"))

    def on_persona(command: persona.PersonaCommand) -> None:
        streams.run("persona-x", lambda state: persona.decide(state, command, CTX))

    persona_spec = PersonaSpec(name="pirate-x", content="Arr.", tags=["fun"])
    on_persona(CreatePersona(namespace=NS, spec=persona_spec))
    on_persona(DeletePersona(namespace=NS, name="pirate-x", reason="r"))
    on_persona(CreatePersona(namespace=NS, spec=persona_spec))

    def on_cluster(command: cluster.Command) -> list[Any]:
        return streams.run("cluster-x", lambda state: cluster.decide(state, command, CTX))

    manifest = msgspec.convert(
        {
            "apiVersion": "parley.dev/v1",
            "kind": "AgentCluster",
            "metadata": {"name": "team", "namespace": NS, "labels": {"team": "a"}},
            "spec": {"agents": [{"name": "lead"}, {"name": "aide"}]},
        },
        ClusterManifest,
    )
    create = CreateCluster(namespace=NS, manifest=manifest)
    on_cluster(CreateWithAgents(command=create, agent_ids=["i1", "i2"]))
    on_cluster(UpdateCluster(namespace=NS, name="team", action="pause"))
    on_cluster(UpdateCluster(namespace=NS, name="team", action="resume"))
    [started] = on_cluster(ScaleCluster(namespace=NS, name="team", agent_name="aide", instances=3))
    on_cluster(EndScale(started=started))
    on_cluster(ScaleCluster(namespace=NS, name="team", agent_name="lead", instances=0))
    failed = ClusterScaleStarted(name="team", agent_id="i1", agent_name="lead", instances=0)
    error = ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="boom")
    on_cluster(EndScale(started=failed, error=error))
    on_cluster(DeleteCluster(namespace=NS, name="team"))
    return streams


def test_the_moved_deciders_decide_exactly_the_events_the_old_ones_did() -> None:
    assert scenario().decided == GOLDEN["events"]


def test_events_the_old_code_stored_fold_to_the_states_the_old_folds_made() -> None:
    states: dict[str, Any] = {}
    versions: dict[str, int] = {}
    for stored in GOLDEN["events"]:
        stream = stored["stream"]
        versions[stream] = versions.get(stream, 0) + 1
        event = record(stream, versions[stream], stored["type"], stored["data"])
        states[stream] = EVOLVE[stream.split("-", 1)[0]](states.get(stream), event)
    final = {
        "agent": states["agent-a1"],
        "claim": states["agentname-x"],
        "persona": states["persona-x"],
        "cluster": states["cluster-x"],
    }
    assert json.loads(msgspec.json.encode(final)) == GOLDEN["final"]
