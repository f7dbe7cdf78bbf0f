"""The authenticator: one entry point for X-API-Key, Bearer keys and Bearer JWTs."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import msgspec
import pytest

from parley.contracts.identity import CreateApiKey
from parley.contracts.identity import Role
from parley.eventstore.memory import MemoryEventStore
from parley.identity import AuthenticationError
from parley.identity import Authenticator
from parley.identity import BearerVerifier
from parley.identity import JwtSettings
from parley.identity import KeyIndex
from parley.registry.app import ROUTES
from parley.registry.handlers import Registry

SECRET = b"j" * 32


@pytest.fixture
async def keys() -> AsyncIterator[tuple[KeyIndex, str]]:
    """A started key index, and the secret of one viewer key in it."""
    store = MemoryEventStore()
    _, create = ROUTES["create_api_key"]
    command = msgspec.convert({"name": "ci", "roles": ["viewer"]}, CreateApiKey)
    reply = await create(Registry(store), command)
    index = KeyIndex(store)
    await index.start()
    assert await index.wait_for(reply.position, within=1.0)  # type: ignore[attr-defined]
    yield index, reply.secret  # type: ignore[attr-defined]
    await index.stop()


async def refusal(authenticator: Authenticator, **headers: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as info:
        await authenticator.authenticate(**headers)
    return info.value


async def test_a_key_authenticates_as_x_api_key_or_as_a_bearer_token(
    keys: tuple[KeyIndex, str],
) -> None:
    index, secret = keys
    authenticator = Authenticator(index)
    by_header = await authenticator.authenticate(api_key=secret)
    by_bearer = await authenticator.authenticate(authorization=f"Bearer {secret}")
    assert by_header == by_bearer and by_header.roles == {Role.VIEWER}


async def test_missing_and_malformed_credentials_are_refused_with_a_reason(
    keys: tuple[KeyIndex, str],
) -> None:
    authenticator = Authenticator(keys[0])
    assert "no credentials" in (await refusal(authenticator)).reason
    assert "Bearer <token>" in (await refusal(authenticator, authorization="Basic abc")).reason
    assert "Bearer <token>" in (await refusal(authenticator, authorization="Bearer ")).reason
    assert (await refusal(authenticator, api_key="bogus")).reason == "malformed API key"
    no_jwt = await refusal(authenticator, authorization="Bearer x")
    assert "bearer tokens are not accepted" in no_jwt.reason and no_jwt.scheme == "Bearer"


async def test_a_jwt_is_verified_when_an_identity_provider_is_configured(
    keys: tuple[KeyIndex, str], tmp_path: Path
) -> None:
    (tmp_path / "secret").write_bytes(SECRET)
    settings = JwtSettings(
        jwt_issuer="idp", jwt_audience="parley", jwt_secret_file=str(tmp_path / "secret")
    )
    authenticator = Authenticator(keys[0], await BearerVerifier.start(settings))
    claims = {
        "iss": "idp",
        "aud": "parley",
        "sub": "ann",
        "exp": int(time.time()) + 60,
        "roles": "admin",
        "namespaces": ["*"],
    }
    token = jwt.encode(claims, SECRET, "HS256")
    principal = await authenticator.authenticate(authorization=f"Bearer {token}")
    assert principal.kind == "jwt" and principal.everywhere
    assert (await refusal(authenticator, authorization="Bearer x")).reason == "malformed token"


async def test_a_key_s_use_is_reported_once_a_minute_without_holding_the_request(
    keys: tuple[KeyIndex, str],
) -> None:
    index, secret = keys
    reported: list[str] = []
    release = asyncio.Event()

    async def on_use(key_id: str) -> None:
        await release.wait()  # a slow report: the requests must not wait for it
        reported.append(key_id)

    authenticator = Authenticator(index, on_key_use=on_use)
    for _ in range(5):
        await authenticator.authenticate(api_key=secret)
    release.set()
    await authenticator.close()
    assert len(reported) == 1 and secret.startswith(f"pk_{reported[0]}_")
