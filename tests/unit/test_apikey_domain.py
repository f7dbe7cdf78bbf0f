"""API keys: given events, when a command, then events or a refusal; and the fold."""

from datetime import datetime
from datetime import timedelta
from functools import reduce

import msgspec
import pytest
from _builders import NOW
from _builders import NS
from _builders import folded_by_registry
from _builders import refusal
from _builders import stored

from parley.aggregates.agent import CorruptStreamError
from parley.aggregates.apikey import USE_INTERVAL
from parley.aggregates.apikey import ApiKey
from parley.aggregates.apikey import Issue
from parley.aggregates.apikey import KeyCommand
from parley.aggregates.apikey import Reissue
from parley.aggregates.apikey import decide
from parley.aggregates.apikey import evolve
from parley.aggregates.apikey import usable
from parley.aggregates.decision import Context
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.identity import EVENT_TYPES
from parley.contracts.identity import ApiKeyCreated
from parley.contracts.identity import ApiKeyRevoked
from parley.contracts.identity import ApiKeyRotated
from parley.contracts.identity import ApiKeyUsed
from parley.contracts.identity import CreateApiKey
from parley.contracts.identity import RecordApiKeyUse
from parley.contracts.identity import RevokeApiKey
from parley.contracts.identity import Role
from parley.contracts.identity import RotateApiKey
from parley.contracts.identity import apikey_stream

KEY = "0123456789abcdef"


def issue(**fields: object) -> Issue:
    body = {"namespace": NS, "name": "ci", "roles": ["operator"], **fields}
    command = msgspec.convert(body, CreateApiKey)
    return Issue(command=command, key_id=KEY, digest="d" * 64, prefix=f"pk_{KEY}")


def rotate(digest: str = "e" * 64, **fields: object) -> Reissue:
    command = msgspec.convert({"namespace": NS, "key_id": KEY, **fields}, RotateApiKey)
    return Reissue(command=command, digest=digest, prefix=f"pk_{KEY}")


def revoke(**fields: object) -> RevokeApiKey:
    return msgspec.convert({"namespace": NS, "key_id": KEY, **fields}, RevokeApiKey)


def use(namespace: str = NS) -> RecordApiKeyUse:
    return RecordApiKeyUse(namespace=namespace, key_id=KEY)


def run(state: ApiKey | None, command: KeyCommand, at: datetime = NOW) -> ApiKey | None:
    """Decide at ``at``, then fold the decided events as the store would record them."""
    return folded_by_registry(
        evolve,
        state,
        decide(state, command, Context(at)).events,
        stream=apikey_stream(KEY),
        subject=KEY,
        time=at,
    )


def given(*commands: KeyCommand) -> ApiKey:
    state = reduce(run, commands, None)
    assert state is not None
    return state


def refused(state: ApiKey | None, command: KeyCommand) -> ParleyError:
    return refusal(decide, state, command, Context(NOW))


# --- create ----------------------------------------------------------------------------------


def test_creating_a_key_records_its_digest_and_metadata_never_a_secret() -> None:
    decided = decide(None, issue(actor="key:admin"), Context(NOW)).events
    assert decided == [
        (
            "apikey.created",
            ApiKeyCreated(
                key_id=KEY,
                name="ci",
                digest="d" * 64,
                prefix=f"pk_{KEY}",
                roles=[Role.OPERATOR],
                namespaces=[NS],  # none given: the command's namespace
                created_by="key:admin",
            ),
        )
    ]
    assert "secret" not in msgspec.to_builtins(decided[0][1])


def test_a_created_key_folds_to_its_roles_namespaces_and_expiry() -> None:
    expiry = NOW + timedelta(days=30)
    key = given(
        issue(roles=["viewer", "admin", "viewer"], namespaces=["b", "a"], expires_at=expiry)
    )
    assert key.roles == [Role.ADMIN, Role.VIEWER] and key.namespaces == ["a", "b"]
    assert key.namespace == NS and key.expires_at == expiry and key.version == 1
    assert key.created_at == NOW and not key.revoked and usable(key, NOW) is None
    assert usable(key, expiry) == "expired"


def test_an_expiry_in_the_past_is_refused() -> None:
    error = refused(None, issue(expires_at=NOW - timedelta(seconds=1)))
    assert error.code == ErrorCode.VALIDATION_ERROR and "expires_at" in error.message


def test_a_create_over_an_existing_key_is_a_conflict() -> None:
    assert refused(given(issue()), issue()).code == ErrorCode.CONCURRENCY_CONFLICT


def test_a_create_command_refuses_unknown_roles_bad_namespaces_and_unknown_fields() -> None:
    for body in (
        {"name": "x", "roles": ["root"]},
        {"name": "x", "roles": []},
        {"name": "x", "roles": ["viewer"], "namespaces": ["Not A Namespace"]},
        {"name": "x", "roles": ["viewer"], "digest": "chosen-by-the-caller"},
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(body, CreateApiKey)
    assert msgspec.convert({"name": "x", "roles": ["admin"], "namespaces": ["*"]}, CreateApiKey)


# --- rotate ----------------------------------------------------------------------------------


def test_rotating_replaces_the_digest_and_keeps_the_expiry_unless_given() -> None:
    expiry = NOW + timedelta(days=1)
    key = given(issue(expires_at=expiry))
    assert decide(key, rotate(actor="key:admin"), Context(NOW)).events == [
        (
            "apikey.rotated",
            ApiKeyRotated(
                key_id=KEY,
                digest="e" * 64,
                prefix=f"pk_{KEY}",
                expires_at=expiry,
                rotated_by="key:admin",
            ),
        )
    ]
    later = NOW + timedelta(days=7)
    rotated = given(issue(expires_at=expiry), rotate(expires_at=later))
    assert rotated.digest == "e" * 64 and rotated.expires_at == later and rotated.rotated_at == NOW
    assert rotated.version == 2


def test_rotating_or_revoking_a_missing_or_another_namespace_s_key_is_not_found() -> None:
    key = given(issue())
    assert refused(None, rotate()).code == ErrorCode.NOT_FOUND
    assert refused(None, revoke()).code == ErrorCode.NOT_FOUND
    elsewhere = Reissue(
        command=RotateApiKey(namespace="other", key_id=KEY), digest="f" * 64, prefix="pk_x"
    )
    assert refused(key, elsewhere).code == ErrorCode.NOT_FOUND
    assert refused(key, RevokeApiKey(namespace="other", key_id=KEY)).code == ErrorCode.NOT_FOUND


def test_a_stale_expected_version_is_a_conflict() -> None:
    key = given(issue(), rotate())
    assert refused(key, revoke(expected_version=1)).code == ErrorCode.CONCURRENCY_CONFLICT
    assert decide(key, revoke(expected_version=2), Context(NOW)).events


# --- revoke ----------------------------------------------------------------------------------


def test_revoking_records_who_and_why_and_the_key_stops_for_good() -> None:
    key = given(issue())
    assert decide(key, revoke(reason="leaked", actor="jwt:idp#ann"), Context(NOW)).events == [
        ("apikey.revoked", ApiKeyRevoked(key_id=KEY, reason="leaked", revoked_by="jwt:idp#ann"))
    ]
    revoked = given(issue(), revoke(actor="key:admin"))
    assert revoked.revoked and revoked.revoked_at == NOW and revoked.revoked_by == "key:admin"
    assert usable(revoked, NOW) == "revoked"
    assert refused(revoked, revoke()).code == ErrorCode.INVALID_STATE_TRANSITION
    assert refused(revoked, rotate()).code == ErrorCode.INVALID_STATE_TRANSITION


# --- use -------------------------------------------------------------------------------------


def test_a_use_is_recorded_at_most_once_per_interval() -> None:
    key = given(issue())
    assert decide(key, use(), Context(NOW)).events == [("apikey.used", ApiKeyUsed(key_id=KEY))]
    used = run(key, use())
    assert used is not None and used.last_used_at == NOW
    assert not decide(used, use(), Context(NOW + USE_INTERVAL - timedelta(seconds=1)))
    assert decide(used, use(), Context(NOW + USE_INTERVAL)).events


def test_a_use_of_a_missing_revoked_expired_or_foreign_key_records_nothing() -> None:
    expired = given(issue(expires_at=NOW + timedelta(seconds=1)))
    for state, command, at in [
        (None, use(), NOW),
        (given(issue(), revoke()), use(), NOW),
        (expired, use(), NOW + timedelta(seconds=2)),
        (given(issue()), use("other"), NOW),
    ]:
        assert not decide(state, command, Context(at))


# --- fold ------------------------------------------------------------------------------------


def test_evolve_accepts_every_event_decide_emits_and_every_event_type_has_a_payload() -> None:
    key = given(issue(), rotate(), use())
    assert key.version == 3
    final = run(key, revoke())
    assert final is not None and final.version == 4
    assert set(EVENT_TYPES) == {"apikey.created", "apikey.rotated", "apikey.revoked", "apikey.used"}


def test_a_corrupt_stream_is_refused_by_the_fold() -> None:
    created = stored(
        "apikey.created",
        decide(None, issue(), Context(NOW)).events[0][1],
        source="/parley/registry",
        subject=KEY,
        time=NOW,
        stream=apikey_stream(KEY),
        version=1,
    )
    with pytest.raises(CorruptStreamError):
        evolve(given(issue()), created)
    revoked = msgspec.structs.replace(created, type="apikey.revoked", data={"key_id": KEY})
    with pytest.raises(CorruptStreamError):
        evolve(None, revoked)
