"""A2A Agent Cards (docs/a2a.md) on a stack of this module's own, with one namespace made
public by its operator (``PARLEY_A2A_PUBLIC_NAMESPACES``): a running agent's card describes it
and its interface URL really calls it; stopped agents are not listed; another namespace's
agents are invisible; anonymous callers see only the public namespace; every card has the
fields of the A2A v1.0 AgentCard the cards rely on, in its camelCase JSON shape, and the
official A2A SDK (``a2a-sdk``) parses it."""

import uuid
from typing import Any

import httpx
import pytest
from a2a.types import AgentCard
from e2e_support import act
from e2e_support import body_of
from e2e_support import error_of
from e2e_support import new_agent
from google.protobuf import json_format

from parley.contracts.tools import TOOL_CATALOGUE
from parley.devstack.stack import Stack

PUBLIC = f"a2a-public-{uuid.uuid4().hex[:8]}"
WELL_KNOWN = "/.well-known/agent-card.json"

CARD_REQUIRED = {
    "name": str,
    "description": str,
    "supportedInterfaces": list,
    "version": str,
    "capabilities": dict,
    "defaultInputModes": list,
    "defaultOutputModes": list,
    "skills": list,
}
"""The AgentCard fields a2a.proto (v1.0) marks REQUIRED, with their JSON types."""
INTERFACE_REQUIRED = {"url": str, "protocolBinding": str, "protocolVersion": str}
SKILL_REQUIRED = {"id": str, "name": str, "description": str, "tags": list}
SCHEME_MEMBERS = {
    "apiKeySecurityScheme",
    "httpAuthSecurityScheme",
    "oauth2SecurityScheme",
    "openIdConnectSecurityScheme",
    "mtlsSecurityScheme",
}


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {"PARLEY_AUTH": "on", "PARLEY_A2A_PUBLIC_NAMESPACES": PUBLIC}


def card_url(namespace: str, agent_id: str) -> str:
    return f"/a2a/{namespace}/agents/{agent_id}/agent-card.json"


def shape_errors(card: dict[str, Any]) -> list[str]:
    """What keeps ``card`` from being an A2A v1.0 AgentCard as the cards use it: the A2A
    project's own SDK must read it (an unknown member or a wrong type raises), and the members
    a2a.proto marks REQUIRED must be there, in camelCase."""
    json_format.ParseDict(card, AgentCard())
    errors = [
        f"{name}: want {kind.__name__}"
        for name, kind in CARD_REQUIRED.items()
        if not isinstance(card.get(name), kind)
    ]
    for interface in card.get("supportedInterfaces", []):
        errors += [
            f"interface {n}"
            for n, k in INTERFACE_REQUIRED.items()
            if not isinstance(interface.get(n), k)
        ]
        if not interface.get("url", "").startswith("http"):
            errors.append("interface url is not absolute")
    for skill in card.get("skills", []):
        errors += [
            f"skill {n}" for n, k in SKILL_REQUIRED.items() if not isinstance(skill.get(n), k)
        ]
    for name, scheme in card.get("securitySchemes", {}).items():
        if len(scheme) != 1 or not set(scheme) <= SCHEME_MEMBERS:
            errors.append(f"security scheme {name} must set exactly one of {SCHEME_MEMBERS}")
    for requirement in card.get("securityRequirements", []):
        for name, scopes in requirement["schemes"].items():
            if name not in card["securitySchemes"] or not isinstance(scopes.get("list"), list):
                errors.append(f"security requirement {name}")
    snake = [key for key in _keys(card) if "_" in key]
    return errors + [f"snake_case key {key}" for key in snake]


def _keys(value: Any) -> list[str]:
    """Every member name in ``value`` (the directory extension's params aside)."""
    if isinstance(value, list):
        return [k for item in value for k in _keys(item)]
    if not isinstance(value, dict):
        return []
    return [k for key, item in value.items() if key != "params" for k in [key, *_keys(item)]]


async def _key(http: httpx.AsyncClient, role: str, namespace: str) -> dict[str, str]:
    body = {"name": f"a2a {role}", "roles": [role], "namespaces": [namespace]}
    made = await http.post("/api/v1/keys", json=body, headers={"X-Parley-Namespace": namespace})
    return {"X-API-Key": body_of(made, 201)["data"]["secret"]}


def _listed(card: dict[str, Any]) -> set[str]:
    return {skill["id"] for skill in card["skills"]}


async def test_a_running_agents_card_describes_it_and_its_url_calls_it(
    own_stack: Stack, http: httpx.AsyncClient
) -> None:
    ns = f"t-{uuid.uuid4().hex[:12]}"
    headers = {"X-Parley-Namespace": ns}
    agent_id = await new_agent(
        http,
        "carded",
        headers=headers,
        description="Sums things up",
        capabilities=["summarise"],
        tools=[{"name": "calculator"}],
    )
    view = body_of(await http.get(f"/api/v1/agents/{agent_id}", headers=headers))["data"]

    card = body_of(await http.get(card_url(ns, agent_id)))
    assert shape_errors(card) == []
    assert (card["name"], card["description"]) == (view["name"], "Sums things up")
    assert card["version"] == str(view["version"])
    assert [s["id"] for s in card["skills"]] == ["summarise", "tool:calculator"]
    assert card["skills"][1]["description"] == TOOL_CATALOGUE["calculator"].description
    assert card["capabilities"]["streaming"] is True
    assert card["defaultInputModes"] == card["defaultOutputModes"] == ["text/plain"]
    schemes = card["securitySchemes"]
    assert schemes["apiKey"]["apiKeySecurityScheme"] | {"description": ""} == {
        "location": "header",
        "name": "X-API-Key",
        "description": "",
    }
    assert schemes["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert card["securityRequirements"] == [
        {"schemes": {"apiKey": {"list": []}}},
        {"schemes": {"bearer": {"list": []}}},
    ]
    interface = card["supportedInterfaces"][0]
    assert interface["tenant"] == ns and interface["protocolVersion"] == "1.0"
    assert interface["url"] == f"{own_stack.edge_url}/api/v1/agents/{agent_id}/chat?namespace={ns}"

    # the interface URL works as written: no namespace header, just a key
    answered = await http.post(interface["url"], json={"message": "hello from A2A"})
    assert "hello from A2A" in body_of(answered)["data"]["response"]
    async with httpx.AsyncClient(timeout=20) as anonymous:
        error_of(
            await anonymous.post(interface["url"], json={"message": "hi"}), 401, "UNAUTHORIZED"
        )


async def test_the_platform_card_lists_running_agents_only(http: httpx.AsyncClient) -> None:
    ns = f"t-{uuid.uuid4().hex[:12]}"
    headers = {"X-Parley-Namespace": ns}
    running = await new_agent(http, "up", headers=headers, capabilities=["draft"])
    stopped = await new_agent(http, "down", headers=headers)
    created = await new_agent(http, "idle", headers=headers, actions=())
    paused = await new_agent(http, "held", headers=headers, actions=("start", "pause"))
    await act(http, stopped, "stop", headers=headers)

    card = body_of(await http.get(WELL_KNOWN, params={"namespace": ns}))
    assert shape_errors(card) == []
    assert _listed(card) == {f"{ns}/{running}"}
    assert card["skills"][0]["tags"] == ["draft"]
    directory = card["capabilities"]["extensions"][0]["params"]["agents"]
    assert [(a["id"], a["card"].endswith(card_url(ns, running))) for a in directory] == [
        (running, True)
    ]
    assert card["capabilities"]["extendedAgentCard"] is True
    everywhere = body_of(await http.get(WELL_KNOWN))  # the admin sees every namespace
    assert f"{ns}/{running}" in _listed(everywhere)
    assert not {f"{ns}/{a}" for a in (stopped, created, paused)} & _listed(everywhere)
    for agent_id in (stopped, created, paused):
        error_of(await http.get(card_url(ns, agent_id)), 404, "AGENT_NOT_FOUND")


async def test_another_namespaces_agents_are_invisible(
    own_stack: Stack, http: httpx.AsyncClient
) -> None:
    mine, theirs = (f"t-{uuid.uuid4().hex[:12]}" for _ in range(2))
    own = await new_agent(http, "own", headers={"X-Parley-Namespace": mine})
    other = await new_agent(http, "other", headers={"X-Parley-Namespace": theirs})
    key = await _key(http, "viewer", mine)
    async with httpx.AsyncClient(base_url=own_stack.edge_url, headers=key, timeout=20) as viewer:
        assert _listed(body_of(await viewer.get(WELL_KNOWN))) == {f"{mine}/{own}"}
        assert _listed(body_of(await viewer.get(WELL_KNOWN, params={"namespace": theirs}))) == set()
        body_of(await viewer.get(card_url(mine, own)))
        missing = error_of(await viewer.get(card_url(theirs, other)), 404, "AGENT_NOT_FOUND")
        unknown = error_of(await viewer.get(card_url(mine, "nope")), 404, "AGENT_NOT_FOUND")
        assert set(missing) == set(unknown)  # nothing tells "not yours" from "not there"


async def test_without_credentials_only_the_public_namespace_is_shown(
    own_stack: Stack, http: httpx.AsyncClient
) -> None:
    private = f"t-{uuid.uuid4().hex[:12]}"
    shown = await new_agent(http, "shown", headers={"X-Parley-Namespace": PUBLIC})
    hidden = await new_agent(http, "hidden", headers={"X-Parley-Namespace": private})
    async with httpx.AsyncClient(base_url=own_stack.edge_url, timeout=20) as anonymous:
        card = body_of(await anonymous.get(WELL_KNOWN))
        assert shape_errors(card) == []
        assert f"{PUBLIC}/{shown}" in _listed(card)
        assert not any(skill.startswith(f"{private}/") for skill in _listed(card))
        assert body_of(await anonymous.get(card_url(PUBLIC, shown)))["skills"][0]["id"] == "chat"
        error_of(await anonymous.get(card_url(private, hidden)), 404, "AGENT_NOT_FOUND")
        bad = {"X-API-Key": "pk_not-a-key"}
        error_of(await anonymous.get(WELL_KNOWN, headers=bad), 401, "UNAUTHORIZED")
        error_of(await anonymous.get(WELL_KNOWN, params={"colour": "red"}), 400, "INVALID_REQUEST")
