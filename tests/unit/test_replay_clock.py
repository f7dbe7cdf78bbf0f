"""A session replay's controls, without a stack: which state takes which control, where a
seek lands, and what the status says (the timing itself is asserted end to end)."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from parley.contracts.envelope import Event
from parley.edge.http.errors import ApiError
from parley.edge.streams.replay import Replay
from parley.edge.streams.replay import Replays
from parley.edge.streams.replay import ReplayState

START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
OFFSETS = (0.0, 3.0, 3.0, 4.5, 10.0)
"""Seconds after the first event each recorded event happened (two share a time)."""


def _replay(speed: float = 10.0, offsets: tuple[float, ...] = OFFSETS) -> Replay:
    events = [
        Event(
            id=f"e{i}",
            source="/parley/runtime",
            type="turn.started",
            subject="s1",
            time=START + timedelta(seconds=offset),
            data={},
            stream="session-s1",
            version=i + 1,
            position=100 + i,
        )
        for i, offset in enumerate(offsets)
    ]
    return Replay("ns", "s1", events, speed_factor=speed, real_time=True)


def _refused(action: object) -> None:
    with pytest.raises(ApiError) as caught:
        action()  # type: ignore[operator]
    assert caught.value.code == "INVALID_STATE_TRANSITION"


def test_a_new_replay_plays_from_the_start_with_its_clock_still() -> None:
    status = _replay().status()
    assert (status.state, status.position, status.total, status.progress) == (
        ReplayState.PLAYING,
        0,
        5,
        0.0,
    )
    assert (status.offset_s, status.duration_s, status.listening) == (0.0, 10.0, False)
    assert status.current_time == START and status.last_position is None


@pytest.mark.parametrize(
    ("seconds", "position"),
    [(0.0, 0), (1.0, 1), (3.0, 1), (3.1, 3), (4.5, 3), (9.9, 4), (10.0, 4), (99.0, 4), (-5, 0)],
)
def test_seek_to_an_offset_makes_the_first_event_at_or_after_it_the_next(
    seconds: float, position: int
) -> None:
    replay = _replay()
    replay.seek_offset(seconds)
    status = replay.status()
    assert status.position == position
    assert status.offset_s == min(max(seconds, 0.0), 10.0)


def test_seek_to_a_time_is_seek_to_its_offset() -> None:
    replay = _replay()
    replay.seek_time(START + timedelta(seconds=4))
    assert (replay.status().position, replay.status().offset_s) == (3, 4.0)


def test_seek_to_an_index_sets_the_clock_to_that_event() -> None:
    replay = _replay()
    replay.pause()
    replay.seek_index(3)
    status = replay.status()
    assert (status.state, status.position, status.offset_s) == (ReplayState.PAUSED, 3, 4.5)
    assert status.last_position == 102 and status.progress == 0.6
    with pytest.raises(ApiError) as caught:
        replay.seek_index(6)
    assert caught.value.code == "VALIDATION_ERROR"


def test_seek_to_the_end_finishes_a_playing_replay_and_a_seek_back_rewinds_it_paused() -> None:
    replay = _replay()
    replay.seek_index(5)
    assert replay.status().state is ReplayState.FINISHED
    _refused(replay.play)
    _refused(replay.pause)
    replay.seek_index(0)
    assert (replay.state, replay.cursor) == (ReplayState.PAUSED, 0)
    replay.play()
    assert replay.state is ReplayState.PLAYING


def test_a_stopped_replay_takes_no_control_but_stop() -> None:
    replay = _replay()
    replay.stop()
    for action in (replay.play, replay.pause, lambda: replay.seek_index(0)):
        _refused(action)
    _refused(lambda: replay.set_speed(2.0))
    replay.stop()
    assert replay.state is ReplayState.STOPPED


def test_pause_holds_the_clock_and_play_takes_a_new_speed() -> None:
    replay = _replay()
    replay.attach()
    replay.pause()
    held = replay.clock()
    assert replay.clock() == held  # a paused clock does not move
    replay.play(speed_factor=100.0)
    assert (replay.state, replay.speed_factor) == (ReplayState.PLAYING, 100.0)


def test_a_second_listener_is_refused_until_the_first_goes_and_a_late_hang_up_is_moot() -> None:
    replay = _replay()
    first = replay.attach()
    _refused(replay.attach)
    replay.detach(first)
    second = replay.attach()
    replay.detach(first)  # the first one's late hang-up does not end the second
    assert replay.status().listening
    replay.detach(second)
    assert not replay.status().listening


def test_reconnecting_after_an_event_goes_on_with_the_next() -> None:
    replay = _replay()
    replay.seek_after(102)
    assert replay.cursor == 3
    replay.seek_after(5)  # before the first event: nothing to skip
    assert replay.cursor == 3


def test_an_empty_replay_is_complete_at_once() -> None:
    status = _replay(offsets=()).status()
    assert (status.total, status.progress, status.current_time) == (0, 1.0, None)
    assert status.state is ReplayState.FINISHED


def test_a_session_keeps_a_bounded_number_of_replays() -> None:
    replays = Replays(per_session=2)
    first, second = replays.add(_replay()), replays.add(_replay())
    first.attach()
    heard = second.attach()
    with pytest.raises(ApiError) as caught:
        replays.add(_replay())
    assert caught.value.code == "QUOTA_EXCEEDED"
    second.detach(heard)
    third = replays.add(_replay())  # the unheard one makes room
    assert [r.id for r in replays.of("ns", "s1")] == [first.id, third.id]
    assert second.state is ReplayState.STOPPED
    assert replays.get("other", "s1", first.id) is None
