"""JWT bearer verification: good tokens become principals, bad ones are refused with a reason.

Keys are made here with ``cryptography``; the JWKS URL is served by a real HTTP server on
loopback.
"""

import asyncio
import json
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm
from jwt.algorithms import RSAAlgorithm

from parley.contracts.identity import Role
from parley.identity.bearer import BearerVerifier
from parley.identity.bearer import JwtSettings
from parley.identity.principal import AuthenticationError
from parley.kit.settings import SettingsError
from parley.kit.settings import from_env

ISSUER = "https://idp.example"
AUDIENCE = "parley"
SECRET = b"s" * 40


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    found: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ann",
        "exp": now + 300,
        "iat": now,
        "roles": ["operator"],
        "namespaces": ["team-a"],
    }
    found.update(overrides)
    return {k: v for k, v in found.items() if v is not None}


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwt.secret"
    path.write_bytes(SECRET + b"\n")
    return path


async def started(**settings: Any) -> BearerVerifier:
    """A verifier for the test's issuer and audience with ``settings``; it must be on."""
    verifier = await BearerVerifier.start(
        JwtSettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **settings)
    )
    assert verifier is not None
    return verifier


async def hs_verifier(secret_file: Path, **settings: Any) -> BearerVerifier:
    return await started(jwt_secret_file=str(secret_file), **settings)


async def reason(verifier: BearerVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as info:
        await verifier.verify(token)
    assert info.value.status == 401 and (not token or token not in info.value.message)
    return info.value.reason


def rsa_jwk(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return private, {**public, "kid": kid, "use": "sig", "alg": "RS256"}


# --- HS256 -----------------------------------------------------------------------------------


async def test_a_valid_token_becomes_a_principal_with_its_roles_and_namespaces(
    secret_file: Path,
) -> None:
    verifier = await hs_verifier(secret_file)
    token = jwt.encode(claims(roles=["operator", "unknown"], name="Ann"), SECRET, "HS256")
    principal = await verifier.verify(token)
    assert principal.id == f"jwt:{ISSUER}#ann" and principal.kind == "jwt"
    assert principal.roles == {Role.OPERATOR} and principal.namespaces == {"team-a"}
    assert principal.name == "Ann"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [  # each a function of the time the test runs (the suite may run long before it)
        (lambda now: {"exp": now - 3600}, "token expired"),
        (lambda now: {"aud": "another-api"}, "wrong audience"),
        (lambda now: {"iss": "https://evil.example"}, "wrong issuer"),
        (lambda now: {"exp": None}, "token lacks the 'exp' claim"),
        (lambda now: {"sub": None}, "token lacks the 'sub' claim"),
        (lambda now: {"nbf": now + 3600}, "token not yet valid"),
        (lambda now: {"roles": ["root"]}, "the token's 'roles' claim grants no Parley role"),
        (
            lambda now: {"namespaces": ["Not Valid"]},
            "the token's 'namespaces' claim grants no namespace",
        ),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-exp",
        "no-sub",
        "not-yet-valid",
        "no-role",
        "no-namespace",
    ],
)
async def test_a_bad_token_is_refused_with_a_clear_reason(
    secret_file: Path, overrides: Callable[[int], dict[str, Any]], expected: str
) -> None:
    verifier = await hs_verifier(secret_file)
    token_claims = claims(**overrides(int(time.time())))
    assert await reason(verifier, jwt.encode(token_claims, SECRET, "HS256")) == expected


async def test_missing_malformed_and_wrongly_signed_tokens_are_refused(secret_file: Path) -> None:
    verifier = await hs_verifier(secret_file)
    assert await reason(verifier, "") == "malformed token"
    assert await reason(verifier, "not-a-jwt") == "malformed token"
    assert await reason(verifier, "a.b.c") == "malformed token"
    forged = jwt.encode(claims(), b"x" * 40, "HS256")
    assert await reason(verifier, forged) == "bad signature"
    tampered = jwt.encode(claims(), SECRET, "HS256").rsplit(".", 1)[0] + ".AAAA"
    assert await reason(verifier, tampered) == "bad signature"


async def test_unsigned_and_other_algorithm_tokens_are_refused(secret_file: Path) -> None:
    verifier = await hs_verifier(secret_file)
    unsigned = jwt.encode(claims(), None, "none")
    assert await reason(verifier, unsigned) == "algorithm 'none' is not allowed"
    private, _ = rsa_jwk("k1")
    assert await reason(verifier, jwt.encode(claims(), private, "RS256")) == (
        "algorithm 'RS256' is not allowed"
    )


async def test_claims_map_through_nested_paths_strings_and_a_role_map(secret_file: Path) -> None:
    verifier = await hs_verifier(
        secret_file,
        jwt_roles_claim="realm_access.roles",
        jwt_namespaces_claim="tenants",
        jwt_role_map="idp-admins=admin,readers=viewer",
    )
    token = jwt.encode(
        claims(realm_access={"roles": ["idp-admins", "readers"]}, tenants="team-a team-b"),
        SECRET,
        "HS256",
    )
    principal = await verifier.verify(token)
    assert principal.roles == {Role.ADMIN, Role.VIEWER}
    assert principal.namespaces == {"team-a", "team-b"}


# --- JWKS ------------------------------------------------------------------------------------


async def test_an_rs256_token_is_verified_with_a_jwks_file(tmp_path: Path) -> None:
    private, public = rsa_jwk("k1")
    _, other = rsa_jwk("k2")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public, other]}))
    verifier = await started(jwt_jwks_file=str(jwks))
    assert verifier.algorithms == ["RS256", "ES256"]
    token = jwt.encode(claims(), private, "RS256", headers={"kid": "k1"})
    assert (await verifier.verify(token)).roles == {Role.OPERATOR}
    wrong_kid = jwt.encode(claims(), private, "RS256", headers={"kid": "k2"})
    assert await reason(verifier, wrong_kid) == "bad signature"
    unknown = jwt.encode(claims(), private, "RS256", headers={"kid": "k9"})
    assert await reason(verifier, unknown) == "unknown signing key"
    # an HMAC token where public keys are expected (algorithm confusion): refused up front
    confused = jwt.encode(claims(), SECRET, "HS256", headers={"kid": "k1"})
    assert await reason(verifier, confused) == "algorithm 'HS256' is not allowed"


async def test_an_es256_token_is_verified_with_a_jwks_file(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public: dict[str, Any] = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "ec1", "alg": "ES256"}]}))
    verifier = await started(jwt_jwks_file=str(jwks))
    token = jwt.encode(claims(roles="viewer"), private, "ES256", headers={"kid": "ec1"})
    assert (await verifier.verify(token)).roles == {Role.VIEWER}


class _Jwks:
    """A JWKS endpoint on loopback whose key set the test changes."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys, self.fetches = keys, 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def jwks_server() -> Iterator[_Jwks]:
    server = _Jwks([])
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


async def test_a_jwks_url_is_fetched_at_start_and_again_for_a_new_key(
    jwks_server: _Jwks,
) -> None:
    first, first_public = rsa_jwk("k1")
    jwks_server.keys = [first_public]
    verifier = await started(jwt_jwks_url=jwks_server.url, jwt_jwks_cooldown_s=0)
    assert jwks_server.fetches == 1
    for _ in range(3):
        await verifier.verify(jwt.encode(claims(), first, "RS256", headers={"kid": "k1"}))
    assert jwks_server.fetches == 1  # served from the fetched set
    second, second_public = rsa_jwk("k2")
    jwks_server.keys = [first_public, second_public]  # the provider rotates its keys
    token = jwt.encode(claims(sub="bob"), second, "RS256", headers={"kid": "k2"})
    assert (await verifier.verify(token)).id == f"jwt:{ISSUER}#bob"
    assert jwks_server.fetches == 2


async def test_made_up_key_ids_fetch_the_jwks_at_most_once_per_cooldown(
    jwks_server: _Jwks,
) -> None:
    private, public = rsa_jwk("k1")
    jwks_server.keys = [public]
    verifier = await started(jwt_jwks_url=jwks_server.url)
    tokens = [
        jwt.encode(claims(), private, "RS256", headers={"kid": f"made-up-{i}"}) for i in range(20)
    ]
    reasons = await asyncio.gather(*(reason(verifier, token) for token in tokens))
    assert set(reasons) == {"unknown signing key"}
    assert jwks_server.fetches == 1  # the start's fetch; the cooldown holds the rest


# --- settings --------------------------------------------------------------------------------


async def test_jwt_is_off_without_a_key_source_and_settings_come_from_the_environment(
    secret_file: Path,
) -> None:
    assert await BearerVerifier.start(JwtSettings()) is None
    settings = from_env(
        JwtSettings,
        {
            "PARLEY_JWT_ISSUER": ISSUER,
            "PARLEY_JWT_AUDIENCE": AUDIENCE,
            "PARLEY_JWT_SECRET_FILE": str(secret_file),
            "PARLEY_JWT_ROLES_CLAIM": "groups",
            "PARLEY_JWT_LEEWAY_S": "2",
        },
    )
    assert settings.enabled and settings.jwt_roles_claim == "groups"
    assert settings.jwt_leeway_s == 2.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"jwt_audience": AUDIENCE}, "PARLEY_JWT_ISSUER and PARLEY_JWT_AUDIENCE"),
        ({"jwt_issuer": ISSUER}, "PARLEY_JWT_ISSUER and PARLEY_JWT_AUDIENCE"),
        ({"jwt_jwks_file": "/x.json"}, "exactly one of"),
        ({"jwt_algorithms": "RS256"}, "cannot be used with an HMAC secret file"),
        ({"jwt_role_map": "admins=root"}, "PARLEY_JWT_ROLE_MAP"),
    ],
    ids=["no-issuer", "no-audience", "two-sources", "asymmetric-with-secret", "bad-role-map"],
)
async def test_a_bad_configuration_stops_the_start(
    secret_file: Path, settings: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "jwt_secret_file": str(secret_file),
    }
    if "jwt_issuer" not in settings and "jwt_audience" in settings:
        del base["jwt_issuer"]
    if "jwt_audience" not in settings and "jwt_issuer" in settings:
        del base["jwt_audience"]
    with pytest.raises(SettingsError, match=message):
        await BearerVerifier.start(JwtSettings(**{**base, **settings}))


async def test_a_short_hmac_secret_and_an_unreadable_jwks_stop_the_start(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("tooshort")
    base = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    with pytest.raises(SettingsError, match="at least 32"):
        await BearerVerifier.start(JwtSettings(**base, jwt_secret_file=str(short)))
    with pytest.raises(SettingsError, match="PARLEY_JWT_JWKS_FILE"):
        await BearerVerifier.start(JwtSettings(**base, jwt_jwks_file=str(tmp_path / "none")))
