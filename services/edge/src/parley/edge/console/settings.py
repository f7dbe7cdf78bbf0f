"""The console's settings (``PARLEY_JAEGER_URL``), read once when the routes are made."""

import msgspec

from parley.kit.settings import from_env

__all__ = ["ConsoleSettings", "console_settings"]


class ConsoleSettings(msgspec.Struct, kw_only=True, frozen=True):
    """What the console links to."""

    jaeger_url: str | None = None
    """Jaeger's UI (`PARLEY_JAEGER_URL`, e.g. `http://localhost:16686`): the event log links
    each event with a `traceparent` to `<url>/trace/<trace id>`."""


def console_settings() -> ConsoleSettings:
    """The settings from the environment.

    Raises:
        SettingsError: a variable that does not parse.
    """
    return from_env(ConsoleSettings)
