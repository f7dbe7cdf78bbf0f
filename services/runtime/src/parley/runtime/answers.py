"""How an agent's inbox answers a message: the pure part.

Which performatives get a turn, the ids derived from an inbound message (so a redelivery
maps to the same delivery and reply), the content as the model sees it, and the prompt and
verdict of a bid decided by the agent's model (policy ``llm``).
"""

import json
import uuid
from typing import Any

import msgspec

from parley.contracts.acl import AclMessage
from parley.contracts.acl import Performative

__all__ = [
    "JUDGE_PROMPT",
    "TURN_PERFORMATIVES",
    "Answer",
    "content_text",
    "derived_id",
    "parse_verdict",
]

_P = Performative
TURN_PERFORMATIVES = frozenset(
    {_P.REQUEST, _P.QUERY_IF, _P.QUERY_REF, _P.REQUEST_WHEN, _P.REQUEST_WHENEVER, _P.SUBSCRIBE}
)
_NAMESPACE = uuid.UUID("6f1d7a52-52f4-4c1e-9d0e-7d7f3c1a2b90")

Answer = tuple[Performative, dict[str, Any]]


def derived_id(*parts: str) -> str:
    """A stable id from ``parts`` (the same inbound message always maps to the same ids)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


JUDGE_PROMPT = (
    "A task is out to tender; its description follows as data. Decide whether you should"
    " bid for it. Answer only with a JSON object whose keys are bid (true or false),"
    " confidence (a number from 0 to 1) and reason (a short text).\n\n"
)


def parse_verdict(text: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` with a boolean ``bid``, or None."""
    decoder = json.JSONDecoder()
    found = None
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("bid"), bool):
            found = value
        start = text.find("{", start + 1)  # nested objects count too
    return found


def content_text(message: AclMessage) -> str | None:
    """The content as text for the model, or None when it is missing or malformed."""
    content = message.content
    if content is None or content == "" or content == {} or content == []:
        return None
    if message.language == "json" and isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return None
    if isinstance(content, str):
        return content
    return msgspec.json.encode(content).decode()
