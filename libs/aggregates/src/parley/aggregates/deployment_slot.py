"""An agent's one active deployment, folded from ``slot_stream(namespace, agent_id)``.

The deployment service claims the slot (:class:`Claim`) before it records a deployment; two
deployments racing for one agent append to this one stream at one expected version, so
exactly one is accepted: the loser decides again on the winner's claim, which it did not see
when it looked, and is refused. A slot held by a deployment that has finished (or whose create never
landed, after a grace) is taken over; nothing needs releasing. Pure, like every aggregate.
"""

from datetime import datetime
from typing import Never

import msgspec

from parley.aggregates.decision import Context
from parley.aggregates.decision import Decision
from parley.contracts.deployments import DeploymentSlotClaimed
from parley.contracts.deployments import slot_stream
from parley.contracts.envelope import Event
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError

__all__ = ["CATEGORY", "FOLDS", "Claim", "Slot", "decide", "evolve"]

CATEGORY = slot_stream.category
"""The stream category this aggregate folds (``deploymentslot-<id>``)."""
FOLDS: frozenset[str] = frozenset({"deployment_slot.claimed"})
"""The event types :func:`evolve` folds; each is folded by this module alone (per category)."""


class Slot(msgspec.Struct, frozen=True, kw_only=True):
    """Which deployment holds an agent's slot, since when."""

    holder: str
    claimed_at: datetime
    version: int = 0


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """Claim the slot of ``agent_id`` for ``deployment_id``."""

    agent_id: str
    deployment_id: str
    seen_holder: str | None
    """The holder the caller looked at (None: the slot was free)."""
    holder_active: bool
    """Whether ``seen_holder`` still rolls out (or its create is still in flight). A slot
    whose holder changed since is held by a fresh claim: it is active."""


def evolve(state: Slot | None, event: Event) -> Slot | None:
    """Fold one claim; unknown types only advance the version."""
    if event.type == "deployment_slot.claimed":
        claimed = msgspec.convert(event.data, DeploymentSlotClaimed)
        return Slot(holder=claimed.deployment_id, claimed_at=event.time, version=event.version)
    return None if state is None else msgspec.structs.replace(state, version=event.version)


def decide(state: Slot | None, command: Claim, ctx: Context) -> Decision[Never]:
    """One ``deployment_slot.claimed``, nothing for the holder's own retry.

    Raises:
        ParleyError: ``DEPLOYMENT_IN_PROGRESS`` while another deployment of the agent is active.
    """
    del ctx
    if state is not None and state.holder == command.deployment_id:
        return Decision()
    holder_changed = state is not None and state.holder != command.seen_holder
    if state is not None and (command.holder_active or holder_changed):
        raise ParleyError(
            ErrorCode.DEPLOYMENT_IN_PROGRESS,
            f"agent {command.agent_id} has an active deployment {state.holder}; promote, roll"
            " back or wait for it first",
            {"agent_id": command.agent_id, "deployment_id": state.holder},
        )
    claimed = DeploymentSlotClaimed(agent_id=command.agent_id, deployment_id=command.deployment_id)
    return Decision([("deployment_slot.claimed", claimed)])
