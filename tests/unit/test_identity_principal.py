"""Roles and namespaces: what each principal may do where, written as a table."""

import pytest

from parley.contracts.identity import Role
from parley.identity.principal import Action
from parley.identity.principal import Principal

A = Action
READS = {A.READ, A.SUBSCRIBE}
WRITES = {A.CREATE, A.CHANGE, A.DELETE, A.RUN, A.MESSAGE, A.DEPLOY}

ALLOWED = {
    Role.VIEWER: READS,
    Role.OPERATOR: READS | WRITES,
    Role.ADMIN: READS | WRITES | {A.MANAGE_KEYS},
}
"""Written from the issue's role list, not from the code."""


def principal(*roles: Role, namespaces: tuple[str, ...] = ("team-a",)) -> Principal:
    return Principal(
        id="key:k", kind="key", roles=frozenset(roles), namespaces=frozenset(namespaces)
    )


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_each_role_may_do_exactly_its_actions_in_its_namespace(role: Role, action: Action) -> None:
    assert principal(role).can(action, "team-a") is (action in ALLOWED[role])


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_no_role_may_do_anything_in_another_namespace(role: Role, action: Action) -> None:
    assert not principal(role).can(action, "team-b")
    assert not principal(role).sees("team-b")


def test_star_covers_every_namespace_and_roles_add_up() -> None:
    everywhere = principal(Role.VIEWER, namespaces=("*",))
    assert everywhere.everywhere and everywhere.can(A.READ, "anything")
    assert not everywhere.can(A.CREATE, "anything")
    both = principal(Role.VIEWER, Role.OPERATOR)
    assert both.actions == READS | WRITES


def test_a_list_is_narrowed_to_the_principal_s_namespaces() -> None:
    assert principal(Role.VIEWER, namespaces=("b", "c")).visible(["a", "b", "c", "d"]) == ["b", "c"]


def test_only_an_admin_grants_keys_and_only_within_its_own_namespaces() -> None:
    admin = principal(Role.ADMIN, namespaces=("team-a", "team-b"))
    assert admin.can_grant(["team-a"]) and admin.can_grant(["team-a", "team-b"])
    assert not admin.can_grant(["team-c"]) and not admin.can_grant(["*"])
    assert principal(Role.ADMIN, namespaces=("*",)).can_grant(["*", "x"])
    assert not principal(Role.OPERATOR).can_grant(["team-a"])
