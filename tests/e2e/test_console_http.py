"""The console over real HTTP: public shells without data, views behind the key and the
namespace walls, and the HTML each view renders from the real stack."""

import httpx
from console_support import contract_net_round
from console_support import make_key
from console_support import start_canary
from e2e_support import new_agent
from tests_support import edge_client

from parley.devstack.stack import Stack

VIEWS = "/api/v1/console"


async def test_the_page_shells_are_public_carry_no_data_and_load_only_their_own_assets(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url) as anonymous:
        page = await anonymous.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "http" not in csp  # no CDN, no inline script
        assert 'data-view="/api/v1/console/fleet"' in page.text and "<script src=" in page.text
        assert "<tr" not in page.text  # the shell holds no agent
        script = await anonymous.get("/console/static/console.js")
        assert script.status_code == 200 and "sessionStorage" in script.text
        assert "localStorage" not in script.text
        for wrong in ("/console/nope/x", "/console/agents/a.b", "/console/tasks/%2E%2E"):
            refused = await anonymous.get(wrong)
            assert refused.status_code == 404, wrong  # nothing but an id reaches the script
        agent = await anonymous.get("/console/agents/some-agent_1")
        assert 'data-view="/api/v1/console/agents/some-agent_1"' in agent.text
        missing = await anonymous.get("/console/static/secrets.txt")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
        view = await anonymous.get(f"{VIEWS}/fleet")
        assert view.status_code == 401 and view.json()["error"]["code"] == "UNAUTHORIZED"


async def test_the_fleet_view_shows_the_namespaces_agents_and_never_anothers(
    client: httpx.AsyncClient, stack: Stack, namespace: str
) -> None:
    other = f"{namespace}-b"
    mine = await new_agent(client, "mine", headers={"X-Parley-Namespace": namespace})
    theirs = await new_agent(client, "theirs", headers={"X-Parley-Namespace": other})
    key = await make_key(client, "viewer", namespace)
    async with edge_client(stack, headers={"X-API-Key": key}) as viewer:
        fleet = await viewer.get(f"{VIEWS}/fleet", headers={"X-Parley-Namespace": namespace})
        assert fleet.status_code == 200, fleet.text
        assert f'id="agent-{mine}"' in fleet.text and 'data-state="running"' in fleet.text
        assert theirs not in fleet.text
        walled = await viewer.get(f"{VIEWS}/fleet", headers={"X-Parley-Namespace": other})
        assert walled.status_code == 404 and theirs not in walled.text
        rows = await viewer.get(
            f"{VIEWS}/fleet/rows",
            params={"agent_id": [mine, theirs]},
            headers={"X-Parley-Namespace": namespace},
        )
        assert rows.status_code == 200, rows.text
        assert f'<tr id="agent-{mine}" data-agent="{mine}" data-state="running">' in rows.text
        assert f'<tr id="agent-{theirs}" data-agent="{theirs}" data-gone hidden></tr>' in rows.text
        assert "theirs-" not in rows.text  # not in this namespace: only its id, said back
        assert int(rows.headers["x-parley-position"]) >= 1
        agent = await viewer.get(
            f"{VIEWS}/agents/{mine}", headers={"X-Parley-Namespace": namespace}
        )
        assert agent.status_code == 200 and "<svg" in agent.text and "Versions" in agent.text


async def test_a_contract_net_round_renders_its_bids_award_and_messages(
    api: httpx.AsyncClient,
) -> None:
    task, winner, loser = await contract_net_round(api)
    view = await api.get(f"{VIEWS}/tasks/{task['task_id']}")
    assert view.status_code == 200, view.text
    assert f'Awarded to <a href="/console/agents/{winner}">cheap-' in view.text
    assert f'href="/console/agents/{loser}">dear-' in view.text and "rejected" in view.text
    assert "0.500" in view.text and "0.100" in view.text  # lowest_cost: 1 / (1 + cost)
    agent = await api.get(f"{VIEWS}/agents/{winner}")
    conversation = agent.text.split('href="/console/conversations/')[1].split('"')[0]
    drawn = await api.get(f"{VIEWS}/conversations/{conversation}")
    assert drawn.status_code == 200, drawn.text
    assert '<svg class="sequence"' in drawn.text and ">cfp</text>" in drawn.text
    assert f'<a href="/console/agents/{loser}">dear-' in drawn.text  # parties by name
    assert f'<a href="/console/tasks/{task["task_id"]}">task:' in drawn.text
    missing = await api.get(f"{VIEWS}/tasks/no-such-task")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "TASK_NOT_FOUND"


async def test_a_canary_deployment_renders_its_split_stages_and_rollback_reason(
    api: httpx.AsyncClient,
) -> None:
    deployment, agent_id = await start_canary(api)
    view = await api.get(f"{VIEWS}/deployments/{deployment['id']}")
    assert view.status_code == 200, view.text
    assert '<b id="split">10%</b>' in view.text and "rolling_out" in view.text
    rolled = await api.post(
        f"/api/v1/deployments/{deployment['id']}/rollback", json={"reason": "p99 too high"}
    )
    assert rolled.status_code == 200, rolled.text
    after = await api.get(f"{VIEWS}/deployments/{deployment['id']}")
    assert "rolled_back" in after.text and "p99 too high" in after.text
    assert agent_id in after.text
    page = await api.get(f"{VIEWS}/agents/{agent_id}")  # the agent lists its deployments
    assert f'<a href="/console/deployments/{deployment["id"]}">v2</a>' in page.text
