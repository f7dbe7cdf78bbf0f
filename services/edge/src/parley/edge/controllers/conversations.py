"""A chat with an agent that names its conversation: continued, or opened on first use.

GoAgents clients choose their own ``conversation_id`` (``"conv-456"``). A chat naming one
continues it when it is a conversation of that agent, and otherwise goes to the runtime,
which opens a conversation of that id with the turn (the id is checked against the id pattern
by the body's type). An id that is a conversation of another agent (or an ad-hoc session) of
the namespace is refused here; one recorded in another namespace, or deleted, cannot be
opened again and is ``404 SESSION_NOT_FOUND`` from the runtime, like any conversation of
another namespace.
"""

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError
from parley.edge.projections.runtime import RuntimeProjection

__all__ = ["check_conversation"]


def check_conversation(
    runtime: RuntimeProjection, namespace: str, agent_id: str, conversation_id: str
) -> None:
    """Refuse ``conversation_id`` when it is a conversation of another agent of ``namespace``
    (``400 INVALID_REQUEST``); a conversation of ``agent_id``, or none yet, may be chatted in.
    """
    found, owner_id = runtime.session_agent(namespace, conversation_id)
    if not found or owner_id == agent_id:
        return
    owner = "another agent" if owner_id is not None else "no agent (an ad-hoc session)"
    message = (
        f"conversation_id {conversation_id!r} is a conversation of {owner}; choose another id,"
        f" or chat in it at /api/v1/sessions/{conversation_id}/chat"
    )
    raise ApiError(
        ErrorCode.INVALID_REQUEST,
        message,
        {"errors": [{"field": "body.conversation_id", "message": f"a conversation of {owner}"}]},
    )
