"""JWT bearer tokens from an external identity provider, verified with PyJWT.

A token is accepted when its signature verifies with a configured key, it names the
configured issuer and audience, it has not expired (``exp`` is required), and its claims map
to at least one Parley role and one namespace. Keys come from exactly one source:

- an HMAC secret file (HS256; read once at start, at least 32 bytes), or
- a JWKS file (RS256/ES256 public keys; read once at start), or
- a JWKS URL (fetched with PyJWT's :class:`jwt.PyJWKClient`: at start, again when the set is
  older than ``jwt_jwks_refresh_s``, and on an unknown ``kid`` at most once per
  ``jwt_jwks_cooldown_s``, in a thread so the event loop never blocks on the network).

Symmetric and asymmetric algorithms never mix, so a public key can never be used as an HMAC
secret (the classic algorithm-confusion attack). Settings are read at start-up with
:func:`parley.kit.settings.from_env` (``PARLEY_JWT_*``).
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import msgspec

from parley.contracts.identity import Role
from parley.identity._jwks import Keys
from parley.identity._jwks import KeySet
from parley.identity._jwks import Secret
from parley.identity._jwks import read_jwks
from parley.identity._jwks import read_secret
from parley.identity.principal import AuthenticationError
from parley.identity.principal import Principal
from parley.kit.settings import SettingsError

__all__ = ["BearerVerifier", "JwtSettings"]

_HMAC = frozenset({"HS256", "HS384", "HS512"})
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_NAMESPACE = re.compile(r"^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$")
_MAX_TOKEN = 16_384


class JwtSettings(msgspec.Struct, kw_only=True, frozen=True):
    """JWT bearer verification (``PARLEY_JWT_*``); off unless a key source is set."""

    jwt_issuer: str | None = None
    """Required ``iss`` (`PARLEY_JWT_ISSUER`)."""
    jwt_audience: str | None = None
    """Required ``aud`` (`PARLEY_JWT_AUDIENCE`)."""
    jwt_secret_file: str | None = None
    """File holding the HS256 secret (`PARLEY_JWT_SECRET_FILE`)."""
    jwt_jwks_file: str | None = None
    """JWKS file of the provider's public keys (`PARLEY_JWT_JWKS_FILE`)."""
    jwt_jwks_url: str | None = None
    """JWKS URL of the provider (`PARLEY_JWT_JWKS_URL`)."""
    jwt_algorithms: str = ""
    """Accepted algorithms, comma-separated (`PARLEY_JWT_ALGORITHMS`); default HS256 with a
    secret file, RS256,ES256 with a JWKS."""
    jwt_roles_claim: str = "roles"
    """Claim holding the roles, dotted for nested ones, e.g. `realm_access.roles`
    (`PARLEY_JWT_ROLES_CLAIM`)."""
    jwt_namespaces_claim: str = "namespaces"
    """Claim holding the namespaces (`*` for all) (`PARLEY_JWT_NAMESPACES_CLAIM`)."""
    jwt_role_map: str = ""
    """The provider's role names mapped to Parley's, e.g. `idp-admins=admin,devs=operator`
    (`PARLEY_JWT_ROLE_MAP`); Parley's own names always map to themselves."""
    jwt_leeway_s: float = 5.0
    """Clock skew tolerated on ``exp``/``nbf``/``iat`` (`PARLEY_JWT_LEEWAY_S`)."""
    jwt_jwks_refresh_s: float = 300.0
    """Age after which a JWKS URL is fetched again (`PARLEY_JWT_JWKS_REFRESH_S`)."""
    jwt_jwks_cooldown_s: float = 30.0
    """Least time between two fetches of a JWKS URL for a token with an unknown ``kid``
    (`PARLEY_JWT_JWKS_COOLDOWN_S`)."""

    @property
    def enabled(self) -> bool:
        """Whether a key source is configured."""
        return any((self.jwt_secret_file, self.jwt_jwks_file, self.jwt_jwks_url))


class BearerVerifier:
    """Verifies ``Authorization: Bearer <jwt>`` tokens into principals."""

    def __init__(self, settings: JwtSettings, keys: Keys, algorithms: list[str]) -> None:
        self.settings, self._keys, self.algorithms = settings, keys, algorithms
        self._issuer = settings.jwt_issuer or ""
        self._audience = settings.jwt_audience or ""
        self._role_map = _role_map(settings.jwt_role_map)

    @classmethod
    async def start(cls, settings: JwtSettings) -> "BearerVerifier | None":
        """The verifier the settings describe (None when JWT is off); reads key files and
        fetches a JWKS URL now, so a bad configuration stops the start.

        Raises:
            SettingsError: What is wrong and which ``PARLEY_JWT_*`` variable to fix.
        """
        if not settings.enabled:
            return None
        sources = [settings.jwt_secret_file, settings.jwt_jwks_file, settings.jwt_jwks_url]
        if sum(1 for source in sources if source) != 1:
            raise SettingsError(
                "set exactly one of PARLEY_JWT_SECRET_FILE, PARLEY_JWT_JWKS_FILE and"
                " PARLEY_JWT_JWKS_URL"
            )
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise SettingsError(
                "JWT verification needs PARLEY_JWT_ISSUER and PARLEY_JWT_AUDIENCE: tokens of"
                " another issuer or for another audience must not be accepted"
            )
        symmetric = settings.jwt_secret_file is not None
        algorithms = _algorithms(settings.jwt_algorithms, symmetric)
        keys: Keys
        if settings.jwt_secret_file:
            keys = Secret(read_secret(Path(settings.jwt_secret_file)))
        elif settings.jwt_jwks_file:
            keys = KeySet(read_jwks(Path(settings.jwt_jwks_file)))
        else:
            keys = await KeySet.fetch(
                settings.jwt_jwks_url or "",
                settings.jwt_jwks_refresh_s,
                settings.jwt_jwks_cooldown_s,
            )
        return cls(settings, keys, algorithms)

    async def verify(self, token: str) -> Principal:
        """The principal ``token`` stands for.

        Raises:
            AuthenticationError: With the reason: malformed, bad signature, expired, not yet
                valid, wrong issuer or audience, a required claim missing, no role or no
                namespace granted, unknown signing key, algorithm not allowed.
        """
        if not token or len(token) > _MAX_TOKEN:
            raise AuthenticationError("malformed token", "Bearer")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise AuthenticationError(
                    f"algorithm {header.get('alg')!r} is not allowed", "Bearer"
                )
            key = await self._keys.key_for(header)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self.settings.jwt_leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(_reason(exc), "Bearer") from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        raw_roles = _strings(_claim(claims, self.settings.jwt_roles_claim))
        roles = frozenset(
            Role(mapped)
            for mapped in (self._role_map.get(value, value) for value in raw_roles)
            if mapped in Role.__members__.values()
        )
        if not roles:
            raise AuthenticationError(
                f"the token's {self.settings.jwt_roles_claim!r} claim grants no Parley role",
                "Bearer",
            )
        namespaces = frozenset(
            value
            for value in _strings(_claim(claims, self.settings.jwt_namespaces_claim))
            if _NAMESPACE.match(value)
        )
        if not namespaces:
            raise AuthenticationError(
                f"the token's {self.settings.jwt_namespaces_claim!r} claim grants no namespace",
                "Bearer",
            )
        subject = str(claims["sub"])
        return Principal(
            id=f"jwt:{claims['iss']}#{subject}",
            kind="jwt",
            roles=roles,
            namespaces=namespaces,
            name=str(claims.get("name") or claims.get("preferred_username") or subject),
        )


def _reason(exc: jwt.InvalidTokenError) -> str:
    """A short, safe reason for a refused token."""
    reasons: list[tuple[type[jwt.InvalidTokenError], str]] = [
        (jwt.ExpiredSignatureError, "token expired"),
        (jwt.ImmatureSignatureError, "token not yet valid"),
        (jwt.InvalidAudienceError, "wrong audience"),
        (jwt.InvalidIssuerError, "wrong issuer"),
        (jwt.InvalidSignatureError, "bad signature"),
        (jwt.InvalidAlgorithmError, "algorithm not allowed"),
        (jwt.DecodeError, "malformed token"),
    ]
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the {exc.claim!r} claim"
    for kind, reason in reasons:
        if isinstance(exc, kind):
            return reason
    return "invalid token"


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted ``path`` (``realm_access.roles``), None if absent."""
    found: Any = claims
    for part in path.split("."):
        if not isinstance(found, Mapping):
            return None
        found = found.get(part)
    return found


def _strings(value: Any) -> list[str]:
    """A claim as strings: a list of them, or one string separated by spaces or commas."""
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _role_map(spec: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in spec.split(","))):
        source, _, target = pair.partition("=")
        if target.strip() not in Role.__members__.values():
            raise SettingsError(
                f"PARLEY_JWT_ROLE_MAP: {pair!r} must read <provider role>=<admin|operator|viewer>"
            )
        mapping[source.strip()] = target.strip()
    return mapping


def _algorithms(spec: str, symmetric: bool) -> list[str]:
    allowed = _HMAC if symmetric else _ASYMMETRIC
    chosen = [a.strip() for a in spec.split(",") if a.strip()] or (
        ["HS256"] if symmetric else ["RS256", "ES256"]
    )
    wrong = [a for a in chosen if a not in allowed]
    if wrong:
        kind = "an HMAC secret file" if symmetric else "a JWKS"
        raise SettingsError(
            f"PARLEY_JWT_ALGORITHMS: {', '.join(wrong)} cannot be used with {kind}; use"
            f" {', '.join(sorted(allowed))}"
        )
    return chosen
