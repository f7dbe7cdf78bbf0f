"""Where the CLI finds the edge and its key: contexts in a config file only its owner reads,
overridden by ``PARLEY_URL``, ``PARLEY_API_KEY`` and ``PARLEY_NAMESPACE``.

The file is ``$PARLEY_CONFIG``, else ``$XDG_CONFIG_HOME/parley/config.toml``, else
``~/.config/parley/config.toml``::

    current_context = "local"

    [contexts.local]
    url = "http://127.0.0.1:8080"
    api_key = "pk_…"
    namespace = "default"
"""

import json
import os
import tomllib
from pathlib import Path

import msgspec

from parley.cli.exits import CliFailure
from parley.cli.exits import Exit

__all__ = ["DEFAULT_URL", "Config", "Context", "Target", "config_path", "load", "save", "target"]

DEFAULT_URL = "http://127.0.0.1:8080"


class Context(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One edge and the key to use there."""

    url: str
    api_key: str | None = None
    namespace: str = "default"


class Config(msgspec.Struct, kw_only=True):
    """The whole config file."""

    current_context: str | None = None
    contexts: dict[str, Context] = {}


class Target(msgspec.Struct, kw_only=True, frozen=True):
    """What a command talks to, once files, environment and flags are merged."""

    url: str
    api_key: str | None
    namespace: str | None
    context: str | None


def config_path() -> Path:
    """The config file's path (it need not exist)."""
    if explicit := os.environ.get("PARLEY_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "parley" / "config.toml"


def load() -> Config:
    """The config file's contents (empty when there is none)."""
    path = config_path()
    try:
        raw = tomllib.loads(path.read_text())
        return msgspec.convert(raw, Config)
    except FileNotFoundError:
        return Config()
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, OSError) as exc:
        raise CliFailure("BAD_CONFIG", f"{path}: {exc}", Exit.USAGE) from None


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def save(config: Config) -> Path:
    """Write ``config``, readable and writable by its owner only (0600, directory 0700)."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = []
    if config.current_context is not None:
        lines += [f"current_context = {_toml(config.current_context)}", ""]
    for name, context in sorted(config.contexts.items()):
        lines.append(f"[contexts.{_toml(name)}]")
        lines.append(f"url = {_toml(context.url)}")
        if context.api_key is not None:
            lines.append(f"api_key = {_toml(context.api_key)}")
        lines += [f"namespace = {_toml(context.namespace)}", ""]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode otherwise
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join(lines))
    return path


def target(url: str | None, namespace: str | None, context_name: str | None) -> Target:
    """Flags first, then ``PARLEY_URL``/``PARLEY_API_KEY``/``PARLEY_NAMESPACE``, then the
    chosen (or current) context, then the local dev edge."""
    config = load()
    name = context_name or os.environ.get("PARLEY_CONTEXT") or config.current_context
    context = config.contexts.get(name) if name else None
    if context_name and context is None:
        raise CliFailure(
            "NO_SUCH_CONTEXT", f"no context {context_name!r} in {config_path()}", Exit.USAGE
        )
    chosen = context or Context(url=DEFAULT_URL)
    return Target(
        url=(url or os.environ.get("PARLEY_URL") or chosen.url).rstrip("/"),
        api_key=os.environ.get("PARLEY_API_KEY") or chosen.api_key,
        namespace=namespace or os.environ.get("PARLEY_NAMESPACE") or chosen.namespace,
        context=name if context else None,
    )
