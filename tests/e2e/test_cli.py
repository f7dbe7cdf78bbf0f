"""`parley`, the real console script, against the real stack: every command with `-o json`
parsed, and the exit codes scripts rely on (docs/cli.md): 2 usage or refused input, 3 not
found, 4 auth, 5 conflict, 6 timed out."""

import json
import stat
from pathlib import Path

import pytest
import yaml
from cli_runner import Cli
from cli_runner import cli_for
from tests_support import admin_key

from parley.devstack.stack import Stack

AGENT_TOML = 'name = "helper"\ncapabilities = ["summarise"]\ntools = [{name = "calculator"}]\n'
CLUSTER = """\
apiVersion: parley.dev/v1
kind: AgentCluster
metadata: {name: crew}
spec:
  strategy: parallel
  template:
    replicas: 2
    spec: {name: crew-agent, capabilities: [summarise]INSTANCES}
"""


@pytest.fixture
def cli(stack: Stack, namespace: str, tmp_path: Path) -> Cli:
    """`parley` as the stack's admin, in the test's namespace, with an empty config dir."""
    return cli_for(stack, namespace, tmp_path)


def _file(cli: Cli, name: str, text: str) -> str:
    (cli.cwd / name).write_text(text)
    return name


def test_an_agent_is_created_read_edited_driven_and_deleted_by_name(cli: Cli) -> None:
    created = cli.json("agents", "create", "-f", _file(cli, "helper.toml", AGENT_TOML))
    assert (created["spec"]["name"], created["state"]) == ("helper", "created")
    from_json = _file(cli, "w.json", json.dumps({"name": "writer", "capabilities": ["draft"]}))
    assert cli.json("agents", "create", "-f", from_json, "--start")["state"] == "running"
    piped = cli.json("agents", "create", "-f", "-", stdin='name = "piped"\n')
    assert piped["spec"]["name"] == "piped"

    listed = cli.json("agents", "ls", "--sort", "name")
    assert [a["spec"]["name"] for a in listed] == ["helper", "piped", "writer"]
    assert [a["spec"]["name"] for a in cli.json("agents", "ls", "--state", "running")] == ["writer"]
    as_yaml = yaml.safe_load(cli.ok("agents", "get", "helper", "-o", "yaml").out)
    assert as_yaml["id"] == created["id"]
    assert cli.json("agents", "get", created["id"])["spec"]["tools"][0]["name"] == "calculator"

    edited = cli.json(
        "agents",
        "edit",
        "helper",
        "--set",
        "description=first",
        "--set",
        "labels.team=a",
        "--set",
        "params.temperature=0.2",
    )
    assert edited["spec"]["description"] == "first"
    assert edited["spec"]["labels"] == {"team": "a"}
    assert edited["spec"]["params"]["temperature"] == 0.2
    by_editor = cli.json("agents", "edit", "helper", env={"EDITOR": "sed -i s/first/second/"})
    assert by_editor["spec"]["description"] == "second"
    assert by_editor["version"] == edited["version"] + 1

    for action, state in [("start", "running"), ("pause", "paused"), ("resume", "running")]:
        assert cli.json("agents", action, "helper")["state"] == state
    cli.fails(5, "INVALID_STATE_TRANSITION", "agents", "start", "helper")
    assert cli.json("agents", "stop", "helper", "--reason", "done")["state"] == "stopped"
    assert cli.json("agents", "rm", "helper")["deleted"] is True
    cli.fails(3, "AGENT_NOT_FOUND", "agents", "get", "helper")


def test_errors_print_the_servers_code_and_exit_with_its_documented_code(cli: Cli) -> None:
    cli.fails(4, "UNAUTHORIZED", "agents", "ls", env={"PARLEY_API_KEY": "pk_nope_bad"})
    cli.fails(3, "AGENT_NOT_FOUND", "agents", "get", "nobody")
    cli.fails(3, "AGENT_NOT_FOUND", "agents", "start", "0190a000-0000-7000-8000-000000000000")
    bad_kind = _file(
        cli, "bad.yaml", CLUSTER.replace("AgentCluster", "Cluster").replace("INSTANCES", "")
    )
    cli.fails(2, "VALIDATION_ERROR", "clusters", "apply", "-f", bad_kind)
    cli.fails(2, "BAD_MANIFEST", "clusters", "apply", "-f", _file(cli, "b.yaml", "a: [\n"))
    unknown_field = _file(cli, "u.toml", 'name = "x"\nflavour = "mint"\n')
    refused = cli.fails(2, "VALIDATION_ERROR", "agents", "create", "-f", unknown_field)
    assert "flavour" in refused.err
    cli.fails(2, "BAD_FILE", "agents", "create", "-f", _file(cli, "t.toml", "name = \n"))
    assert cli.run("agents", "ls", "-o", "xml").code == 2
    assert cli.run("agents", "frobnicate").code == 2
    cli.fails(1, "UNREACHABLE", "agents", "ls", env={"PARLEY_URL": "http://127.0.0.1:9"})
    assert cli.json("agents", "ls") == []  # none of the refused requests created anything


def test_login_saves_a_context_only_its_owner_reads_and_the_environment_overrides_it(
    cli: Cli, stack: Stack, namespace: str
) -> None:
    key = admin_key(stack)
    unset = {"PARLEY_URL": "", "PARLEY_API_KEY": "", "PARLEY_NAMESPACE": ""}
    cli.fails(
        4, "UNAUTHORIZED", "login", "--url", stack.edge_url, "--api-key", "pk_nope_x", env=unset
    )
    config = cli.cwd / "config" / "parley" / "config.toml"
    assert not config.exists()

    cli.ok(
        "login",
        "--url",
        stack.edge_url,
        "--api-key",
        key,
        "--context",
        "dev",
        "--namespace",
        namespace,
        env=unset,
    )
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    cli.json("agents", "create", "-f", "-", stdin='name = "saved"\n', env=unset)
    assert [a["spec"]["name"] for a in cli.json("agents", "ls", env=unset)] == ["saved"]
    assert cli.json("contexts", "ls", env=unset) == [
        {"name": "dev", "current": True, "url": stack.edge_url, "namespace": namespace}
    ]
    assert key not in cli.ok("contexts", "ls", env=unset).out

    cli.fails(1, "UNREACHABLE", "agents", "ls", env={**unset, "PARLEY_URL": "http://127.0.0.1:9"})
    cli.fails(4, "UNAUTHORIZED", "agents", "ls", env={**unset, "PARLEY_API_KEY": "pk_no_no"})
    assert cli.json("agents", "ls", env={**unset, "PARLEY_NAMESPACE": "elsewhere"}) == []
    cli.fails(2, "NO_SUCH_CONTEXT", "--context", "prod", "agents", "ls", env=unset)


def test_a_cluster_is_applied_declaratively_scaled_run_and_deleted(cli: Cli) -> None:
    manifest = _file(cli, "crew.yaml", CLUSTER.replace("INSTANCES", ""))
    created = cli.json("clusters", "apply", "-f", manifest)
    assert created["action"] == "created"
    assert created["cluster"]["agents_count"] == 2
    assert cli.json("clusters", "apply", "-f", manifest) == {"action": "unchanged", "scaled": []}
    wider = _file(cli, "crew2.yaml", CLUSTER.replace("INSTANCES", ", instances: 3"))
    scaled = cli.json("clusters", "apply", "-f", wider)
    assert scaled["action"] == "scaled"
    assert sorted(s["agent_name"] for s in scaled["scaled"]) == ["crew-agent-1", "crew-agent-2"]
    assert {a["instances"] for a in cli.json("clusters", "get", "crew")["agents"]} == {3}

    assert [c["name"] for c in cli.json("clusters", "ls")] == ["crew"]
    one = cli.json("clusters", "scale", "crew", "crew-agent-1", "1")
    assert (one["agent_name"], one["target_instances"]) == ("crew-agent-1", 1)
    run = cli.json("clusters", "runs", "start", "crew", "--input", "hello")
    assert run["status"] == "completed"
    assert len(run["results"]) == 2
    assert cli.json("clusters", "runs", "get", "crew", run["run_id"])["run_id"] == run["run_id"]
    assert cli.json("clusters", "pause", "crew")["state"] == "paused"
    assert cli.json("clusters", "resume", "crew")["state"] == "active"
    cli.ok("clusters", "rm", "crew")
    cli.fails(3, "CLUSTER_NOT_FOUND", "clusters", "get", "crew")


def test_send_delivers_a_fipa_message_and_waits_for_the_reply(cli: Cli) -> None:
    agent = cli.json("agents", "create", "-f", "-", "--start", stdin='name = "echo"\n')
    answer = cli.json("send", "request", "--to", "echo", "--content", "hello", "--wait", "10")
    assert answer["delivered_to"] == [agent["id"]]
    assert answer["reply"]["performative"] == "inform"
    assert "echo: hello" in answer["reply"]["content"]["result"]

    recorded = cli.json("send", "inform", "--to", "user:bob", "--content", '{"n": 1}')
    assert recorded["status"] == "recorded"
    cli.fails(6, "TIMED_OUT", "send", "query-ref", "--to", "user:bob", "--wait", "1")
    cli.fails(2, "BAD_ARGUMENT", "send", "inform", "--content", "to nobody")

    conversation = cli.json("messages", "ls", "--conversation", answer["conversation_id"])
    assert [m["performative"] for m in conversation] == ["request", "inform"]
    one = cli.json("messages", "get", recorded["message_id"])
    assert (one["content"], one["receivers"]) == ({"n": 1}, ["user:bob"])


def test_a_contract_net_round_is_watched_bid_by_bid_until_the_award(cli: Cli) -> None:
    for name, cost in [("cheap", 1), ("dear", 5)]:
        spec = f'name = "{name}"\ncapabilities = ["summarise"]\nbidding = {{base_cost = {cost}}}\n'
        cli.json("agents", "create", "-f", "-", "--start", stdin=spec)
    task = cli.json(
        "tasks",
        "create",
        "--name",
        "digest",
        "--capability",
        "summarise",
        "--data",
        '{"text": "long"}',
    )
    assert task["status"] == "created"

    events = cli.ok(
        "tasks",
        "distribute",
        task["task_id"],
        "--strategy",
        "lowest_cost",
        "--max-wait",
        "5",
        "--watch",
        "-o",
        "json",
    ).lines()
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["task.created", "task.cfp_sent"]
    assert kinds.count("task.proposal_received") == 2
    assert kinds.index("task.awarded") > max(
        i for i, k in enumerate(kinds) if k == "task.proposal_received"
    )
    assert kinds[-1] == "task.completed"
    award = next(e for e in events if e["type"] == "task.awarded")
    cheap = cli.json("agents", "get", "cheap")["id"]
    assert award["data"]["agent_id"] == cheap

    done = cli.json("tasks", "get", task["task_id"])
    assert (done["status"], done["assigned_to"]) == ("completed", cheap)
    assert [t["task_id"] for t in cli.json("tasks", "ls")] == [task["task_id"]]
    cli.fails(5, "INVALID_STATE_TRANSITION", "tasks", "cancel", task["task_id"])
    table = cli.ok(
        "tasks",
        "distribute",
        cli.json("tasks", "create", "--name", "again", "--participant", "dear")["task_id"],
        "--max-wait",
        "5",
        "--watch",
    ).out
    assert "bid" in table and "awarded dear" in table


def test_a_canary_deployment_is_followed_stage_by_stage_then_promoted_or_rolled_back(
    cli: Cli,
) -> None:
    agent = cli.json("agents", "create", "-f", _file(cli, "v1.toml", AGENT_TOML), "--start")
    v2 = _file(cli, "v2.toml", AGENT_TOML + 'system_prompt = "Be brief."\n')
    snapshots = cli.ok("deploy", "helper", "-f", v2, "--canary", "10:1s,50:1s", "-o", "json")
    seen = snapshots.lines()
    assert [s["percentage"] for s in seen if s["status"] == "rolling_out"][:1] == [10]
    assert 50 in [s["percentage"] for s in seen]
    assert (seen[-1]["status"], seen[-1]["version_label"]) == ("completed", "v2")
    assert cli.json("agents", "get", "helper")["spec"]["system_prompt"] == "Be brief."

    slow = cli.json(
        "deploy", agent["id"], "-f", v2, "--canary", "10:5m", "--label", "v3", "--no-watch"
    )
    assert (slow["status"], slow["percentage"], slow["stages"][0]["duration_s"]) == (
        "rolling_out",
        10,
        300,
    )
    cli.fails(5, "DEPLOYMENT_IN_PROGRESS", "deploy", "helper", "-f", v2, "--no-watch")
    listed = cli.json("deployments", "ls", "--agent", "helper")
    assert [d["version_label"] for d in listed] == ["v3", "v2"]
    assert cli.json("deployments", "get", slow["id"])["id"] == slow["id"]
    back = cli.json("deployments", "rollback", slow["id"], "--reason", "worse answers")
    assert (back["status"], back["reason"]) == ("rolled_back", "worse answers")
    cli.fails(5, "INVALID_STATE_TRANSITION", "deployments", "promote", slow["id"])
    cli.fails(1, "ROLLED_BACK", "deployments", "watch", slow["id"])
    cli.fails(2, "BAD_ARGUMENT", "deploy", "helper", "-f", v2, "--canary", "ten:5m")

    promoted = cli.json("deploy", "helper", "-f", v2, "--canary", "10:5m", "--no-watch")
    assert cli.json("deployments", "promote", promoted["id"])["status"] in ("applying", "completed")


def test_events_tail_filters_by_type_and_resumes_from_a_checkpoint(cli: Cli) -> None:
    cli.json("agents", "create", "-f", "-", "--start", stdin='name = "watched"\n')
    cli.json("agents", "stop", "watched")
    everything = cli.ok(
        "events", "tail", "--type", "agent.*", "--from", "0", "--count", "3", "-o", "json"
    ).lines()
    assert [e["type"] for e in everything] == [
        "agent.created",
        "agent.state_changed",
        "agent.state_changed",
    ]
    positions = [e["position"] for e in everything]

    checkpoint = str(cli.cwd / "tail.position")
    first = cli.ok(
        "events",
        "tail",
        "-t",
        "agent.*",
        "--from",
        "0",
        "--checkpoint",
        checkpoint,
        "--count",
        "2",
        "-o",
        "json",
    ).lines()
    assert [e["position"] for e in first] == positions[:2]
    assert Path(checkpoint).read_text().strip() == str(positions[1])
    rest = cli.ok(
        "events", "tail", "-t", "agent.*", "--checkpoint", checkpoint, "--count", "1", "-o", "json"
    ).lines()
    assert [e["position"] for e in rest] == positions[2:]
    table = cli.ok("events", "tail", "--type", "agent.created", "--from", "0", "--count", "1").out
    assert "agent.created" in table and str(positions[0]) in table

    custom = cli.json(
        "events", "emit", "deploy.finished", "--subject", "web", "--data", '{"sha": "abc"}'
    )
    assert (custom["type"], custom["data"]) == ("deploy.finished", {"sha": "abc"})


def test_keys_are_created_listed_rotated_and_revoked(cli: Cli, namespace: str) -> None:
    issued = cli.json("keys", "create", "ci", "--role", "operator", "--for", namespace)
    key_id, secret = issued["key"]["key_id"], issued["secret"]
    assert secret.startswith("pk_")
    listed = cli.json("keys", "ls")
    assert key_id in [k["key_id"] for k in listed]
    assert secret not in json.dumps(listed)
    assert cli.json("keys", "get", key_id)["roles"] == ["operator"]
    cli.json("agents", "ls", env={"PARLEY_API_KEY": secret})  # the new key works

    rotated = cli.json("keys", "rotate", key_id)["secret"]
    cli.fails(4, "UNAUTHORIZED", "agents", "ls", env={"PARLEY_API_KEY": secret})
    cli.fails(4, "FORBIDDEN", "keys", "ls", env={"PARLEY_API_KEY": rotated})  # not an admin
    assert cli.json("keys", "revoke", key_id, "--reason", "leaked")["revoked_at"]
    cli.fails(3, "NOT_FOUND", "keys", "get", "nope")


def test_the_shell_completes_commands_and_agent_names(cli: Cli) -> None:
    script = cli.ok("--show-completion", "bash", env={"SHELL": "/bin/bash"}).out
    assert "complete -o default -F _parley_completion parley" in script

    def complete(words: str) -> list[str]:
        env = {
            "_PARLEY_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        return cli.ok(env=env).out.split()

    assert complete("parley ag") == ["agents"]
    assert "ls" in complete("parley agents l")
    for name in ("alpha-1", "alpha-2", "beta"):
        cli.json("agents", "create", "-f", "-", stdin=f'name = "{name}"\n')
    assert complete("parley agents get alp") == ["alpha-1", "alpha-2"]
