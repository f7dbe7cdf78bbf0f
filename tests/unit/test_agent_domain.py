"""The agent aggregate: given events, when a command, then events or a refusal."""

import random
from datetime import timedelta
from itertools import product

import msgspec
import pytest
from _builders import NOW
from _builders import refusal

from parley.aggregates.agent import TRANSITIONS
from parley.aggregates.agent import Agent
from parley.aggregates.agent import CorruptStreamError
from parley.aggregates.agent import allowed_actions
from parley.aggregates.agent import decide
from parley.aggregates.agent import evolve
from parley.aggregates.agent import name_change
from parley.aggregates.decision import Context
from parley.aggregates.decision import Decided
from parley.aggregates.decision import to_new_events
from parley.contracts.envelope import Event
from parley.contracts.envelope import NewEvent
from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentAction
from parley.contracts.registry import AgentActionCommand
from parley.contracts.registry import AgentCreated
from parley.contracts.registry import AgentDeleted
from parley.contracts.registry import AgentPatch
from parley.contracts.registry import AgentSpec
from parley.contracts.registry import AgentState
from parley.contracts.registry import AgentStateChanged
from parley.contracts.registry import AgentUpdated
from parley.contracts.registry import CreateAgent
from parley.contracts.registry import DeleteAgent
from parley.contracts.registry import RegistryCommand
from parley.contracts.registry import StrategySpec
from parley.contracts.registry import ToolSpec
from parley.contracts.registry import UpdateAgent
from parley.contracts.registry import agent_stream

AGENT_ID = "a1"
S, A = AgentState, AgentAction

LEGAL: dict[tuple[AgentState, AgentAction], AgentState] = {
    (S.CREATED, A.START): S.RUNNING,
    (S.CREATED, A.STOP): S.STOPPED,
    (S.RUNNING, A.PAUSE): S.PAUSED,
    (S.PAUSED, A.RESUME): S.RUNNING,
    (S.RUNNING, A.STOP): S.STOPPED,
    (S.PAUSED, A.STOP): S.STOPPED,
    (S.CREATED, A.FAIL): S.FAILED,
    (S.RUNNING, A.FAIL): S.FAILED,
    (S.PAUSED, A.FAIL): S.FAILED,
}
"""The lifecycle, written out independently of the implementation's table."""

# How to reach each state from `created`, as actions.
PATH_TO: dict[AgentState, list[AgentAction]] = {
    S.CREATED: [],
    S.RUNNING: [A.START],
    S.PAUSED: [A.START, A.PAUSE],
    S.STOPPED: [A.STOP],
    S.FAILED: [A.FAIL],
}


def spec(**overrides: object) -> AgentSpec:
    return AgentSpec(name=str(overrides.pop("name", "helper")), **overrides)  # type: ignore[arg-type]


def create(**overrides: object) -> CreateAgent:
    return CreateAgent(agent_id=AGENT_ID, spec=spec(**overrides))


def act(action: AgentAction, **kwargs: object) -> AgentActionCommand:
    return AgentActionCommand(agent_id=AGENT_ID, action=action, **kwargs)  # type: ignore[arg-type]


def record(decided: Decided, state: Agent | None, *, namespace: str = "default") -> list[Event]:
    """Record decided events as the store would, after the stream's current version."""
    start = state.version if state is not None else 0
    new = to_new_events(
        decided, subject=AGENT_ID, namespace=namespace, source="/parley/registry", now=NOW
    )
    return [
        Event.record(
            # Round-trip through JSON: evolve must accept what the store hands back.
            msgspec.json.decode(msgspec.json.encode(n), type=NewEvent),
            stream=agent_stream(AGENT_ID),
            version=start + i,
            position=100 + start + i,
        )
        for i, n in enumerate(new, start=1)
    ]


def run(state: Agent | None, command: RegistryCommand) -> tuple[Decided, Agent | None]:
    """Decide, then fold what was decided: the property every test relies on."""
    decided = decide(state, command, Context(NOW)).events
    for event in record(decided, state, namespace=command.namespace):
        state = evolve(state, event)
    return decided, state


def given(*commands: RegistryCommand) -> Agent | None:
    state: Agent | None = None
    for command in commands:
        _, state = run(state, command)
    return state


def in_state(target: AgentState) -> Agent:
    state = given(create(), *(act(a) for a in PATH_TO[target]))
    assert state is not None and state.state is target
    return state


def refused(command: RegistryCommand, state: Agent | None) -> ParleyError:
    return refusal(decide, state, command, Context(NOW))


# --- lifecycle -------------------------------------------------------------------------------


def test_the_implementation_table_is_exactly_the_documented_lifecycle() -> None:
    assert TRANSITIONS == LEGAL


@pytest.mark.parametrize(
    ("from_state", "action"),
    list(product(AgentState, AgentAction)),
    ids=lambda v: v.value,
)
def test_every_state_and_action_pair_is_either_a_legal_transition_or_refused(
    from_state: AgentState, action: AgentAction
) -> None:
    state = in_state(from_state)
    if (from_state, action) in LEGAL:
        decided, after = run(state, act(action, reason="because"))
        assert decided == [
            (
                "agent.state_changed",
                AgentStateChanged(
                    agent_id=AGENT_ID,
                    from_state=from_state,
                    to_state=LEGAL[from_state, action],
                    action=action,
                    reason="because",
                ),
            )
        ]
        assert after is not None
        assert after.state is LEGAL[from_state, action]
        assert after.version == state.version + 1
    else:
        error = refused(act(action), state)
        assert error.code is ErrorCode.INVALID_STATE_TRANSITION
        assert error.details == {
            "from": from_state.value,
            "action": action.value,
            "allowed_actions": [a.value for a in AgentAction if (from_state, a) in LEGAL],
        }


def test_a_forced_stop_takes_a_failed_agent_to_stopped() -> None:
    decided, after = run(in_state(S.FAILED), act(A.STOP, force=True))
    assert [t for t, _ in decided] == ["agent.state_changed"]
    assert after is not None and after.state is S.STOPPED


def test_an_unforced_stop_of_a_failed_agent_says_force_would_allow_it() -> None:
    error = refused(act(A.STOP), in_state(S.FAILED))
    assert error.code is ErrorCode.INVALID_STATE_TRANSITION
    assert "force" in error.message


@pytest.mark.parametrize("from_state", list(AgentState), ids=lambda v: v.value)
@pytest.mark.parametrize("action", [a for a in AgentAction if a is not A.STOP], ids=str)
def test_force_allows_nothing_beyond_stop_from_failed(
    from_state: AgentState, action: AgentAction
) -> None:
    state = in_state(from_state)
    if (from_state, action) in LEGAL:
        assert decide(state, act(action, force=True), Context(NOW)).events
    else:
        assert refused(act(action, force=True), state).code is ErrorCode.INVALID_STATE_TRANSITION


def test_allowed_actions_with_force_include_stop_from_failed_only() -> None:
    assert allowed_actions(S.FAILED) == []
    assert allowed_actions(S.FAILED, force=True) == [A.STOP]
    assert allowed_actions(S.STOPPED, force=True) == []


# --- create ----------------------------------------------------------------------------------


def test_creating_an_agent_emits_agent_created_and_folds_to_a_created_agent() -> None:
    decided, state = run(None, create(description="d"))
    assert decided == [
        ("agent.created", AgentCreated(agent_id=AGENT_ID, spec=spec(description="d")))
    ]
    assert state == Agent(
        id=AGENT_ID,
        namespace="default",
        spec=spec(description="d"),
        state=S.CREATED,
        version=1,
        created_at=NOW,
        updated_at=NOW,
        deleted=False,
    )


def test_the_agent_takes_its_namespace_from_the_event_envelope() -> None:
    _, state = run(None, CreateAgent(namespace="acme", agent_id=AGENT_ID, spec=spec()))
    assert state is not None and state.namespace == "acme"


def test_creating_an_agent_that_exists_is_refused_as_already_existing() -> None:
    assert refused(create(), given(create())).code is ErrorCode.AGENT_ALREADY_EXISTS


def test_creating_over_a_deleted_agent_is_refused_because_ids_are_never_reused() -> None:
    state = given(create(), DeleteAgent(agent_id=AGENT_ID))
    assert refused(create(), state).code is ErrorCode.AGENT_ALREADY_EXISTS


def test_creating_without_an_id_is_an_invalid_request() -> None:
    error = refused(CreateAgent(spec=spec()), None)
    assert error.code is ErrorCode.INVALID_REQUEST


def test_creating_an_agent_with_an_invalid_spec_is_refused_by_validation() -> None:
    error = refused(create(provider="nope"), None)
    assert error.code is ErrorCode.PROVIDER_NOT_AVAILABLE


# --- update ----------------------------------------------------------------------------------


def update(expected_version: int | None = None, **patch: object) -> UpdateAgent:
    return UpdateAgent(
        agent_id=AGENT_ID,
        patch=AgentPatch(**patch),  # type: ignore[arg-type]
        expected_version=expected_version,
    )


def test_an_update_emits_the_full_new_spec_and_the_changed_field_names() -> None:
    state = given(create(provider="openai", model="gpt-4.1"))
    decided, after = run(state, update(description="new", model="gpt-4.1-mini"))
    new_spec = spec(provider="openai", description="new", model="gpt-4.1-mini")
    assert decided == [
        (
            "agent.updated",
            AgentUpdated(agent_id=AGENT_ID, spec=new_spec, changed=["description", "model"]),
        )
    ]
    assert after is not None and after.spec == new_spec and after.version == 2


def test_an_update_that_changes_nothing_emits_no_event_and_keeps_the_version() -> None:
    state = given(create(description="same"))
    assert decide(state, update(description="same"), Context(NOW)).events == []
    assert decide(state, update(), Context(NOW)).events == []


def test_each_effective_update_is_a_new_version() -> None:
    state = given(create(), update(description="one"), update(description="two"))
    assert state is not None and state.version == 3 and state.spec.description == "two"


def test_labels_merge_and_a_null_label_removes_the_key() -> None:
    state = given(create(labels={"team": "a", "tier": "1"}))
    decided, after = run(state, update(labels={"tier": None, "env": "prod"}))
    assert after is not None and after.spec.labels == {"team": "a", "env": "prod"}
    assert isinstance(decided[0][1], AgentUpdated) and decided[0][1].changed == ["labels"]


def test_removing_a_label_that_is_not_there_changes_nothing() -> None:
    assert decide(given(create()), update(labels={"ghost": None}), Context(NOW)).events == []


def test_setting_a_persona_replaces_the_system_prompt() -> None:
    decided, after = run(given(create(system_prompt="be nice")), update(persona="pirate"))
    assert after is not None
    assert (after.spec.persona, after.spec.system_prompt) == ("pirate", None)
    assert isinstance(decided[0][1], AgentUpdated)
    assert decided[0][1].changed == ["persona", "system_prompt"]


def test_an_update_whose_result_is_invalid_is_refused() -> None:
    error = refused(update(tools=[ToolSpec(name="no_such_tool")]), given(create()))
    assert error.code is ErrorCode.TOOL_NOT_AVAILABLE


def test_an_update_with_the_current_expected_version_succeeds() -> None:
    assert decide(given(create()), update(expected_version=1, description="x"), Context(NOW)).events


@pytest.mark.parametrize(
    "command",
    [
        update(expected_version=7, description="x"),
        act(A.START, expected_version=7),
        DeleteAgent(agent_id=AGENT_ID, expected_version=7),
    ],
    ids=["update", "action", "delete"],
)
def test_a_stale_expected_version_is_a_concurrency_conflict_with_both_versions(
    command: RegistryCommand,
) -> None:
    error = refused(command, given(create()))
    assert error.code is ErrorCode.CONCURRENCY_CONFLICT
    assert error.details == {"expected": 7, "actual": 1}


def test_a_rename_is_reported_with_the_old_and_new_name() -> None:
    state = given(create(name="old"))
    assert state is not None
    assert name_change(state, decide(state, update(name="new"), Context(NOW)).events) == (
        "old",
        "new",
    )
    assert name_change(state, decide(state, update(description="x"), Context(NOW)).events) is None
    assert name_change(state, decide(state, update(name="old"), Context(NOW)).events) is None


def test_an_update_can_change_every_spec_field_at_once() -> None:
    state = given(create())
    decided, after = run(
        state,
        update(
            name="other",
            provider="anthropic",
            model="claude-sonnet-4-5",
            strategy=StrategySpec(name="plan_and_execute", config={"max_iterations": 5}),
            instances=3,
        ),
    )
    assert after is not None and after.spec.instances == 3
    assert isinstance(decided[0][1], AgentUpdated)
    assert decided[0][1].changed == ["instances", "model", "name", "provider", "strategy"]


# --- delete and missing agents ---------------------------------------------------------------


def test_deleting_an_agent_emits_agent_deleted_with_its_name_and_tombstones_it() -> None:
    decided, after = run(given(create(name="bob")), DeleteAgent(agent_id=AGENT_ID, reason="bye"))
    assert decided == [("agent.deleted", AgentDeleted(agent_id=AGENT_ID, name="bob", reason="bye"))]
    assert after is not None and after.deleted and after.version == 2


@pytest.mark.parametrize("from_state", list(AgentState), ids=lambda v: v.value)
def test_an_agent_can_be_deleted_from_any_state(from_state: AgentState) -> None:
    _, after = run(in_state(from_state), DeleteAgent(agent_id=AGENT_ID))
    assert after is not None and after.deleted


def command_id(command: RegistryCommand) -> str:
    if isinstance(command, AgentActionCommand):
        return f"{command.action.value}{'-forced' if command.force else ''}"
    return type(command).__name__


NON_CREATE_COMMANDS: list[RegistryCommand] = [
    update(description="x"),
    *(act(a) for a in AgentAction),
    act(A.STOP, force=True),
    DeleteAgent(agent_id=AGENT_ID),
]


@pytest.mark.parametrize("command", NON_CREATE_COMMANDS, ids=command_id)
def test_every_command_on_a_missing_agent_is_agent_not_found(command: RegistryCommand) -> None:
    assert refused(command, None).code is ErrorCode.AGENT_NOT_FOUND


@pytest.mark.parametrize("command", NON_CREATE_COMMANDS, ids=command_id)
def test_a_deleted_agent_refuses_every_command_as_not_found(command: RegistryCommand) -> None:
    state = given(create(), act(A.START), DeleteAgent(agent_id=AGENT_ID))
    assert refused(command, state).code is ErrorCode.AGENT_NOT_FOUND


def test_an_agent_in_another_namespace_is_not_found() -> None:
    state = given(create())
    command = UpdateAgent(namespace="other", agent_id=AGENT_ID, patch=AgentPatch(description="x"))
    assert refused(command, state).code is ErrorCode.AGENT_NOT_FOUND


# --- evolve ----------------------------------------------------------------------------------


def test_evolve_skips_unknown_event_types_but_advances_the_version() -> None:
    state = given(create())
    assert state is not None
    future = Event.record(
        NewEvent(type="agent.promoted", subject=AGENT_ID, data={"x": 1}, time=NOW + timedelta(1)),
        stream=agent_stream(AGENT_ID),
        version=2,
    )
    after = evolve(state, future)
    assert after == msgspec.structs.replace(state, version=2)
    assert evolve(None, future) is None


def test_evolve_refuses_an_agent_event_before_the_agent_was_created() -> None:
    (event,) = record([("agent.deleted", AgentDeleted(agent_id=AGENT_ID, name="x"))], None)
    with pytest.raises(CorruptStreamError):
        evolve(None, event)


def test_evolve_refuses_a_second_creation() -> None:
    state = given(create())
    (event,) = record([("agent.created", AgentCreated(agent_id=AGENT_ID, spec=spec()))], state)
    with pytest.raises(CorruptStreamError):
        evolve(state, event)


def test_the_fold_records_when_the_agent_last_changed() -> None:
    state = given(create())
    assert state is not None
    (event,) = record(decide(state, act(A.START), Context(NOW)).events, state)
    later = msgspec.structs.replace(event, time=NOW + timedelta(hours=1))
    after = evolve(state, later)
    assert after is not None
    assert (after.created_at, after.updated_at) == (NOW, NOW + timedelta(hours=1))


# --- property: evolve accepts every event decide emits ---------------------------------------

SCENARIO_COMMANDS: list[RegistryCommand] = [
    create(),
    update(description="x"),
    update(labels={"a": "b"}),
    update(name="renamed"),
    update(persona="p"),
    update(system_prompt="s"),
    *(act(a) for a in AgentAction),
    act(A.STOP, force=True),
    DeleteAgent(agent_id=AGENT_ID),
]


@pytest.mark.parametrize("seed", range(40))
def test_evolve_accepts_every_event_decide_emits_over_random_command_sequences(seed: int) -> None:
    rng = random.Random(seed)
    state = given(create())
    for command in rng.choices(SCENARIO_COMMANDS, k=25):
        before = state
        try:
            decided, state = run(state, command)
        except ParleyError:
            continue
        assert state is not None and before is not None
        assert state.version == before.version + len(decided)


@pytest.mark.parametrize("from_state", list(AgentState), ids=lambda v: v.value)
def test_evolve_accepts_every_event_decide_emits_from_every_state(from_state: AgentState) -> None:
    for command in SCENARIO_COMMANDS:
        state = in_state(from_state)
        try:
            decided, after = run(state, command)
        except ParleyError:
            continue
        assert after is not None and after.version == state.version + len(decided)
