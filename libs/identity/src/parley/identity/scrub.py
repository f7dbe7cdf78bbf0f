"""Scrubbing secrets out of text before it is recorded, logged or shown.

A provider or a tool can echo a credential back (a gateway's 401 that quotes the
``Authorization`` header, a tool that prints its environment). Whatever Parley records from
outside passes a :class:`Scrubber` first, which replaces with :data:`REDACTED`:

- every *known* secret, verbatim and URL-encoded: the provider keys in the environment, the
  JWT secret, API key secrets and tickets this process has seen (:meth:`Scrubber.add`);
- anything *shaped* like a credential (:data:`PATTERNS`): ``sk-…``/``sk-ant-…`` provider
  keys, Parley's ``pk_…`` keys and ``pt_…`` tickets, JWTs, ``Bearer``/``Basic`` credentials,
  ``x-api-key: …``-style header values, and a few well-known token formats;
- in JSON-like data, the whole value of a credential-named key (``authorization``,
  ``x-api-key``, ``password``, …: :data:`SENSITIVE_KEYS`).

Known secrets shorter than :data:`MIN_SECRET` characters are ignored: redacting every
occurrence of a short string would mangle ordinary text, and such a value is no secret.
"""

import os
import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import NamedTuple
from urllib.parse import quote

__all__ = [
    "MIN_SECRET",
    "PATTERNS",
    "REDACTED",
    "SENSITIVE_KEYS",
    "Scrubber",
    "Shape",
    "secrets_from_environment",
]

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""
MIN_SECRET = 8
"""Known secrets shorter than this are not scrubbed."""


class Shape(NamedTuple):
    """A credential shape, and the words (lowercase) without which the text cannot hold it:
    a pattern runs only on text containing one of them (``in`` is far cheaper than a regex
    scan, and most text holds no credential)."""

    pattern: re.Pattern[str]
    triggers: tuple[str, ...]


PATTERNS: tuple[Shape, ...] = (
    # "Bearer x" / "Basic x": keep the scheme, redact the credential.
    Shape(
        re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{6,}", re.I),
        ("bearer", "basic"),
    ),
    # header or field: value, for the names that carry credentials
    Shape(
        re.compile(
            r"(?P<keep>\b(?:x-api-key|api[-_]?key|x-caxton-token|access[-_]token|client[-_]secret"
            r"|password|authorization)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!Bearer\b|Basic\b|\[REDACTED\])[^\s\"',;&]{6,}",
            re.I,
        ),
        ("key", "token", "secret", "password", "authorization"),
    ),
    Shape(re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"), ("sk-",)),  # OpenAI, Anthropic
    Shape(re.compile(r"\bpk_[A-Za-z0-9-]{1,64}_[A-Za-z0-9_-]{20,}"), ("pk_",)),  # Parley keys
    Shape(re.compile(r"\bpt_[A-Za-z0-9_-]{20,}"), ("pt_",)),  # Parley WebSocket tickets
    Shape(re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), ("eyj",)),
    Shape(re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), ("gh",)),  # GitHub tokens
    Shape(re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), ("xox",)),  # Slack tokens
    Shape(re.compile(r"\bAKIA[0-9A-Z]{16}\b"), ("akia",)),  # AWS access key ids
    Shape(re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), ("aiza",)),  # Google API keys
)
"""Shapes of credentials, scrubbed whether or not the secret is known."""

SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "api_key",
        "apikey",
        "x-caxton-token",
        "cookie",
        "set-cookie",
        "password",
        "client_secret",
        "access_token",
        "refresh_token",
    }
)
"""Keys (any case) whose whole value is redacted in JSON-like data."""

_SECRET_NAME = re.compile(r"(API_?KEY|_KEY$|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
_MAX_SECRET_FILE = 65_536


def _pattern_sub(match: re.Match[str]) -> str:
    keep = match.groupdict().get("keep")
    return (keep or "") + REDACTED


class Scrubber:
    """Replaces known secrets and credential shapes with :data:`REDACTED`."""

    def __init__(self, secrets: Iterable[str] = (), patterns: Sequence[Shape] = PATTERNS) -> None:
        self._secrets: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self.patterns = tuple(patterns)
        self.add(*secrets)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, files: Iterable[str | Path] = ()
    ) -> "Scrubber":
        """A scrubber that knows the secrets of :func:`secrets_from_environment`."""
        return cls(secrets_from_environment(environ, files))

    def add(self, *secrets: str) -> None:
        """Know more secrets (e.g. an API key secret just issued or presented)."""
        stripped = [secret.strip() for secret in secrets]
        fresh = {
            variant
            for secret in stripped
            if len(secret) >= MIN_SECRET
            for variant in (secret, quote(secret, safe=""))
        } - self._secrets
        if fresh:
            self._secrets |= fresh
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first
            self._known = re.compile("|".join(map(re.escape, ordered)))

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, secret: object) -> bool:
        return secret in self._secrets

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and credential shape replaced."""
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        lowered = text.lower()
        for pattern, triggers in self.patterns:
            if any(trigger in lowered for trigger in triggers):
                text = pattern.sub(_pattern_sub, text)
        return text

    __call__ = scrub

    def scrub_data(self, data: Any) -> Any:
        """JSON-like ``data`` (dicts, lists, tuples, strings, scalars) with every string
        scrubbed and the values of :data:`SENSITIVE_KEYS` redacted whole; a new structure,
        the input is not changed."""
        if isinstance(data, str):
            return self.scrub(data)
        if isinstance(data, Mapping):
            return {
                key: (
                    REDACTED
                    if isinstance(key, str) and key.lower() in SENSITIVE_KEYS and value
                    else self.scrub_data(value)
                )
                for key, value in data.items()
            }
        if isinstance(data, list | tuple):
            return type(data)(self.scrub_data(item) for item in data)
        return data


def secrets_from_environment(
    environ: Mapping[str, str] | None = None, files: Iterable[str | Path] = ()
) -> set[str]:
    """The secrets a process holds: values of variables named like secrets
    (``ANTHROPIC_API_KEY``, ``*_TOKEN``, ``*_SECRET``, …), the contents of files such
    variables name (``*_SECRET_FILE``, ``*_KEY_FILE``), and the contents of ``files``."""
    env = os.environ if environ is None else environ
    found: set[str] = set()
    paths = [Path(path) for path in files]
    for name, value in env.items():
        if name.upper().endswith("_FILE"):
            if _SECRET_NAME.search(name[: -len("_FILE")]):
                paths.append(Path(value))
        elif _SECRET_NAME.search(name) and len(value.strip()) >= MIN_SECRET:
            found.add(value.strip())
    for path in paths:
        try:
            if path.stat().st_size <= _MAX_SECRET_FILE:
                found.add(path.read_text().strip())
        except (OSError, UnicodeDecodeError):
            continue
    return {secret for secret in found if len(secret) >= MIN_SECRET}
