"""The edge's authentication settings and the walls of its event filters (no I/O)."""

import pytest

from parley.contracts.envelope import Event
from parley.contracts.envelope import utcnow
from parley.contracts.identity import Role
from parley.edge.app import create_app
from parley.edge.settings import EdgeSettings
from parley.edge.settings import check_auth
from parley.edge.settings import load_settings
from parley.edge.streams.filters import EventFilter
from parley.identity.principal import Principal
from parley.kit.settings import SettingsError


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_auth_may_be_off_on_loopback(host: str) -> None:
    check_auth(load_settings({"PARLEY_AUTH": "off", "PARLEY_EDGE_HOST": host}))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "edge.example.com"])
def test_auth_off_on_a_reachable_address_refuses_to_start(host: str) -> None:
    settings = load_settings({"PARLEY_AUTH": "off", "PARLEY_EDGE_HOST": host})
    with pytest.raises(SettingsError, match="PARLEY_AUTH=off is allowed only on a loopback"):
        check_auth(settings)
    with pytest.raises(SettingsError):
        create_app(settings)


def test_auth_is_on_by_default_and_origins_are_a_list() -> None:
    settings = load_settings({"PARLEY_ALLOWED_ORIGINS": "https://a.example, https://b.example"})
    assert settings.auth == "on"
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    check_auth(EdgeSettings(host="0.0.0.0"))
    with pytest.raises(SettingsError):
        load_settings({"PARLEY_AUTH": "maybe"})


def _event(namespace: str, type_: str = "agent.created", **extra: object) -> Event:
    return Event(
        id="e", type=type_, source="/t", subject="s", stream="agent-s", version=1,
        position=1, namespace=namespace, data={}, time=utcnow(), **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def _principal(roles: set[Role], namespaces: set[str]) -> Principal:
    return Principal(
        id="key:k", kind="key", roles=frozenset(roles), namespaces=frozenset(namespaces)
    )


def test_a_filter_within_a_principal_never_reaches_past_its_namespaces() -> None:
    viewer = _principal({Role.VIEWER}, {"a"})
    asked_for_b = EventFilter.parse(namespace="b").within(viewer)
    anything = EventFilter.parse().within(viewer)
    assert not asked_for_b.matches(_event("b"))
    assert not asked_for_b.matches(_event("a"))
    assert anything.matches(_event("a")) and not anything.matches(_event("b"))
    assert not anything.matches(_event("a", "apikey.created"))


def test_admins_see_key_events_and_everywhere_means_every_namespace() -> None:
    admin = _principal({Role.ADMIN}, {"*"})
    wall = EventFilter.parse().within(admin)
    assert wall.walls is None
    assert wall.matches(_event("x", "apikey.created")) and wall.matches(_event("y"))


def test_the_actor_filter_selects_by_the_recorded_actor() -> None:
    wanted = EventFilter.parse(actors=["key:k"])
    assert not wanted.matches(_event("a"))  # no actor recorded
    if "actor" in Event.__struct_fields__:
        assert wanted.matches(_event("a", actor="key:k"))
        assert not wanted.matches(_event("a", actor="key:other"))
