"""The edge's turn feed: order, resume skipping, the final frame, and the idle watchdog."""

import msgspec
import pytest

from parley.contracts.runtime import TurnDelta
from parley.edge.streams.turn import TurnFeed
from parley.edge.streams.turn import client_frame
from parley.edge.streams.turn import parse_last_event_id


def _feed(*frames: TurnDelta | bytes) -> TurnFeed:
    feed = TurnFeed("t1")
    for frame in frames:
        raw = frame if isinstance(frame, bytes) else msgspec.json.encode(frame)
        feed._queue.put_nowait(raw)
    return feed


def _delta(seq: int, kind: str = "token", **data: object) -> TurnDelta:
    return TurnDelta(seq=seq, type=kind, turn_id="t1", data=dict(data))  # type: ignore[arg-type]


async def _collect(feed: TurnFeed, **kwargs: object) -> list[TurnDelta | None]:
    return [frame async for frame in feed.frames(**kwargs)]  # type: ignore[arg-type]


async def test_frames_stop_after_the_end_frame():
    feed = _feed(_delta(1, "start"), _delta(2, text="a"), _delta(3, "end"), _delta(4))
    frames = await _collect(feed, idle=1)
    assert [f.seq for f in frames if f] == [1, 2, 3]


async def test_seen_duplicate_and_unreadable_frames_are_skipped():
    feed = _feed(_delta(1, "start"), b"{junk", _delta(2), _delta(2), _delta(3), _delta(4, "error"))
    frames = await _collect(feed, after=2, idle=1)
    assert [f.seq for f in frames if f] == [3, 4]


async def test_a_silent_turn_ends_with_a_timeout_error_frame():
    frames = await _collect(_feed(_delta(1, "start")), idle=0.05)
    last = frames[-1]
    assert last is not None and (last.type, last.seq) == ("error", 0)
    assert last.data["code"] == "TIMEOUT"


async def test_keepalive_ticks_come_while_waiting():
    frames = await _collect(_feed(), idle=0.2, tick=0.05)
    assert frames.count(None) >= 2 and frames[-1] is not None


def test_client_frames_carry_the_turn_and_conversation():
    data = client_frame(_delta(1, "start", agent_id="a"), "s1")
    assert data == {"agent_id": "a", "turn_id": "t1", "conversation_id": "s1"}


@pytest.mark.parametrize(
    ("raw", "turn", "expected"),
    [
        (None, "t1", ("t1", 0)),
        ("t1:7", None, ("t1", 7)),
        ("t1:7", "t1", ("t1", 7)),
        ("7", "t1", ("t1", 7)),
        ("a:b:12", None, ("a:b", 12)),
    ],
)
def test_last_event_ids_parse(raw, turn, expected):
    assert parse_last_event_id(raw, turn) == expected


@pytest.mark.parametrize(("raw", "turn"), [("t1:x", None), ("t2:3", "t1"), ("t1:-1", None)])
def test_bad_last_event_ids_are_refused(raw, turn):
    with pytest.raises(ValueError):
        parse_last_event_id(raw, turn)
