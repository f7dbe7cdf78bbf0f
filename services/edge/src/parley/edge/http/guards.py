"""`Idempotency-Key`: the id a client's key stands for. (The `Host` allow-list, ports
included, is :class:`parley.edge.http.security.HostPolicy`.)"""

import re
import uuid

from parley.contracts.errors import ErrorCode
from parley.edge.http.errors import ApiError

__all__ = ["idempotent_id", "replay_headers"]

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotent_id(key: str, namespace: str, space: uuid.UUID) -> str:
    """The id an `Idempotency-Key` stands for in ``namespace``: the same key, the same id.

    Raises:
        ApiError: ``INVALID_REQUEST`` unless the key is 1–255 printable ASCII characters.
    """
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            ErrorCode.INVALID_REQUEST,
            "Idempotency-Key must be 1–255 printable ASCII characters",
            [{"field": "header.Idempotency-Key", "message": "invalid"}],
        )
    return str(uuid.uuid5(space, f"{namespace}\x00{key}"))


def replay_headers(location: str, replayed: bool) -> dict[str, str]:
    """The headers of a create: its `Location`, and `Idempotent-Replayed: true` when a retry
    with the same `Idempotency-Key` found what the first try made."""
    headers = {"Location": location}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return headers
