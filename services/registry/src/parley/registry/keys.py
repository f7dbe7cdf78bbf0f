"""API key handlers: create, rotate, revoke and note the use of a key.

The registry makes each secret here (:func:`parley.identity.keys.issue_secret`), outside the
pure decider, and hands the decider only its digest and prefix; the secret goes back in the
reply to the create or rotate that made it and nowhere else. Who may call these (an admin of
the key's namespaces) is the edge's to check; the decider keeps a key inside the namespace
it was created in (another namespace's key is ``NOT_FOUND``).
"""

from parley.aggregates import apikey
from parley.aggregates.apikey import ApiKey
from parley.aggregates.apikey import Issue
from parley.aggregates.apikey import Reissue
from parley.contracts.identity import ApiKeyReply
from parley.contracts.identity import CreateApiKey
from parley.contracts.identity import RecordApiKeyUse
from parley.contracts.identity import RevokeApiKey
from parley.contracts.identity import RotateApiKey
from parley.contracts.identity import apikey_stream
from parley.eventstore.repository import Outcome
from parley.identity.keys import IssuedSecret
from parley.identity.keys import issue_secret
from parley.identity.keys import new_key_id
from parley.registry.handlers import Registry
from parley.registry.handlers import execute

__all__ = ["create_api_key", "record_api_key_use", "revoke_api_key", "rotate_api_key"]


async def create_api_key(registry: Registry, command: CreateApiKey) -> ApiKeyReply:
    """Create a key; the reply holds its secret, shown this once."""
    key_id = new_key_id()
    issued = issue_secret(key_id)
    decided = Issue(command=command, key_id=key_id, digest=issued.digest, prefix=issued.prefix)
    outcome = await _run(registry, key_id, decided, command)
    return _reply(key_id, outcome, issued)


async def rotate_api_key(registry: Registry, command: RotateApiKey) -> ApiKeyReply:
    """Give a key a new secret; the old one stops working, the reply holds the new one."""
    issued = issue_secret(command.key_id)
    decided = Reissue(command=command, digest=issued.digest, prefix=issued.prefix)
    outcome = await _run(registry, command.key_id, decided, command)
    return _reply(command.key_id, outcome, issued)


async def revoke_api_key(registry: Registry, command: RevokeApiKey) -> ApiKeyReply:
    """Revoke a key for good."""
    return _reply(command.key_id, await _run(registry, command.key_id, command, command))


async def record_api_key_use(registry: Registry, command: RecordApiKeyUse) -> ApiKeyReply:
    """Note a key's use (at most once a minute; otherwise nothing is appended)."""
    return _reply(command.key_id, await _run(registry, command.key_id, command, command))


async def _run(
    registry: Registry,
    key_id: str,
    decided: apikey.KeyCommand,
    command: CreateApiKey | RotateApiKey | RevokeApiKey | RecordApiKeyUse,
) -> Outcome[ApiKey]:
    return await execute(
        registry.keys,
        apikey_stream(key_id),
        apikey.decide,
        decided,
        subject=key_id,
        origin=command,
    )


def _reply(
    key_id: str, outcome: Outcome[ApiKey], issued: IssuedSecret | None = None
) -> ApiKeyReply:
    return ApiKeyReply(
        ok=True,
        key_id=key_id,
        secret=issued.secret if issued else None,
        prefix=issued.prefix if issued else None,
        version=outcome.version,
        position=outcome.position,
    )
