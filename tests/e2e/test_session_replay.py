"""Session replay through the real stack: a session recorded with real gaps between its
turns, played back over SSE at a speed factor, paused, resumed, sought and stopped; its
events listed as JSON with filters and downloaded as JSONL; Agent C's spellings; walls
between namespaces; bad input in the envelope."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from datetime import timedelta
from typing import Any

import httpx
import pytest
from e2e_support import body_of
from e2e_support import error_of
from httpx_sse import ServerSentEvent
from httpx_sse import aconnect_sse
from tests_support import edge_client

from parley.devstack.stack import Stack
from parley.eventstore.factory import open_store

STREAM_TIMEOUT = httpx.Timeout(10, read=60)
FIRST_GAP_S, SECOND_GAP_S = 3.0, 1.0
"""Wall time the recording waits before its first turn, and between its two turns."""


class Recorded:
    """A session of its own namespace: created, then two chat turns after real gaps."""

    def __init__(self, namespace: str, session_id: str, events: list[dict[str, Any]]) -> None:
        self.namespace, self.id, self.events = namespace, session_id, events
        self.path = f"/api/v1/sessions/{session_id}"
        start = _time(events[0])
        self.offsets = [(_time(e) - start).total_seconds() for e in events]

    def turn_start(self, n: int) -> int:
        """The index of the ``n``-th turn's (0-based) `turn.started` event."""
        return [i for i, e in enumerate(self.events) if e["type"] == "turn.started"][n]

    @property
    def turns(self) -> list[str]:
        """The turn ids, in order."""
        return [e["data"]["turn_id"] for e in self.events if e["type"] == "turn.started"]


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00"))


@pytest.fixture(scope="module")
async def recorded(stack: Stack) -> Recorded:
    """One recorded session for the module (recording takes its gaps once)."""
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    async with edge_client(stack, timeout=30, headers={"X-Parley-Namespace": namespace}) as api:
        session = body_of(await api.post("/api/v1/sessions", json={"title": "replayed"}), 201)
        path = f"/api/v1/sessions/{session['data']['id']}"
        for gap, message in ((FIRST_GAP_S, "first"), (SECOND_GAP_S, "second")):
            await asyncio.sleep(gap)  # the gap the replay must reproduce, scaled
            body_of(await api.post(f"{path}/chat", json={"message": message}))
        events = body_of(await api.get(f"{path}/events", params={"limit": 200}))["data"]
    assert [e["type"] for e in events][:2] == ["session.created", "turn.started"]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    return Recorded(namespace, session["data"]["id"], events)


@pytest.fixture
async def api(stack: Stack, recorded: Recorded) -> AsyncIterator[httpx.AsyncClient]:
    """The admin, in the recorded session's namespace."""
    headers = {"X-Parley-Namespace": recorded.namespace}
    async with edge_client(stack, timeout=30, headers=headers) as http:
        yield http


class Listener:
    """A client listening to a replay's stream: what arrived, and when (monotonic)."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, Any]
    ) -> None:
        self.received: list[tuple[float, ServerSentEvent]] = []
        self.ended = asyncio.Event()
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self._task = asyncio.create_task(self._listen(http, url, headers, params))

    async def _listen(
        self, http: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, Any]
    ) -> None:
        options: dict[str, Any] = {"params": params, "headers": headers, "timeout": STREAM_TIMEOUT}
        try:
            async with aconnect_sse(http, "GET", url, **options) as sse:
                self.status, self.headers = sse.response.status_code, sse.response.headers
                async for message in sse.aiter_sse():
                    self.received.append((time.monotonic(), message))
        finally:
            self.ended.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        """The recorded events received (not the replay's own end message)."""
        return [m.json() for _, m in self.received if not m.event.startswith("replay.")]

    async def until(self, count: int) -> None:
        """Wait (10 s at most) until ``count`` messages have arrived."""
        async with asyncio.timeout(10):
            while len(self.received) < count:  # noqa: ASYNC110 - polls a list the task fills
                await asyncio.sleep(0.005)

    async def to_the_end(self) -> None:
        """Wait (20 s at most) until the stream has ended."""
        async with asyncio.timeout(20):
            await self.ended.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def listening(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[Listener]:
    """A :class:`Listener` of ``url`` while the block runs (it hangs up after)."""
    listener = Listener(http, url, headers or {}, params)
    try:
        yield listener
    finally:
        await listener.close()


async def played(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None, **params: Any
) -> Listener:
    """A :class:`Listener` that heard ``url`` to its end."""
    async with listening(http, url, headers, **params) as listener:
        await listener.to_the_end()
    return listener


async def _replay(api: httpx.AsyncClient, recorded: Recorded, **body: Any) -> dict[str, Any]:
    made = await api.post(f"{recorded.path}/replays", json=body)
    data: dict[str, Any] = body_of(made, 201)["data"]
    assert made.headers["location"] == f"{recorded.path}/replays/{data['id']}"
    return data


@contextlib.asynccontextmanager
async def heard_first(
    api: httpx.AsyncClient, recorded: Recorded, **body: Any
) -> AsyncIterator[tuple[dict[str, Any], Listener]]:
    """A new replay of ``recorded`` (made with ``body``) and a listener that heard its first
    event."""
    replay = await _replay(api, recorded, **body)
    async with listening(api, replay["stream_url"]) as listener:
        await listener.until(1)
        yield replay, listener


async def _control(api: httpx.AsyncClient, replay: dict[str, Any], **body: Any) -> dict[str, Any]:
    url = replay["stream_url"].removesuffix("/stream") + "/control"
    return body_of(await api.post(url, json=body))["data"]  # type: ignore[no-any-return]


async def _status(api: httpx.AsyncClient, replay: dict[str, Any]) -> dict[str, Any]:
    url = replay["stream_url"].removesuffix("/stream")
    return body_of(await api.get(url))["data"]  # type: ignore[no-any-return]


def _versions(events: list[dict[str, Any]]) -> list[int]:
    return [e["version"] for e in events]


async def test_a_replay_at_ten_times_speed_keeps_the_recorded_spacing_scaled(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    replay = await _replay(api, recorded, speed_factor=10)
    total = len(recorded.events)
    assert (replay["state"], replay["position"], replay["total"]) == ("playing", 0, total)
    assert replay["speed_factor"] == 10 and replay["duration_s"] == pytest.approx(
        recorded.offsets[-1], abs=1e-3
    )
    started = time.monotonic()
    listener = await played(api, replay["stream_url"])
    assert listener.events == recorded.events  # every event, once, in order, as stored
    *events, end = listener.received
    assert end[1].event == "replay.finished"
    assert json.loads(end[1].data)["position"] == total
    assert [m.id for _, m in events] == [str(e["position"]) for e in recorded.events]
    # Each event is sent once the replay's clock (ten times faster) reaches its recorded
    # offset: never earlier, whatever the scheduling; the whole is far shorter than recorded.
    for (arrived, _), offset in zip(events, recorded.offsets, strict=True):
        assert arrived - started >= offset / 10 - 0.01
    assert recorded.offsets[-1] > FIRST_GAP_S + SECOND_GAP_S - 0.5
    # Measured from the first event, the turns come at a tenth of their recorded offsets
    # (half of that is allowed for a client that read the first event late).
    for turn in map(recorded.turn_start, range(len(recorded.turns))):
        assert events[turn][0] - events[0][0] >= recorded.offsets[turn] / 10 / 2
    whole = events[-1][0] - events[0][0]
    assert whole < recorded.offsets[-1] / 2, "a 10x replay took over half the recorded time"
    status = await _status(api, replay)
    assert (status["state"], status["position"], status["progress"]) == ("finished", total, 1.0)
    assert status["listening"] is False


async def test_pause_holds_a_replay_and_resume_goes_on_where_it_was(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    # At 2x the first turn comes 1.5 s after the session's creation: time to pause.
    async with heard_first(api, recorded, speed_factor=2) as (replay, listener):
        paused = await _control(api, replay, action="pause")
        assert (paused["state"], paused["position"], paused["listening"]) == ("paused", 1, True)
        await asyncio.sleep(FIRST_GAP_S / 2)  # longer than the 2x replay needed for turn one
        held = await _status(api, replay)
        assert (held["state"], held["position"]) == ("paused", 1)
        assert held["offset_s"] == paused["offset_s"] < recorded.offsets[1]
        assert len(listener.received) == 1, "events arrived while the replay was paused"
        resumed_at = time.monotonic()
        resumed = await _control(api, replay, action="resume", speed_factor=20)
        assert (resumed["state"], resumed["speed_factor"]) == ("playing", 20)
        await listener.to_the_end()
    assert listener.events == recorded.events  # nothing lost, nothing repeated
    assert all(at >= resumed_at for at, _ in listener.received[1:])
    assert (await _status(api, replay))["state"] == "finished"


async def test_seek_jumps_to_an_event_an_offset_or_a_time(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    replay = await _replay(api, recorded, speed_factor=10, paused=True)
    assert replay["state"] == "paused"
    second = recorded.turn_start(1)
    async with listening(api, replay["stream_url"]) as listener:
        by_time = await _control(
            api, replay, action="seek", position=recorded.events[second]["time"]
        )  # Agent C sends a time as `position`
        assert (by_time["state"], by_time["position"]) == ("paused", second)
        by_offset = await _control(api, replay, action="seek", offset_s=recorded.offsets[1])
        assert by_offset["position"] == 1
        assert by_offset["offset_s"] == pytest.approx(recorded.offsets[1], abs=1e-3)
        by_index = await _control(api, replay, action="seek", position=second)
        assert by_index["position"] == second
        assert by_index["progress"] == pytest.approx(second / len(recorded.events), abs=1e-3)
        assert by_index["last_position"] == recorded.events[second - 1]["position"]
        await _control(api, replay, action="play")
        await listener.to_the_end()
    assert _versions(listener.events) == _versions(recorded.events[second:])
    # A finished replay rewinds with seek (paused), and plays again to a new listener.
    rewound = await _control(api, replay, action="seek", position=0)
    assert (rewound["state"], rewound["position"]) == ("paused", 0)
    await _control(api, replay, action="play", speed_factor=1000)
    again = await played(api, replay["stream_url"])
    assert again.events == recorded.events


async def test_stop_ends_the_stream_and_the_replay(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    async with heard_first(api, recorded, speed_factor=1) as (replay, listener):
        second = await api.get(replay["stream_url"])
        error_of(second, 409, "INVALID_STATE_TRANSITION")  # one listener per replay
        stopped = await _control(api, replay, action="stop")
        assert stopped["state"] == "stopped"
        await listener.to_the_end()
    assert listener.received[-1][1].event == "replay.stopped"
    assert len(listener.events) < len(recorded.events)
    url = replay["stream_url"].removesuffix("/stream")
    error_of(
        await api.post(f"{url}/control", json={"action": "play"}), 409, "INVALID_STATE_TRANSITION"
    )
    listed = body_of(await api.get(f"{recorded.path}/replays", params={"limit": 200}))
    assert replay["id"] in [r["id"] for r in listed["data"]]
    assert (await api.delete(url)).status_code == 204
    error_of(await api.get(url), 404, "NOT_FOUND")


async def test_a_listener_that_reconnects_with_last_event_id_goes_on_where_it_left(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    async with heard_first(api, recorded, speed_factor=1) as (replay, first):
        pass  # the listener hangs up after the first event
    async with asyncio.timeout(10):  # the hang-up reaches the edge
        while (await _status(api, replay))["listening"]:  # noqa: ASYNC110 - polls the edge
            await asyncio.sleep(0.02)
    await _control(api, replay, action="play", speed_factor=1000)
    last = {"Last-Event-ID": first.received[0][1].id}
    again = await played(api, replay["stream_url"], last)
    assert again.events == recorded.events[1:]


async def test_several_replays_of_one_session_are_independent(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    one = await _replay(api, recorded, speed_factor=1000, paused=True)
    two = await _replay(api, recorded, speed_factor=1000)
    listener = await played(api, two["stream_url"])
    assert listener.events == recorded.events
    assert (await _status(api, one))[("state")] == "paused"
    assert (await _status(api, one))["position"] == 0
    assert (await _status(api, two))["state"] == "finished"


async def test_a_session_s_events_list_as_json_with_time_and_type_filters(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    url = f"{recorded.path}/events"
    turns = body_of(await api.get(url, params={"type": "turn.*", "limit": 200}))
    assert turns["data"] == [e for e in recorded.events if e["type"].startswith("turn.")]
    two = body_of(
        await api.get(url, params=[("type", "session.created"), ("type", "turn.started")])
    )
    assert [e["type"] for e in two["data"]] == ["session.created", "turn.started", "turn.started"]
    second = recorded.turn_start(1)
    since = recorded.events[second]["time"]
    later = body_of(await api.get(url, params={"since": since, "limit": 200}))["data"]
    assert later == recorded.events[second:]
    until = (_time(recorded.events[1]) - timedelta(milliseconds=1)).isoformat()
    earlier = body_of(await api.get(url, params={"until": until}))["data"]
    assert earlier == recorded.events[:1]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = body_of(await api.get(url, params=params))
        assert page["pagination"]["total_count"] == len(recorded.events)
        seen += page["data"]
        cursor = page["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == recorded.events
    # Agent C's spelling
    agent_c = body_of(
        await api.get(
            f"/api/v1/events/{recorded.id}",
            params={"event_types": "turn.completed", "start_time": since},
        )
    )["data"]
    assert [e["data"]["run_id"] for e in agent_c] == [recorded.turns[1]]


async def test_the_interaction_log_downloads_as_jsonl_matching_the_stored_events(
    api: httpx.AsyncClient, recorded: Recorded, stack: Stack
) -> None:
    response = await api.get(f"{recorded.path}/events.jsonl")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    name = f"session-{recorded.id}.jsonl"
    assert name in response.headers["content-disposition"]
    lines = response.text.splitlines()
    store = await open_store(nats_url=stack.nats_url)
    try:
        stored = await store.read(f"session-{recorded.id}")
    finally:
        await store.close()
    assert [json.loads(line) for line in lines] == recorded.events
    assert [json.loads(line)["id"] for line in lines] == [e.id for e in stored]
    assert [json.loads(line)["position"] for line in lines] == [e.position for e in stored]
    files = body_of(await api.get(f"/api/v1/interactions/{recorded.id}/files"))["data"]
    assert files == [name]
    file = await api.get(f"/api/v1/interactions/{recorded.id}/files/{name}")
    assert file.status_code == 200 and file.text == response.text
    error_of(
        await api.get(f"/api/v1/interactions/{recorded.id}/files/other.jsonl"),
        404,
        "FILE_NOT_FOUND",
    )


async def test_agent_c_streams_a_replay_and_controls_it_by_session(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    base = f"/api/v1/events/{recorded.id}"
    async with listening(api, f"{base}/stream", real_time="true", speed_factor="2") as listener:
        await listener.until(1)
        assert listener.headers is not None
        replay_id = listener.headers["parley-replay-id"]
        status = body_of(await api.get(f"{base}/replay-status"))["data"]
        assert (status["id"], status["listening"]) == (replay_id, True)
        paused = body_of(await api.post(f"{base}/replay/control", json={"action": "pause"}))
        assert (paused["data"]["id"], paused["data"]["state"]) == (replay_id, "paused")
        body = {"action": "play", "replay_id": replay_id, "speed_factor": 1000}
        body_of(await api.post(f"{base}/replay/control", json=body))
        await listener.to_the_end()
    assert listener.events == recorded.events
    # Without real_time the events come as fast as they are read.
    quick = await played(api, f"{base}/stream", event_types="turn.completed")
    assert [e["type"] for e in quick.events] == ["turn.completed", "turn.completed"]


async def test_replays_and_events_stay_inside_their_namespace_and_viewers_may_replay(
    api: httpx.AsyncClient, recorded: Recorded, client: httpx.AsyncClient, stack: Stack
) -> None:
    replay = await _replay(api, recorded, paused=True)
    url = replay["stream_url"].removesuffix("/stream")
    other = f"{recorded.namespace}-b"
    made = await client.post(
        "/api/v1/keys",
        json={"name": "replay operator", "roles": ["operator"], "namespaces": [other]},
        headers={"X-Parley-Namespace": other},
    )
    secret = body_of(made, 201)["data"]["secret"]
    headers = {"X-API-Key": secret, "X-Parley-Namespace": other}
    async with httpx.AsyncClient(base_url=stack.edge_url, headers=headers, timeout=20) as outsider:
        for response in [
            await outsider.get(f"{recorded.path}/events"),
            await outsider.get(f"{recorded.path}/events.jsonl"),
            await outsider.post(f"{recorded.path}/replays", json={}),
            await outsider.get(f"{recorded.path}/replays"),
            await outsider.get(url),
            await outsider.get(f"{url}/stream"),
            await outsider.post(f"{url}/control", json={"action": "play"}),
            await outsider.get(f"/api/v1/events/{recorded.id}"),
            await outsider.get(f"/api/v1/events/{recorded.id}/replay-status"),
            await outsider.get(f"/api/v1/interactions/{recorded.id}/files"),
        ]:
            error_of(response, 404, "SESSION_NOT_FOUND")
    made = await client.post(
        "/api/v1/keys",
        json={"name": "replay viewer", "roles": ["viewer"], "namespaces": [recorded.namespace]},
        headers={"X-Parley-Namespace": recorded.namespace},
    )
    headers = {"X-API-Key": body_of(made, 201)["data"]["secret"]}
    headers["X-Parley-Namespace"] = recorded.namespace
    async with httpx.AsyncClient(base_url=stack.edge_url, headers=headers, timeout=20) as viewer:
        assert len(body_of(await viewer.get(f"{recorded.path}/events"))["data"]) > 0
        mine = body_of(await viewer.post(f"{recorded.path}/replays", json={}), 201)["data"]
        paused = await _control(viewer, mine, action="pause")
        assert paused["state"] == "paused"
        assert (await _status(viewer, replay))["state"] == "paused"
        refused = await viewer.post(f"{recorded.path}/chat", json={"message": "hi"})
        error_of(refused, 403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"speed_factor": 0}, 422, "VALIDATION_ERROR"),
        ({"speed_factor": -2}, 422, "VALIDATION_ERROR"),
        ({"speed_factor": 5000}, 422, "VALIDATION_ERROR"),
        ({"speed_factor": "fast"}, 422, "VALIDATION_ERROR"),
        ({"since": "yesterday"}, 422, "VALIDATION_ERROR"),
        ({"since": "2026-11-27T10:00:00"}, 422, "VALIDATION_ERROR"),  # no zone
        (
            {"since": "2026-11-27T10:00:00Z", "until": "2026-11-27T09:00:00Z"},
            422,
            "VALIDATION_ERROR",
        ),
        ({"types": ["Not A Type!"]}, 400, "INVALID_REQUEST"),
        ({"loop": True}, 422, "VALIDATION_ERROR"),
    ],
)
async def test_a_bad_replay_is_refused_in_the_envelope(
    api: httpx.AsyncClient, recorded: Recorded, body: dict[str, Any], status: int, code: str
) -> None:
    error_of(await api.post(f"{recorded.path}/replays", json=body), status, code)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"action": "rewind"}, 422, "VALIDATION_ERROR"),
        ({}, 422, "VALIDATION_ERROR"),
        ({"action": "seek"}, 422, "VALIDATION_ERROR"),
        ({"action": "seek", "position": 10_000}, 422, "VALIDATION_ERROR"),
        ({"action": "seek", "position": -1}, 422, "VALIDATION_ERROR"),
        ({"action": "seek", "position": "not a time"}, 422, "VALIDATION_ERROR"),
        ({"action": "seek", "time": "2026-13-45T99:00:00Z"}, 422, "VALIDATION_ERROR"),
        ({"action": "seek", "offset_s": -1}, 422, "VALIDATION_ERROR"),
        ({"action": "seek", "position": 1, "offset_s": 1}, 422, "VALIDATION_ERROR"),
        ({"action": "pause", "position": 1}, 422, "VALIDATION_ERROR"),
        ({"action": "speed"}, 422, "VALIDATION_ERROR"),
        ({"action": "speed", "speed_factor": 0}, 422, "VALIDATION_ERROR"),
        ({"action": "stop", "speed_factor": 2}, 422, "VALIDATION_ERROR"),
    ],
)
async def test_a_bad_control_is_refused_in_the_envelope(
    api: httpx.AsyncClient, recorded: Recorded, body: dict[str, Any], status: int, code: str
) -> None:
    replay = await _replay(api, recorded, paused=True)
    url = replay["stream_url"].removesuffix("/stream") + "/control"
    error_of(await api.post(url, json=body), status, code)
    assert (await _status(api, replay))[("state")] == "paused"


async def test_bad_queries_are_refused_in_the_envelope(
    api: httpx.AsyncClient, recorded: Recorded
) -> None:
    url = f"{recorded.path}/events"
    error_of(await api.get(url, params={"since": "last tuesday"}), 422, "VALIDATION_ERROR")
    error_of(await api.get(url, params={"type": "TURN.*!"}), 400, "INVALID_REQUEST")
    error_of(await api.get(url, params={"cursor": "junk!"}), 400, "INVALID_REQUEST")
    error_of(await api.get(url, params={"offset": "10"}), 400, "INVALID_REQUEST")
    error_of(await api.get(url, params={"limit": "0"}), 422, "VALIDATION_ERROR")
    stream = f"/api/v1/events/{recorded.id}/stream"
    error_of(await api.get(stream, params={"speed_factor": "0"}), 422, "VALIDATION_ERROR")
    error_of(await api.get(stream, params={"speed_factor": "fast"}), 422, "VALIDATION_ERROR")
    missing = f"/api/v1/sessions/{uuid.uuid4()}"
    error_of(await api.get(f"{missing}/events"), 404, "SESSION_NOT_FOUND")
    error_of(await api.get(f"{recorded.path}/replays/{uuid.uuid4()}"), 404, "NOT_FOUND")
    no_replay = f"/api/v1/events/{recorded.id}/replay-status"
    error_of(await api.get(no_replay, params={"replay_id": "nope"}), 404, "NOT_FOUND")
